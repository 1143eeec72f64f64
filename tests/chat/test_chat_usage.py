"""Per-turn usage series and conversation totals, from what the store keeps."""

from __future__ import annotations

from typing import Any

import pytest
from chat_harness import script

from streamchat.chat import pricing
from streamchat.chat.conversation import Conversation
from streamchat.chat.messages import ChatMessage
from streamchat.chat.usage import TurnUsage, conversation_totals, usage_series


def text(role: str, words: str, usage: dict[str, int] | None = None) -> ChatMessage:
    return ChatMessage(role, [{"type": "text", "text": words}], usage=usage)  # type: ignore[arg-type]


HISTORY = [
    text("user", "one"),
    ChatMessage("assistant", [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
                usage={"input_tokens": 100, "output_tokens": 10, "cache_read_input_tokens": 50}),
    ChatMessage("user", [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]),
    text("assistant", "done", {"input_tokens": 120, "output_tokens": 5}),  # the same reply's second round
    text("user", "two"),  # its request failed before it started: no reply
    text("user", "three"),
    text("assistant", "partial then continued", {"input_tokens": 300, "output_tokens": 40}),
]  # fmt: skip


def test_one_entry_per_reply_with_its_rounds_summed() -> None:
    series = usage_series(HISTORY, "claude-sonnet-4-5")
    price = pricing.price_for("claude-sonnet-4-5")
    assert price is not None
    first_cost = (220 * price.input + 15 * price.output + 50 * price.cache_read) / 1_000_000
    assert series == [
        TurnUsage(1, 220, 15, pytest.approx(first_cost), 0, 50),  # type: ignore[arg-type]
        TurnUsage(6, 300, 40, pytest.approx((300 * price.input + 40 * price.output) / 1e6)),  # type: ignore[arg-type]
    ]
    assert series[0].context_tokens == 270
    assert [t.cost for t in usage_series(HISTORY, "some-local-model")] == [None, None]  # unknown price
    assert [t.cost for t in usage_series(HISTORY, "x", local=True)] == [0.0, 0.0]
    assert usage_series([]) == [] and usage_series([text("user", "hi")]) == []


def test_totals() -> None:
    totals = conversation_totals(HISTORY, "claude-sonnet-4-5")
    assert (totals.input_tokens, totals.output_tokens, totals.cache_read_input_tokens, totals.turns) == (
        520, 55, 50, 2)  # fmt: skip
    assert totals.cost == pytest.approx(sum(t.cost or 0 for t in usage_series(HISTORY, "claude-sonnet-4-5")))
    assert conversation_totals(HISTORY, "unknown").cost is None
    assert conversation_totals([], "claude-sonnet-4-5").cost == 0.0


def test_a_saved_conversations_series_matches_what_each_reply_reported(harness: Any, store: Any) -> None:
    h = harness(script("First answer.", "Second, a little longer answer.", "Third."))
    conv = h.conversation(store, local=True)
    ends = [conv.send(f"question {n}").wait() for n in range(3)]
    series = usage_series(Conversation.resume(h.client, store, conv.id).messages, local=True)
    reported = [(e.input_tokens, e.output_tokens) for e in ends]
    assert [(t.input_tokens, t.output_tokens) for t in series] == reported
    assert [t.index for t in series] == [1, 3, 5] and series[0].input_tokens < series[2].input_tokens
