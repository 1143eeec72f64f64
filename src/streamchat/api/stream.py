"""Engine output parts, turned into Messages API stream events by pure functions.

An engine yields `Part`s; `step` folds them into the exact event sequence the API sends
(`message_start`, `content_block_start`, `ping`, deltas, `content_block_stop`, `message_delta`,
`message_stop`); `apply_event` folds events back into a message, for non-streaming replies.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

import jiter

Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    thinking: str


@dataclass(frozen=True, slots=True)
class SignatureDelta:
    signature: str


@dataclass(frozen=True, slots=True)
class ToolUseStart:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class InputJsonDelta:
    partial_json: str


@dataclass(frozen=True, slots=True)
class BlockStop:
    """Ends the open block (a following part of the same kind then starts a new block)."""


@dataclass(frozen=True, slots=True)
class Finish:
    stop_reason: str
    output_tokens: int
    stop_sequence: str | None = None


Part = TextDelta | ThinkingDelta | SignatureDelta | ToolUseStart | InputJsonDelta | BlockStop | Finish


@dataclass(frozen=True, slots=True)
class StreamState:
    """What the event builder knows between parts."""

    message_id: str
    model: str
    input_tokens: int
    index: int = -1  # index of the open block, or of the last one closed
    open_kind: str | None = None  # "text" | "thinking" | "tool_use" | None
    thinking_text_hash: Any = None
    thinking_parts: int = 0  # thinking deltas so far: a token each (usage.output_tokens_details)
    signed: bool = False
    pinged: bool = False
    finished: bool = False


def usage(input_tokens: int, output_tokens: int, thinking_tokens: int = 0) -> dict[str, Any]:
    """A full usage object, as in message_start and non-streaming replies (every field of the SDK's
    `Usage`: nothing is cached, no server tool runs, and a local model has no region or fast mode)."""
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"thinking_tokens": thinking_tokens},
        "server_tool_use": None,
        "service_tier": "standard",
        "inference_geo": "not_available",
        "speed": "standard",
    }


def start(state: StreamState) -> Event:
    """The `message_start` event: an empty assistant message with full usage."""
    return {
        "type": "message_start",
        "message": {
            "id": state.message_id,
            "type": "message",
            "role": "assistant",
            "model": state.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "stop_details": None,
            "container": None,
            "diagnostics": None,
            "usage": usage(state.input_tokens, 0),
        },
    }


def _signature(thinking_hash: Any) -> str:
    digest = thinking_hash.digest() if thinking_hash is not None else hashlib.sha256().digest()
    return base64.b64encode(b"streamchat-local:" + digest).decode()


def _close(state: StreamState) -> tuple[StreamState, list[Event]]:
    if state.open_kind is None:
        return state, []
    events: list[Event] = []
    if state.open_kind == "thinking" and not state.signed:
        sig = _signature(state.thinking_text_hash)
        events.append(_delta(state.index, {"type": "signature_delta", "signature": sig}))
    events.append({"type": "content_block_stop", "index": state.index})
    return replace(state, open_kind=None, signed=False, thinking_text_hash=None), events


def _delta(index: int, delta: dict[str, Any]) -> Event:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def _open(state: StreamState, kind: str, block: dict[str, Any]) -> tuple[StreamState, list[Event]]:
    state, events = _close(state)
    state = replace(state, index=state.index + 1, open_kind=kind)
    events.append({"type": "content_block_start", "index": state.index, "content_block": block})
    if not state.pinged:
        events.append({"type": "ping"})
        state = replace(state, pinged=True)
    if kind == "thinking":
        state = replace(state, thinking_text_hash=hashlib.sha256())
    return state, events


def step(state: StreamState, part: Part) -> tuple[StreamState, list[Event]]:
    """Fold one engine part into the events the API would send for it."""
    if state.finished:
        raise ValueError("stream already finished")
    events: list[Event]
    if isinstance(part, TextDelta):
        if not part.text:
            return state, []
        events = []
        if state.open_kind != "text":
            state, events = _open(state, "text", {"type": "text", "text": ""})
        events.append(_delta(state.index, {"type": "text_delta", "text": part.text}))
        return state, events
    if isinstance(part, ThinkingDelta):
        if not part.thinking:
            return state, []
        events = []
        if state.open_kind != "thinking":
            state, events = _open(state, "thinking", {"type": "thinking", "thinking": "", "signature": ""})
        state.thinking_text_hash.update(part.thinking.encode())
        state = replace(state, thinking_parts=state.thinking_parts + 1)
        events.append(_delta(state.index, {"type": "thinking_delta", "thinking": part.thinking}))
        return state, events
    if isinstance(part, SignatureDelta):
        if state.open_kind != "thinking":
            return state, []
        state = replace(state, signed=True)
        return state, [_delta(state.index, {"type": "signature_delta", "signature": part.signature})]
    if isinstance(part, ToolUseStart):
        return _open(state, "tool_use", {"type": "tool_use", "id": part.id, "name": part.name, "input": {}})
    if isinstance(part, InputJsonDelta):
        if state.open_kind != "tool_use" or not part.partial_json:
            return state, []
        return state, [_delta(state.index, {"type": "input_json_delta", "partial_json": part.partial_json})]
    if isinstance(part, BlockStop):
        return _close(state)
    # Finish
    state, events = _close(state)
    events.append(
        {
            "type": "message_delta",
            "delta": {
                "stop_reason": part.stop_reason,
                "stop_sequence": part.stop_sequence,
                "stop_details": None,
                "container": None,
            },
            "usage": {  # cumulative; the optional counts that do not apply are left out, as the API does
                "input_tokens": state.input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": part.output_tokens,
                "output_tokens_details": {"thinking_tokens": min(state.thinking_parts, part.output_tokens)},
            },
        }
    )
    events.append({"type": "message_stop"})
    return replace(state, finished=True), events


def encode_sse(event: Event) -> bytes:
    """One server-sent event: `event: <type>` and compact JSON `data:`."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


def _tool_input(raw: str) -> Any:
    """A tool_use block's input; JSON cut short by max_tokens is parsed as far as it goes, like the SDK."""
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        pass
    try:
        return jiter.from_json(raw.encode(), partial_mode=True)
    except ValueError:
        return {}


def apply_event(message: dict[str, Any], event: Event) -> dict[str, Any]:
    """Fold one stream event into a message snapshot (the non-streaming reply is the final fold).

    Mutates and returns `message`; `message_start` returns a fresh copy of the started message.
    """
    kind = event["type"]
    if kind == "message_start":
        started: dict[str, Any] = json.loads(json.dumps(event["message"]))
        started["_json"] = {}
        return started
    if kind == "content_block_start":
        message["content"].append(dict(event["content_block"]))
    elif kind == "content_block_delta":
        block = message["content"][event["index"]]
        delta = event["delta"]
        dtype = delta["type"]
        if dtype == "text_delta":
            block["text"] += delta["text"]
        elif dtype == "thinking_delta":
            block["thinking"] += delta["thinking"]
        elif dtype == "signature_delta":
            block["signature"] = delta["signature"]
        elif dtype == "input_json_delta":
            index = event["index"]
            message["_json"][index] = message["_json"].get(index, "") + delta["partial_json"]
    elif kind == "content_block_stop":
        raw = message["_json"].pop(event["index"], None)
        if raw is not None:
            message["content"][event["index"]]["input"] = _tool_input(raw)
    elif kind == "message_delta":
        message["stop_reason"] = event["delta"]["stop_reason"]
        message["stop_sequence"] = event["delta"]["stop_sequence"]
        message["stop_details"] = event["delta"].get("stop_details")
        for name, value in event["usage"].items():  # cumulative counts overwrite
            message["usage"][name] = value
    elif kind == "message_stop":
        message.pop("_json", None)
    return message
