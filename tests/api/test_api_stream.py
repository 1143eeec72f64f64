"""Parts to events (`step`), events to a message (`apply_event`), and SSE framing: pure functions."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event

from streamchat.api.stream import (
    BlockStop,
    Event,
    Finish,
    InputJsonDelta,
    Part,
    SignatureDelta,
    StreamState,
    TextDelta,
    ThinkingDelta,
    ToolUseStart,
    apply_event,
    encode_sse,
    start,
    step,
)

INPUT = {"city": "Zürich", "days": [1, 2]}
PAYLOAD = json.dumps(INPUT, ensure_ascii=False)


def run(parts: list[Part], input_tokens: int = 7) -> list[Event]:
    """Every event of a stream: message_start, then what each part folds into."""
    state = StreamState("msg_01test", "local-model", input_tokens)
    events = [start(state)]
    for part in parts:
        state, new = step(state, part)
        events.extend(new)
    return events


def fold(events: list[Event]) -> dict[str, Any]:
    message: dict[str, Any] = {}
    for event in events:
        message = apply_event(message, event)
    return message


MIXED: list[Part] = [
    ThinkingDelta("Hmm, "),
    ThinkingDelta("weather."),
    TextDelta("Let me "),
    TextDelta("check."),
    ToolUseStart("toolu_01X", "get_weather"),
    InputJsonDelta(PAYLOAD[:9]),
    InputJsonDelta(PAYLOAD[9:]),
    Finish("tool_use", 6),
]


def shape(events: list[Event]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for e in events:
        detail = e["delta"]["type"] if e["type"] == "content_block_delta" else e.get("index")
        out.append((e["type"], detail))
    return out


def test_event_sequence_for_thinking_text_and_tool_use() -> None:
    events = run(MIXED)
    assert shape(events) == [
        ("message_start", None),
        ("content_block_start", 0),
        ("ping", None),
        ("content_block_delta", "thinking_delta"),
        ("content_block_delta", "thinking_delta"),
        ("content_block_delta", "signature_delta"),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", "text_delta"),
        ("content_block_delta", "text_delta"),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_delta", "input_json_delta"),
        ("content_block_delta", "input_json_delta"),
        ("content_block_stop", 2),
        ("message_delta", None),
        ("message_stop", None),
    ]
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert starts == [
        {"type": "thinking", "thinking": "", "signature": ""},
        {"type": "text", "text": ""},
        {"type": "tool_use", "id": "toolu_01X", "name": "get_weather", "input": {}},
    ]
    assert events[-2] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None, "stop_details": None, "container": None},
        "usage": {
            "input_tokens": 7,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 6,
            "output_tokens_details": {"thinking_tokens": 2},
        },
    }
    assert events[0]["message"]["usage"] == FULL_USAGE | {"output_tokens": 0}
    started = events[0]["message"]
    assert started["stop_details"] is None and started["container"] is None and started["diagnostics"] is None


FULL_USAGE = {
    "input_tokens": 7,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
    "output_tokens": 6,
    "output_tokens_details": {"thinking_tokens": 0},
    "server_tool_use": None,
    "service_tier": "standard",
    "inference_geo": "not_available",
    "speed": "standard",
}


def test_events_and_message_carry_every_field_of_the_sdk_models() -> None:
    """Every field the SDK's models define is there, with a type they accept (validated strictly)."""
    from anthropic.types import Message, RawMessageStreamEvent, Usage
    from pydantic import TypeAdapter

    events = run(MIXED)
    adapter: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
    for event in events:
        if event["type"] != "ping":  # the SDK's event union has no ping (its stream drops them)
            adapter.validate_python(event, strict=True)
    message = fold(events)
    Message.model_validate(message, strict=True)
    assert set(Message.model_fields) == set(message)
    assert set(Usage.model_fields) == set(message["usage"])
    delta = events[-2]["delta"]
    assert set(anthropic_delta_fields()) == set(delta)


def anthropic_delta_fields() -> list[str]:
    from anthropic.types.raw_message_delta_event import Delta

    return list(Delta.model_fields)


def test_fold_gives_the_final_message() -> None:
    message = fold(run(MIXED))
    signature = message["content"][0].pop("signature")
    assert isinstance(signature, str) and signature
    assert message == {
        "id": "msg_01test",
        "type": "message",
        "role": "assistant",
        "model": "local-model",
        "content": [
            {"type": "thinking", "thinking": "Hmm, weather."},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_01X", "name": "get_weather", "input": INPUT},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "stop_details": None,
        "container": None,
        "diagnostics": None,
        "usage": FULL_USAGE | {"output_tokens_details": {"thinking_tokens": 2}},
    }


@pytest.mark.parametrize(
    "parts",
    [
        MIXED,
        [TextDelta("a"), BlockStop(), TextDelta("b"), Finish("stop_sequence", 2, "STOP")],
        [ToolUseStart("toolu_1", "f"), InputJsonDelta('{"q": "ab'), Finish("max_tokens", 1)],
        [Finish("end_turn", 0)],
    ],
    ids=["mixed", "two-text-blocks", "tool-cut-by-max-tokens", "empty"],
)
def test_fold_agrees_with_the_sdk_accumulator(parts: list[Part]) -> None:
    """The non-streaming reply (our fold) equals what the SDK builds from the same stream."""
    events = [e for e in run(parts) if e["type"] != "ping"]  # the SDK never sees pings
    snapshot: Any = None
    json_bufs: dict[int, bytes] = {}
    for event in events:
        snapshot = accumulate_event(
            event=copy.deepcopy(event), current_snapshot=snapshot, json_bufs=json_bufs
        )
    ours = fold(events)
    theirs = snapshot.to_dict()
    for block in theirs["content"]:
        block.pop("parsed_output", None)
    # fields newer than this server's wire format (e.g. stop_details) are optional: absent here, None there
    theirs = {k: v for k, v in theirs.items() if k in ours or v is not None}
    assert ours == theirs


def test_deltas_stay_in_their_block_and_a_new_block_follows_a_stop() -> None:
    events = run(
        [TextDelta("a"), TextDelta(""), BlockStop(), BlockStop(), TextDelta("b"), Finish("end_turn", 2)]
    )
    assert shape(events)[1:] == [
        ("content_block_start", 0),
        ("ping", None),
        ("content_block_delta", "text_delta"),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", "text_delta"),
        ("content_block_stop", 1),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert [b["text"] for b in fold(events)["content"]] == ["a", "b"]


def test_engine_signature_replaces_the_generated_one() -> None:
    events = run([ThinkingDelta("x"), SignatureDelta("c2lnbmVk"), TextDelta("y"), Finish("end_turn", 2)])
    signatures = [
        e["delta"]["signature"]
        for e in events
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "signature_delta"
    ]
    assert signatures == ["c2lnbmVk"]


def test_generated_signature_depends_on_the_thinking() -> None:
    def signature(thinking: str) -> str:
        return str(fold(run([ThinkingDelta(thinking), Finish("end_turn", 1)]))["content"][0]["signature"])

    assert signature("a") == signature("a") != signature("b")


def test_stray_parts_make_no_events() -> None:
    events = run([InputJsonDelta('{"a": 1}'), SignatureDelta("s"), ThinkingDelta(""), Finish("end_turn", 0)])
    assert shape(events) == [("message_start", None), ("message_delta", None), ("message_stop", None)]


def test_nothing_after_finish() -> None:
    state = StreamState("msg_1", "m", 1)
    state, _ = step(state, Finish("end_turn", 0))
    with pytest.raises(ValueError):
        step(state, TextDelta("late"))


def test_encode_sse() -> None:
    event = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "héllo\n✓"}}
    raw = encode_sse(event)
    assert (
        raw
        == (
            'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            '"delta":{"type":"text_delta","text":"héllo\\n✓"}}\n\n'
        ).encode()
    )
    name, data = raw.decode().rstrip("\n").split("\n")
    assert json.loads(data.removeprefix("data: ")) == event and name == "event: content_block_delta"
