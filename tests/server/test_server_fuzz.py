"""Property-based: request bodies generated from the SDK's own types, then broken in every way we
could think of, sent to a real server on 127.0.0.1. No body gets a 5xx or a dropped connection;
every refusal is a 400 in the API's error shape naming a field of the body; the server stays up.

Case counts: STREAMCHAT_FUZZ_SCALE (default 1) multiplies every test's `max_examples`.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2 as httpx
import pytest
from anthropic.types import message_count_tokens_params, message_create_params
from anthropic.types.beta import message_create_params as beta_create_params
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sdk_strategies import body_strategy, mutate, replaced
from server_harness import API_KEY, Served

SCALE = float(os.environ.get("STREAMCHAT_FUZZ_SCALE", "1"))
HEADERS = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}
# "a.b.0.c: message": a refusal names the field it is about
FIELD_PATH = re.compile(r"^(?P<path>[A-Za-z_$][\w$-]*(\.[^\s:]+)*): ")
WHOLE_BODY = ("There was an issue with the JSON body", "Request body must be a JSON object")


def fuzz_settings(examples: int) -> Any:
    return settings(max_examples=max(1, int(examples * SCALE)), deadline=None, derandomize=True,
                    database=None, suppress_health_check=list(HealthCheck))  # fmt: skip


@pytest.fixture(scope="module")
def http(shared_server: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_server.url, headers=HEADERS, timeout=30) as client:
        yield client


def segments(path: str) -> list[str | int]:
    return [int(p) if p.isdigit() else p for p in path.split(".")]


def resolves(body: Any, path: list[str | int]) -> bool:
    """The path leads into the body (its last step may be a missing key: "Field required").

    A step may also be the tag segment pydantic-style paths carry (`content.0.text.text`: the
    block's tag, then its field), and a tag can be spelled like one of the block's keys, so both
    readings of a step are tried.
    """
    if not path:
        return True
    step, rest = path[0], path[1:]
    if isinstance(body, list):
        return isinstance(step, int) and step < len(body) and resolves(body[step], rest)
    if not isinstance(body, dict) or not isinstance(step, str):
        return False
    if step in body and resolves(body[step], rest):
        return True
    if not rest:
        return True  # a missing key: "Field required"
    return body.get("type") == step and resolves(body, rest)  # the tag of a tagged union's member


def check_response(response: httpx.Response, body: Any) -> dict[str, Any] | None:
    """The properties every response must have; the error body when it is a refusal."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    assert response.status_code in (200, 400, 413), (response.status_code, response.text[:500])
    assert response.headers["request-id"].startswith("req_")
    if response.status_code == 200:
        if response.headers["content-type"].startswith("text/event-stream"):
            assert response.text.rstrip().endswith('data: {"type":"message_stop"}'), response.text[-300:]
        else:
            payload = response.json()
            if "input_tokens" not in payload:
                anthropic.types.Message.model_validate(payload, strict=True)
        return None
    error = response.json()
    assert set(error) == {"type", "error", "request_id"} and error["type"] == "error"
    assert error["request_id"] == response.headers["request-id"]
    assert error["error"]["type"] in ("invalid_request_error", "request_too_large")
    message = error["error"]["message"]
    assert isinstance(message, str) and message
    found = FIELD_PATH.match(message)
    if "duplicate key" in message or "lone surrogate" in message or "JSON nesting deeper" in message:
        return error  # named from the raw body, where the test broke it (checked by the raw-layer test)
    if not message.startswith(WHOLE_BODY) and found and isinstance(body, dict):
        path = found.group("path")
        if not path.startswith(("messages:", "tools:", "tool_choice:")) and path not in ("messages", "tools"):
            assert resolves(body, segments(path)), (message, json.dumps(body)[:800])
    else:
        assert message.startswith(WHOLE_BODY) or message.startswith(("`max_tokens`", "messages", "tools")), (
            message
        )
    return error


SENT: dict[str, int] = {}  # requests per test, reported at the end


def post(http: httpx.Client, path: str, body: Any, test: str) -> httpx.Response:
    SENT[test] = SENT.get(test, 0) + 1
    return http.post(path, content=body if isinstance(body, bytes) else json.dumps(body).encode())


def send_with_mutations(http: httpx.Client, path: str, body: dict[str, Any], rng: random.Random, count: int,
                        test: str) -> None:  # fmt: skip
    """The body, then `count` breakages of it; a breakage of a body that succeeded must be refused when
    it removed a required top-level field."""
    check_response(post(http, path, body, test), body)
    for _ in range(count):
        broken, _what = mutate(body, rng)
        check_response(post(http, path, broken, test), broken)


GA_BODIES = body_strategy(message_create_params.MessageCreateParamsBase, simple_messages=False)
SIMPLE_BODIES = body_strategy(message_create_params.MessageCreateParamsBase, simple_messages=True)
COUNT_BODIES = body_strategy(message_count_tokens_params.MessageCountTokensParams, simple_messages=False)
BETA_BODIES = body_strategy(beta_create_params.MessageCreateParamsBase, simple_messages=True)
MUTATIONS = 6  # breakages sent per generated body (generation is the slow part)


def capped(body: dict[str, Any], stream: bool) -> dict[str, Any]:
    return {**body, "stream": stream, "max_tokens": min(body.get("max_tokens", 16), 16)}


@fuzz_settings(150)
@given(body=st.one_of(GA_BODIES, SIMPLE_BODIES), stream=st.booleans(), rng=st.randoms(use_true_random=False))
def test_messages_bodies_from_the_sdk_types_and_their_breakages(
    http: httpx.Client, body: dict[str, Any], stream: bool, rng: random.Random
) -> None:
    send_with_mutations(http, "/v1/messages", capped(body, stream), rng, MUTATIONS, "messages")


@fuzz_settings(80)
@given(
    body=st.one_of(
        COUNT_BODIES, SIMPLE_BODIES.map(lambda b: {k: v for k, v in b.items() if k != "max_tokens"})
    ),
    rng=st.randoms(use_true_random=False),
)
def test_count_tokens_bodies_from_the_sdk_types_and_their_breakages(
    http: httpx.Client, body: dict[str, Any], rng: random.Random
) -> None:
    send_with_mutations(http, "/v1/messages/count_tokens", body, rng, 4, "count_tokens")


@fuzz_settings(60)
@given(body=BETA_BODIES, rng=st.randoms(use_true_random=False))
def test_beta_bodies_from_the_sdk_beta_types_and_their_breakages(
    http: httpx.Client, body: dict[str, Any], rng: random.Random
) -> None:
    send_with_mutations(http, "/v1/messages?beta=true", capped(body, False), rng, 3, "beta")


REQUIRED = [("model",), ("max_tokens",), ("messages",), ("messages", 0, "role"), ("messages", 0, "content")]


@fuzz_settings(40)
@given(base=SIMPLE_BODIES)
def test_a_missing_required_field_is_named(http: httpx.Client, base: dict[str, Any]) -> None:
    base = {k: v for k, v in capped(base, False).items() if k not in ("tools", "tool_choice")}
    if check_response(post(http, "/v1/messages", base, "required"), base) is not None:
        return  # refused for another reason already
    for drop in REQUIRED:
        body = replaced(base, drop, ...)
        error = check_response(post(http, "/v1/messages", body, "required"), body)
        assert error is not None
        assert error["error"]["message"] == ".".join(map(str, drop)) + ": Field required"


def raw_breakages(body: dict[str, Any], depth: int) -> list[bytes]:
    """The body broken below the JSON value: every way, each time."""
    text = json.dumps(body)
    inner = text[1:-1]
    numbers = ["NaN", "Infinity", "-Infinity", "1e999", "-1e400", "1" * 5000]
    return [
        *[("{" + inner + f', "temperature": {n}' + "}").encode() for n in numbers],
        ("{" + inner + ', "model": "again"}').encode(),  # a duplicate key
        ("{" + inner + ', "metadata": {"user_id": "\\ud800"}}').encode(),  # a lone surrogate
        text.encode()[: len(text) // 2],  # truncated
        text.encode().replace(b'"', b'"\xff', 1),  # invalid UTF-8
        b"",
        ("{" + inner + ', "metadata": ' + "[" * depth + "]" * depth + "}").encode(),
        ("[" * depth + "]" * depth).encode(),
        (
            "{"
            + inner
            + ', "tools": [{"name": "t", "input_schema": '
            + '{"a":' * depth
            + "1"
            + "}" * depth
            + "}]}"
        ).encode(),
    ]


@fuzz_settings(25)
@given(base=SIMPLE_BODIES, depth=st.integers(129, 100_000))
def test_bodies_broken_below_the_json_layer(http: httpx.Client, base: dict[str, Any], depth: int) -> None:
    for raw in raw_breakages(capped(base, False), depth):
        for path in ("/v1/messages", "/v1/messages/count_tokens"):
            response = post(http, path, raw, "raw")
            error = check_response(response, None)
            assert error is not None and response.status_code == 400, (raw[:200], response.text[:300])


def test_the_server_is_still_up(shared_server: Served) -> None:
    """After all of the above, the same server still answers a normal request."""
    client = shared_server.client()
    reply = client.messages.create(model="any", max_tokens=32, messages=[{"role": "user", "content": "Hi"}])
    assert reply.stop_reason == "end_turn"
    assert shared_server.idle()
    print(f"\nfuzz requests sent: {SENT} ({sum(SENT.values())} in all)")
