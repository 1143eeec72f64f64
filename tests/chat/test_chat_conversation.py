"""Conversation over a real server and the real SDK: events, history, persona, tools, window."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chat_harness import script

from streamchat.chat.conversation import ChatMessage, Conversation
from streamchat.chat.events import (
    BlockEnd,
    BlockStart,
    Delta,
    ToolCall,
    ToolResult,
    TurnEnd,
    UsageUpdate,
    WindowNotice,
)
from streamchat.chat.tools import ToolSet
from streamchat.chat.window import is_user_text


def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


MIXED = script(
    {"blocks": [
        {"type": "thinking", "thinking": "The user greets me."},
        {"type": "text", "text": "Let me add. "},
        {"type": "tool_use", "name": "add", "input": {"a": 2, "b": 3}},
    ]},
    "It is 5.",
)  # fmt: skip


def kinds(events: list[Any]) -> list[str]:
    out = []
    for e in events:
        name = type(e).__name__
        if isinstance(e, (BlockStart, BlockEnd, Delta)):
            name += f":{e.kind}"
        if not out or out[-1] != name or not name.startswith("Delta"):
            out.append(name)
    return out


def test_stream_events_in_order_with_thinking_text_and_tool_loop(harness: Any) -> None:
    h = harness(MIXED)
    conv = h.conversation(tools=ToolSet.from_functions([add]), confirm=lambda name, data: True, local=True,
                          thinking=True)  # fmt: skip
    events = list(conv.send("hello"))
    assert kinds(events) == [
        "UsageUpdate",
        "BlockStart:thinking", "Delta:thinking", "BlockEnd:thinking",
        "BlockStart:text", "Delta:text", "BlockEnd:text",
        "BlockStart:tool_use", "Delta:tool_use", "BlockEnd:tool_use",
        "UsageUpdate", "ToolCall", "ToolResult",
        "UsageUpdate", "BlockStart:text", "Delta:text", "BlockEnd:text", "UsageUpdate",
        "TurnEnd",
    ]  # fmt: skip
    assert (
        "".join(e.text for e in events if isinstance(e, Delta) and e.kind == "thinking")
        == "The user greets me."
    )
    tool_end = next(e for e in events if isinstance(e, BlockEnd) and e.kind == "tool_use")
    assert tool_end.input == {"a": 2, "b": 3}
    call = next(e for e in events if isinstance(e, ToolCall))
    result = next(e for e in events if isinstance(e, ToolResult))
    assert (call.name, call.input, result.output, result.is_error) == ("add", {"a": 2, "b": 3}, "5", False)
    end = events[-1]
    assert isinstance(end, TurnEnd) and end.status == "complete" and end.stop_reason == "end_turn"
    usage = [e for e in events if isinstance(e, UsageUpdate)]
    assert end.input_tokens == usage[1].input_tokens + usage[3].input_tokens > 0
    assert end.output_tokens == usage[1].output_tokens + usage[3].output_tokens > 0
    assert end.cost == 0.0 and conv.totals.cost == 0.0 and conv.totals.turns == 1
    assert conv.totals.input_tokens == end.input_tokens
    assert [m.role for m in conv.messages] == ["user", "assistant", "user", "assistant"]
    assert all(m.status == "complete" for m in conv.messages)


def test_history_is_sent_back_exactly_with_thinking_signatures(harness: Any) -> None:
    h = harness(MIXED)
    conv = h.conversation(
        tools=ToolSet.from_functions([add]), thinking=True, local=True, max_context_tokens=100_000, system="S"
    )
    list(conv.send("first"))
    list(conv.send("second"))
    assert 1 <= conv.count_tokens_calls <= 4  # one count per request: under budget, nothing dropped
    # The last request holds every earlier turn exactly as the API returned it.
    sent = h.sent(-1)
    history = [{"role": m.role, "content": m.content} for m in conv.messages[:-1]]
    assert sent == history
    thinking = sent[1]["content"][0]
    assert (
        thinking["type"] == "thinking"
        and thinking["signature"]
        and thinking["thinking"] == "The user greets me."
    )
    assert sent[1]["content"][1] == {"type": "text", "text": "Let me add. "}  # trailing space kept: not final
    assert sent[2]["content"][0]["type"] == "tool_result"
    assert h.engine.requests[-1].thinking == {"type": "enabled", "budget_tokens": 1024}


def test_persona_is_sent_as_system_and_can_change(harness: Any, store: Any) -> None:
    h = harness("Ahoy.")
    conv = h.conversation(store, system="You are a pirate.")
    list(conv.send("hi"))
    assert h.engine.requests[-1].system == "You are a pirate."
    conv.set_system("You are a poet.")
    list(conv.send("again"))
    assert h.engine.requests[-1].system == "You are a poet."
    assert store.load(conv.id).info.system == "You are a poet."


def test_temperature_reaches_the_server_and_is_left_out_with_thinking(harness: Any) -> None:
    h = harness(script("Hi."))
    conv = h.conversation(temperature=0.25)
    assert list(conv.send("hello"))[-1].status == "complete"
    assert h.engine.requests[-1].temperature == 0.25
    conv.options.thinking = True  # the API refuses temperature together with thinking
    assert list(conv.send("again"))[-1].status == "complete"
    assert h.engine.requests[-1].temperature is None
    assert h.engine.requests[-1].thinking_enabled


def test_tool_declined_by_the_user(harness: Any) -> None:
    h = harness(MIXED)
    asked: list[tuple[str, dict[str, Any]]] = []

    def confirm(name: str, data: dict[str, Any]) -> bool:
        asked.append((name, data))
        return False

    conv = h.conversation(tools=ToolSet.from_functions([add]), confirm=confirm)
    events = list(conv.send("hello"))
    result = next(e for e in events if isinstance(e, ToolResult))
    assert asked == [("add", {"a": 2, "b": 3})]
    assert result.is_error and result.output == "declined by the user"
    tool_turn = conv.messages[2].content[0]
    assert tool_turn["type"] == "tool_result" and tool_turn["is_error"] is True
    assert tool_turn["content"] == "declined by the user"
    assert isinstance(events[-1], TurnEnd) and events[-1].status == "complete"
    assert h.sent(-1)[2]["content"][0]["is_error"] is True


def test_window_by_turns_notice_and_report(harness: Any) -> None:
    h = harness("Sure.")
    conv = h.conversation(max_turns=2)
    for i in range(4):
        events = list(conv.send(f"message {i}"))
        notices = [e for e in events if isinstance(e, WindowNotice)]
        assert bool(notices) == (i >= 2)
    assert notices[0].dropped == 4 and "2 turns" in notices[0].reason
    sent = h.sent(-1)
    assert [m["content"][0]["text"] for m in sent if m["role"] == "user"] == ["message 2", "message 3"]
    report = conv.window()
    assert report.included == [4, 5, 6, 7] and report.dropped == [0, 1, 2, 3] and report.max_turns == 2


def test_long_chat_with_budget_stays_flat_and_valid(harness: Any) -> None:
    budget = 400
    checking = [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "name": "add", "input": {"a": 1, "b": 1}},
    ]
    h = harness(
        script({"blocks": checking}, "The sum is two, as computed by the tool; " + "details " * 12), chunk=64
    )
    conv = h.conversation(tools=ToolSet.from_functions([add]), max_context_tokens=budget, local=True)
    ends: list[TurnEnd] = []
    notices = 0
    for turn in range(30):
        events = list(conv.send(f"Question {turn}: what is one plus one? " + "please " * 6))
        notices += sum(isinstance(e, WindowNotice) for e in events)
        end = events[-1]
        assert isinstance(end, TurnEnd) and end.status == "complete", end
        ends.append(end)
        if turn == 1:
            conv.pin(4)  # the second question: pinned from now on
    assert notices > 0
    pinned_text = conv.messages[4].content[0]["text"]
    requests = h.engine.requests
    assert len(requests) == 60
    for request in requests:
        messages = request.messages
        assert messages[0].role == "user"
        assert request.messages[0].content[0].get("type") == "text"
        # every tool_use is answered right after (the server checks it too), every result has its tool_use
        for i, m in enumerate(messages):
            for block in m.content:
                if block.get("type") == "tool_use":
                    assert any(b.get("tool_use_id") == block["id"] for b in messages[i + 1].content)
    for request in requests[4:]:
        assert any(b.get("text") == pinned_text for m in request.messages for b in m.content)
    per_request = [m.usage["input_tokens"] for m in conv.messages if m.role == "assistant" and m.usage]
    assert max(per_request) <= budget
    late = [e.input_tokens for e in ends[10:]]
    assert max(late) - min(late) <= 0.25 * budget  # flat: a long chat costs the same per turn
    assert ends[-1].input_tokens <= 2 * budget  # two requests per turn (tool round)
    assert conv.count_tokens_calls <= len(requests) + 5  # about one count_tokens call per request
    report = conv.window()
    assert report.tokens is not None and report.tokens <= budget and report.dropped and 4 in report.included
    assert 4 in report.pinned


def test_window_never_starts_with_assistant_and_keeps_exchanges_whole(harness: Any) -> None:
    h = harness(script(
        {"blocks": [{"type": "tool_use", "name": "add", "input": {"a": 1, "b": 2}}]}, "Three. " * 30,
    ), chunk=64)  # fmt: skip
    conv = h.conversation(tools=ToolSet.from_functions([add]), max_context_tokens=150)
    for turn in range(6):
        end = list(conv.send(f"turn {turn}"))[-1]
        assert isinstance(end, TurnEnd) and end.status == "complete", end
    report = conv.window()
    first = conv.messages[report.included[0]]
    assert is_user_text(first)
    included = set(report.included)
    for i, m in enumerate(conv.messages):
        if m.role == "assistant" and any(b["type"] == "tool_use" for b in m.content):
            assert (i in included) == (i + 1 in included)  # tool_use and tool_result kept or dropped together
    api = conv.api_messages()
    assert api[0]["role"] == "user" and json.dumps(api[0]).count("tool_result") == 0


def test_system_messages_are_kept_in_history_and_sent_in_place(harness: Any, store: Any) -> None:
    h = harness(script("First.", "Second."))
    conv = h.conversation(store, local=True, max_turns=1)
    list(conv.send("one"))
    instruction = conv.add_system("From now on, answer in French.")
    back = Conversation.resume(h.client, store, conv.id)
    assert [(m.role, m.content) for m in back.messages][-1] == ("system", instruction.content)
    back.options.max_turns = 1  # a knob of the session, not saved
    back.messages.append(ChatMessage("user", [{"type": "text", "text": "two"}]))  # as send() would
    assert back.api_messages() == [  # the last turn only (max_turns=1), the instruction right after it
        {"role": "user", "content": [{"type": "text", "text": "two"}]},
        {"role": "system", "content": [{"type": "text", "text": "From now on, answer in French."}]},
    ]
    back.messages.pop()
    assert list(back.send("two"))[-1].status == "complete"  # the server takes the instruction's place
    back.undo()
    assert conv.undo() and [m.role for m in conv.messages] == []  # the system message went with its turn
    assert store.load(conv.id).messages == []
    with pytest.raises(ValueError):
        conv.add_system("  ")
