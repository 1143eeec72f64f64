"""Token usage per reply and per conversation, from the usage saved with each assistant message.

A turn is one assistant reply: every assistant message between one user text turn and the next (the
tool rounds of a reply, a continued message's two requests) summed. Costs use `pricing` at the
conversation's current model (messages do not record the model that wrote them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import pricing
from .messages import ChatMessage
from .window import exchanges

_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


@dataclass(frozen=True)
class TurnUsage:
    """One reply's tokens (all its requests summed) and cost (None: unknown price)."""

    index: int  # position in the messages of the reply's first assistant message
    input_tokens: int
    output_tokens: int
    cost: float | None
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    @property
    def context_tokens(self) -> int:
        """All input the reply sent, cache writes and reads included."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


@dataclass(frozen=True)
class Totals:
    """A conversation's usage over all its replies (cost None once any reply's price is unknown)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost: float | None = 0.0
    turns: int = 0


def usage_series(messages: Sequence[ChatMessage], model: str | None = None, *,
                 local: bool = False) -> list[TurnUsage]:  # fmt: skip
    """A `TurnUsage` per assistant reply, oldest first (replies without any assistant message, such as
    a request that failed before it started, are left out)."""
    series: list[TurnUsage] = []
    for exchange in exchanges(messages):
        replies = [i for i in exchange if messages[i].role == "assistant"]
        if not replies:
            continue
        summed = dict.fromkeys(_KEYS, 0)
        for i in replies:
            for key in _KEYS:
                summed[key] += int((messages[i].usage or {}).get(key) or 0)
        cost = pricing.cost(model or "", summed, local=local) if model or local else None
        series.append(TurnUsage(
            replies[0], summed["input_tokens"], summed["output_tokens"], cost,
            summed["cache_creation_input_tokens"], summed["cache_read_input_tokens"],
        ))  # fmt: skip
    return series


def conversation_totals(messages: Sequence[ChatMessage], model: str | None = None,
                        local: bool = False) -> Totals:  # fmt: skip
    """The sum of `usage_series(messages, model, local=local)`."""
    series = usage_series(messages, model, local=local)
    cost: float | None = 0.0
    for turn in series:
        cost = None if cost is None or turn.cost is None else cost + turn.cost
    return Totals(
        sum(t.input_tokens for t in series), sum(t.output_tokens for t in series),
        sum(t.cache_creation_input_tokens for t in series), sum(t.cache_read_input_tokens for t in series),
        cost, len(series),
    )  # fmt: skip
