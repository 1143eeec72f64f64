"""The bytes on the wire, read with a raw HTTP client: SSE framing, event order, headers, auth styles."""

from __future__ import annotations

import json
from typing import Any

import httpx2 as httpx
from server_harness import API_KEY, USER, Served, wait_until

SCRIPT = [
    {"type": "thinking", "thinking": "Think first."},
    {"type": "text", "text": "Then answer."},
    {"type": "tool_use", "id": "toolu_01Wire", "name": "lookup", "input": {"q": "wire format", "n": 3}},
]
HEADERS = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
BODY = {"model": "whatever", "max_tokens": 1000, "messages": USER, "stream": True}


def parse_sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Split an SSE body into (event name, data); every frame must be `event:` + `data:` lines."""
    text = raw.decode()
    assert text.endswith("\n\n")
    frames = []
    for frame in text[:-2].split("\n\n"):
        lines = frame.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), frame
        frames.append((lines[0][len("event: ") :], json.loads(lines[1][len("data: ") :])))
    return frames


def test_exact_event_sequence_with_ping(serve: Any) -> None:
    served = serve(SCRIPT, chunk=5)
    with httpx.Client() as http:
        response = http.post(f"{served.url}/v1/messages", json=BODY, headers=HEADERS)
    assert response.status_code == 200
    frames = parse_sse(response.content)
    for name, data in frames:
        assert name == data["type"]
    # Compact JSON, as the API sends it.
    assert b'data: {"type":"message_start","message":{"id":"msg_' in response.content

    names = [name for name, _ in frames]
    deltas = [d["delta"]["type"] for n, d in frames if n == "content_block_delta"]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names.count("ping") == 1
    assert names[-2:] == ["message_delta", "message_stop"]
    payload = json.dumps(SCRIPT[2]["input"])
    assert deltas == (
        ["thinking_delta"] * 3
        + ["signature_delta"]
        + ["text_delta"] * 3
        + ["input_json_delta"] * -(-len(payload) // 5)
    )

    message = frames[0][1]["message"]
    assert message["model"] == "streamchat-script" and message["content"] == []
    assert message["role"] == "assistant" and message["type"] == "message"
    assert message["stop_reason"] is None and message["stop_sequence"] is None
    assert set(message["usage"]) >= {
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    }
    assert message["usage"]["output_tokens"] == 0 and message["usage"]["input_tokens"] > 0

    starts = [d for n, d in frames if n == "content_block_start"]
    assert [s["content_block"] for s in starts] == [
        {"type": "thinking", "thinking": "", "signature": ""},
        {"type": "text", "text": ""},
        {"type": "tool_use", "id": "toolu_01Wire", "name": "lookup", "input": {}},
    ]
    # Each block is stopped before the next starts, and its deltas carry its index.
    open_index = None
    for name, data in frames:
        if name == "content_block_start":
            assert open_index is None
            open_index = data["index"]
        elif name == "content_block_delta":
            assert data["index"] == open_index
        elif name == "content_block_stop":
            assert data["index"] == open_index
            open_index = None
    assert open_index is None and [s["index"] for s in starts] == [0, 1, 2]

    final = frames[-2][1]
    assert final["delta"] == {"stop_reason": "tool_use", "stop_sequence": None, "stop_details": None,
                              "container": None}  # fmt: skip
    produced = len([d for d in deltas if d != "signature_delta"])
    assert final["usage"]["output_tokens"] == produced
    assert final["usage"]["output_tokens_details"] == {"thinking_tokens": 3}
    assert final["usage"]["input_tokens"] == message["usage"]["input_tokens"]
    assert frames[-1][1] == {"type": "message_stop"}


def test_stream_headers_and_request_id_everywhere(shared_server: Served) -> None:
    url = shared_server.url
    with httpx.Client(base_url=url, headers=HEADERS) as http:
        stream = http.post("/v1/messages", json=BODY)
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["cache-control"] == "no-cache"
        assert stream.headers["x-accel-buffering"] == "no"
        responses = [
            stream,
            http.post("/v1/messages", json={**BODY, "stream": False}),
            http.post("/v1/messages/count_tokens", json={"model": "x", "messages": USER}),
            http.get("/v1/models"),
            http.get("/v1/models/streamchat-script"),
            http.get("/v1/models/nope"),
            http.post("/v1/messages", json={"model": "x", "messages": USER}),
            http.get("/elsewhere"),
        ]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 200, 404, 400, 404]
    ids = [r.headers["request-id"] for r in responses]
    assert all(i.startswith("req_01") for i in ids) and len(set(ids)) == len(ids)
    assert responses[1].headers["content-type"] == "application/json"


def test_auth_styles_versions_and_beta_query(serve: Any) -> None:
    served = serve("ok", api_key="k-123")
    body = {"model": "m", "max_tokens": 5, "messages": USER}
    with httpx.Client(base_url=served.url) as http:
        accepted = [
            http.post("/v1/messages", json=body, headers={"x-api-key": "k-123"}),
            http.post("/v1/messages", json=body, headers={"authorization": "Bearer k-123"}),
            http.post(
                "/v1/messages", json=body, headers={"x-api-key": "k-123", "anthropic-version": "1999-01-01"}
            ),
            http.post(
                "/v1/messages?beta=true",
                json=body,
                headers={"x-api-key": "k-123", "anthropic-beta": "made-up-beta-2099-01-01"},
            ),
            http.post("/v1/messages/count_tokens?beta=true", json=body, headers={"x-api-key": "k-123"}),
            http.get("/v1/models?beta=true", headers={"authorization": "Bearer k-123"}),
            http.post(
                "/v1/messages?beta=true",
                json={**body, "stream": True, "future_knob": [1, 2]},
                headers={"x-api-key": "k-123"},
            ),
        ]
        refused = [
            http.post("/v1/messages", json=body, headers={"x-api-key": "nope"}),
            http.post("/v1/messages", json=body, headers={"authorization": "Bearer nope"}),
            http.post("/v1/messages", json=body),
            http.get("/v1/models"),
        ]
    assert [r.status_code for r in accepted] == [200] * len(accepted), [r.text for r in accepted]
    assert accepted[0].json()["content"] == [{"type": "text", "text": "ok"}]
    assert parse_sse(accepted[-1].content)[-1][0] == "message_stop"
    for r in refused:
        assert r.status_code == 401
        assert r.json() == {
            "type": "error",
            "error": {"type": "authentication_error", "message": "invalid x-api-key"},
            "request_id": r.headers["request-id"],
        }


def test_engine_failure_is_an_error_event_and_the_stream_ends_cleanly(serve: Any) -> None:
    served = serve(
        [{"type": "text", "text": "so far so good"}, {"type": "error", "message": "out of memory"}]
    )
    with (
        httpx.Client() as http,
        http.stream("POST", f"{served.url}/v1/messages", json=BODY, headers=HEADERS) as r,
    ):
        raw = r.read()  # ends without a protocol error
        request_id = r.headers["request-id"]
    frames = parse_sse(raw)
    names = [n for n, _ in frames]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-1] == "error" and "message_stop" not in names
    text = "".join(d["delta"]["text"] for n, d in frames if n == "content_block_delta")
    assert text == "so far so good"
    assert frames[-1][1] == {
        "type": "error",
        "error": {"type": "api_error", "message": "the engine failed: out of memory"},
        "request_id": request_id,
    }
    wait_until(served.idle, what="the slot to be released")


def test_non_streaming_reply_shape(shared_server: Served) -> None:
    with httpx.Client() as http:
        response = http.post(
            f"{shared_server.url}/v1/messages", json={**BODY, "stream": False}, headers=HEADERS
        )
    reply = response.json()
    from anthropic.types import Message

    assert set(reply) == set(Message.model_fields)  # every field today's SDK defines, no other
    assert reply["stop_details"] is None and reply["container"] is None and reply["diagnostics"] is None
    assert reply["content"] == [{"type": "text", "text": "Hello from the script engine."}]
    assert reply["stop_reason"] == "end_turn" and reply["stop_sequence"] is None
    assert reply["usage"]["output_tokens"] == 8 and reply["usage"]["cache_read_input_tokens"] == 0


def test_a_long_wait_for_the_engine_is_kept_alive_with_pings(serve: Any) -> None:
    """While the engine is silent (a long prompt on a slow CPU) the stream sends `ping`s, so a client's
    idle watchdog does not give up; the reply then arrives as usual."""
    served = serve("Worth the wait.", keepalive_seconds=0.05)
    served.engine.hold.add("Hello")
    with (
        httpx.Client(base_url=served.url, headers=HEADERS, timeout=30) as http,
        http.stream("POST", "/v1/messages", json={**BODY, "stream": True}) as response,
    ):
        lines = response.iter_lines()
        names: list[str] = []
        for line in lines:
            if line.startswith("event: "):
                names.append(line[7:])
            if names.count("ping") == 3:
                break
        served.engine.release("Hello")
        names += [line[7:] for line in lines if line.startswith("event: ")]
    assert names[:4] == ["message_start", "ping", "ping", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"] and "content_block_start" in names
    text_client = served.client()
    assert text_client.messages.create(model="any", max_tokens=64, messages=USER).content
