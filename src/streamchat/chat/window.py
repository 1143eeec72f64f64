"""The context window: which history messages a request sends, and making them valid for the API.

Pure functions over anything shaped like a `ChatMessage` (role, content, status, pinned), plus a
small `TokenCache` so the token budget costs as few count_tokens calls as possible.

History is cut in *exchanges*: a user turn with real text plus everything up to the next one
(assistant turns, tool_use / tool_result rounds). Windows drop whole exchanges, oldest first, so a
tool_use is never separated from its tool_result and a window never starts with an assistant turn.

System-role messages (instructions kept in history at their position) belong to the exchange that
follows them: the system messages directly before a user text turn open that turn's exchange, so an
instruction is kept or dropped with the turn it was given for, and a window that starts with a system
message starts with the exchange it speaks to, never with one whose turn was dropped. System messages
after the last user turn (given for the next one) stay in the last exchange until that turn comes.
They are not turns (`max_turns` counts user text turns), their tokens count like any other message's.
`to_api` sends their text blocks, unmerged, where the API accepts a mid-conversation system message:
right after the user turn they were given for and before the reply to it (the API wants one directly
after a user turn, and last or followed by an assistant turn). One given for a turn that is not in the
request (a continuation of the previous reply) waits for that turn. Leading turns before the first
user text turn (or its system messages) form an exchange of their own, the oldest.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Block = dict[str, Any]
Counter = Callable[[list[dict[str, Any]]], int]  # API messages -> input tokens (system, tools bound)

_SAFETY = 0.98  # aim slightly under the budget so one re-count usually suffices


class MessageLike(Protocol):
    """What the window needs of a history message."""

    role: Any
    content: list[Block]
    status: Any
    pinned: bool


def is_user_text(message: MessageLike) -> bool:
    """True for a user turn the person typed (not a turn that only carries tool results)."""
    if message.role != "user":
        return False
    return not any(b.get("type") == "tool_result" for b in message.content)


def exchanges(messages: Sequence[MessageLike]) -> list[range]:
    """Split history into exchanges (index ranges): each from a user text turn, or the system messages
    just before it, to the next one; leading other turns make an exchange of their own."""
    if not messages:
        return []
    starts = []
    for i, message in enumerate(messages):
        if is_user_text(message):
            start = i
            while start > 0 and messages[start - 1].role == "system":
                start -= 1
            starts.append(start)
    if not starts or starts[0] != 0:
        starts = [0, *starts]
    ends = [*starts[1:], len(messages)]
    return [range(s, e) for s, e in zip(starts, ends, strict=True)]


def _chars(message: MessageLike) -> int:
    return 8 + len(json.dumps(message.content, ensure_ascii=False))


# -- making messages valid for the API ---------------------------------------------------------------


def _clean_assistant(message: MessageLike, answered: set[str]) -> list[Block]:
    partial = message.status != "complete"
    blocks: list[Block] = []
    for block in message.content:
        kind = block.get("type")
        if kind == "thinking" and not block.get("signature"):
            continue  # an unsigned thinking block was cut off: the API rejects it
        if kind == "tool_use" and block.get("id") not in answered:
            continue  # a tool_use must be answered in the next turn; an unanswered one is dropped
        if kind == "text" and not block.get("text"):
            continue
        blocks.append(block)
    # A cut-off turn may end in whitespace the API refuses; complete turns go back exactly as returned.
    if partial and blocks and blocks[-1].get("type") == "text":
        stripped = blocks[-1]["text"].rstrip()
        if stripped:
            blocks[-1] = {**blocks[-1], "text": stripped}
        else:
            blocks.pop()
    return blocks


def _place(out: list[dict[str, Any]], waiting: list[dict[str, Any]]) -> None:
    """Send the waiting system messages now if a user turn ends `out` (where the API takes them)."""
    if waiting and out and out[-1]["role"] == "user":
        out.extend(waiting)
        waiting.clear()


def to_api(messages: Sequence[MessageLike]) -> list[dict[str, Any]]:
    """The API `messages` for these history messages: cut-off blocks removed, tool pairs matched,
    empty turns left out, consecutive same-role turns merged, the first turn a user turn, system
    messages placed after the user turn that follows them and before its reply (one between a tool_use
    and its tool_result moves after the result, which keeps the pair)."""
    out: list[dict[str, Any]] = []
    waiting: list[dict[str, Any]] = []  # system messages until a user turn stands before them
    for i, message in enumerate(messages):
        if message.role == "system":
            instruction = [b for b in message.content if b.get("type") == "text" and b.get("text")]
            if instruction:  # on its own: never merged into a neighbour
                waiting.append({"role": "system", "content": instruction})
            continue
        if message.role == "assistant":
            nxt = next((m for m in messages[i + 1 :] if m.role != "system"), None)
            answered = (
                {str(b.get("tool_use_id")) for b in nxt.content if b.get("type") == "tool_result"}
                if nxt is not None and nxt.role == "user"
                else set()
            )
            blocks = _clean_assistant(message, answered)
        else:
            previous = out[-1]["content"] if out and out[-1]["role"] == "assistant" else []
            known = {b.get("id") for b in previous if b.get("type") == "tool_use"}
            blocks = [
                b
                for b in message.content
                if (b.get("type") != "tool_result" or b.get("tool_use_id") in known)
                and not (b.get("type") == "text" and not b.get("text"))
            ]
        if not blocks:
            continue  # an empty turn: leave it out
        if message.role != "user" and not any(m["role"] == "user" for m in out):
            continue  # a conversation starts with a user turn (system messages may stand before it)
        if message.role == "assistant":
            _place(out, waiting)
        if out and out[-1]["role"] == message.role:
            out[-1] = {"role": message.role, "content": [*out[-1]["content"], *blocks]}  # clean alternation
        else:
            out.append({"role": message.role, "content": list(blocks)})
    _place(out, waiting)
    # The request's final assistant turn (if any) must not end in whitespace, whatever its status.
    if out and out[-1]["role"] == "assistant":
        final = out[-1]["content"]
        if final and final[-1].get("type") == "text":
            text = final[-1]["text"].rstrip()
            final[-1] = {**final[-1], "text": text}
            if not text:
                final.pop()
        if not final:
            out.pop()
    return out if any(m["role"] == "user" for m in out) else []  # no user turn: nothing to send


# -- choosing the window -------------------------------------------------------------------------


@dataclass
class TokenCache:
    """Input-token counts of exact requests, so asking twice for the same window costs nothing."""

    size: int = 128
    calls: int = 0  # count_tokens calls made (for tests and /context)
    _items: OrderedDict[str, int] = field(default_factory=OrderedDict)
    last: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> (tokens, chars) of the last count

    @staticmethod
    def _key(key: str, messages: list[dict[str, Any]]) -> str:
        return key + "\x00" + json.dumps(messages, sort_keys=True, ensure_ascii=False)

    def peek(self, key: str, messages: list[dict[str, Any]]) -> int | None:
        """The cached count of `messages`, or None (never calls count_tokens)."""
        return self._items.get(self._key(key, messages))

    def count(self, key: str, messages: list[dict[str, Any]], counter: Counter) -> int:
        """Tokens of `messages` (`key` identifies system, tools and model)."""
        full = self._key(key, messages)
        if full in self._items:
            self._items.move_to_end(full)
            return self._items[full]
        self.calls += 1
        tokens = counter(messages)
        self._items[full] = tokens
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return tokens


@dataclass(frozen=True)
class WindowPlan:
    """The outcome of `plan_window`: message indexes kept and dropped, and why."""

    included: list[int]
    dropped: list[int]
    pinned: list[int]
    tokens: int | None
    dropped_tokens: int | None
    reason: str


def plan_window(
    messages: Sequence[MessageLike],
    *,
    max_turns: int | None = None,
    max_tokens: int | None = None,
    counter: Counter | None = None,
    cache: TokenCache | None = None,
    key: str = "",
) -> WindowPlan:
    """Choose the exchanges to send: the last `max_turns`, then the oldest dropped until the request
    fits `max_tokens` (counted with `counter`). Pinned exchanges and the newest exchange always stay.

    An under-budget window costs one count (zero if cached); an over-budget one is trimmed by an
    estimate from the characters per token of the last count, then re-counted to confirm.
    """
    cache = cache or TokenCache()
    exs = exchanges(messages)
    pinned = [i for i, m in enumerate(messages) if m.pinned]
    pinned_ex = {n for n, ex in enumerate(exs) if any(messages[i].pinned for i in ex)}
    keep = list(range(len(exs)))
    reasons: list[str] = []
    if max_turns is not None and len(exs) > max(1, max_turns):
        recent = set(keep[-max(1, max_turns) :])
        keep = [n for n in keep if n in recent or n in pinned_ex]
        if len(keep) < len(exs):
            reasons.append(f"older than the last {max_turns} turns")
    by_turns = set(keep)

    def selected(kept: list[int]) -> list[MessageLike]:
        return [messages[i] for n in kept for i in exs[n]]

    tokens: int | None = None
    ratio: float | None = None  # tokens per character of the last count
    if max_tokens is not None and counter is not None and exs:
        known = cache.peek(key, to_api(selected(keep)))
        if key in cache.last and (known is None or known > max_tokens):
            # Estimate from the last count (the window only changed at its ends) and trim before counting,
            # so an over-budget window usually costs one count too.
            last_tokens, last_chars = cache.last[key]
            rate = last_tokens / max(1, last_chars)
            chars = sum(_chars(m) for m in selected(keep))
            for n in [n for n in keep[:-1] if n not in pinned_ex]:
                if last_tokens + rate * (chars - last_chars) <= max_tokens * _SAFETY:
                    break
                keep.remove(n)
                chars -= sum(_chars(messages[i]) for i in exs[n])
        while True:
            window = selected(keep)
            chars = sum(_chars(m) for m in window)
            api = to_api(window)
            if not api:  # nothing to send (no user turn yet): nothing to count
                break
            tokens = cache.count(key, api, counter)
            cache.last[key] = (tokens, chars)
            ratio = tokens / max(1, chars)
            droppable = [n for n in keep[:-1] if n not in pinned_ex]
            if tokens <= max_tokens or not droppable:
                break
            excess = tokens - max_tokens * _SAFETY
            for n in droppable:  # oldest first, by estimated size
                keep.remove(n)
                excess -= ratio * sum(_chars(messages[i]) for i in exs[n])
                if excess <= 0:
                    break
        if len(keep) < len(by_turns):
            reasons.append(f"over the {max_tokens}-token context budget")
    included = [i for n in keep for i in exs[n]]
    kept = set(included)
    dropped = [i for i in range(len(messages)) if i not in kept]
    dropped_tokens = round(ratio * sum(_chars(messages[i]) for i in dropped)) if ratio and dropped else None
    return WindowPlan(included, dropped, pinned, tokens, dropped_tokens, "; ".join(reasons))
