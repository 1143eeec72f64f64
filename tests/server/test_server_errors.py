"""Errors as the API sends them, seen through the SDK's exception classes (raw HTTP where it can't)."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2 as httpx
import pytest
from server_harness import API_KEY, USER, Served

TOOL_TURN = {
    "role": "assistant",
    "content": [{"type": "tool_use", "id": "toolu_01A", "name": "f", "input": {}}],
}
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}


def assert_api_error(
    error: anthropic.APIStatusError, status: int, error_type: str, fragment: str = ""
) -> None:
    """Status, `{"type":"error","error":{...},"request_id"}` body, and the `request-id` header agree."""
    assert error.status_code == status
    body = error.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert fragment in body["error"]["message"]
    header = error.response.headers["request-id"]
    assert header.startswith("req_") and error.request_id == header == body["request_id"]


# (create() keyword arguments, message fragment): all answered 400 invalid_request_error.
INVALID = {
    "max_tokens negative": ({"max_tokens": -1}, "max_tokens: Input should be greater than or equal to 0"),
    "max_tokens not a number": (
        {"extra_body": {"max_tokens": "many"}},
        "max_tokens: Input should be a valid integer",
    ),
    "empty messages": ({"messages": []}, "at least one message is required"),
    "bad role": ({"messages": [{"role": "bot", "content": "hi"}]}, "messages.0.role: Input should be"),
    "system message first": ({"messages": [{"role": "system", "content": "hi"}]}, "first message must use"),
    "block type a list": (
        {"messages": [{"role": "user", "content": [{"type": ["text"], "text": "x"}]}]},
        "messages.0.content.0.type: Input should be a valid string",
    ),
    "unknown effort": (
        {"extra_body": {"output_config": {"effort": "extreme"}}},
        "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'",
    ),
    "schema the grammar cannot hold": (
        {"extra_body": {"output_config": {"format": {"type": "json_schema",
                                                     "schema": {"type": "integer", "minimum": 3}}}}},
        "output_config.format.schema: the keyword 'minimum' is not supported in structured outputs",
    ),
    "first turn assistant": (
        {"messages": [{"role": "assistant", "content": "hi"}]},
        "first message must use",
    ),
    "empty text": ({"messages": [{"role": "user", "content": ""}]}, "text content blocks must be non-empty"),
    "empty text block": (
        {"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]},
        "text content blocks must be non-empty",
    ),
    "tool_use without tool_result": (
        {"messages": [*USER, TOOL_TURN, {"role": "user", "content": "and?"}]},
        "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_01A",
    ),
    "temperature above 1": ({"extra_body": {"temperature": 1.5}}, "temperature: Input should be less than"),
    "temperature below 0": (
        {"extra_body": {"temperature": -0.1}},
        "temperature: Input should be greater than",
    ),
    "prefill with trailing space": (
        {"messages": [*USER, {"role": "assistant", "content": "Hi "}]},
        "cannot end with trailing whitespace",
    ),
    "image to a text-only model": (
        {"messages": [{"role": "user", "content": [IMAGE, {"type": "text", "text": "what is it?"}]}]},
        "streamchat-script is a text-only model: image and document content blocks are not supported",
    ),
}


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_requests(shared_server: Served, case: str, stream: bool) -> None:
    client = shared_server.client()
    runs = len(shared_server.engine.runs)
    overrides, fragment = INVALID[case]
    kwargs: dict[str, Any] = {"model": "any", "max_tokens": 64, "messages": USER, **overrides}
    with pytest.raises(anthropic.BadRequestError) as caught:
        if stream:
            with client.messages.stream(**kwargs) as s:
                s.until_done()
        else:
            client.messages.create(**kwargs)
    assert_api_error(caught.value, 400, "invalid_request_error", fragment)
    assert len(shared_server.engine.runs) == runs  # refused before any generation


def test_missing_max_tokens(shared_server: Served) -> None:
    client = shared_server.client()
    with pytest.raises(anthropic.BadRequestError) as caught:  # the typed create() insists on max_tokens
        client.post("/v1/messages", body={"model": "any", "messages": USER}, cast_to=anthropic.types.Message)
    assert_api_error(caught.value, 400, "invalid_request_error", "max_tokens: Field required")


def test_document_in_count_tokens_is_refused(shared_server: Served) -> None:
    client = shared_server.client()
    doc = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "some text"}}
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.count_tokens(model="any", messages=[{"role": "user", "content": [doc]}])
    assert_api_error(caught.value, 400, "invalid_request_error", "text-only model")


def test_body_over_the_size_limit(serve: Any) -> None:
    served = serve(max_body_bytes=64 * 1024)
    client = served.client()
    with pytest.raises(anthropic.ContentTooLargeError) as caught:
        client.messages.create(
            model="any", max_tokens=64, messages=[{"role": "user", "content": "x" * 70_000}]
        )
    assert_api_error(caught.value, 413, "request_too_large")
    # Without a content-length (chunked upload) the limit holds while reading.
    chunks = (
        b'{"model":"any","max_tokens":9,"messages":[{"role":"user","content":"' + b"x" * 40_000,
        b"x" * 40_000 + b'"}]}',
    )
    raw = httpx.post(f"{served.url}/v1/messages", content=iter(chunks), headers={"x-api-key": API_KEY})
    assert raw.status_code == 413 and raw.json()["error"]["type"] == "request_too_large"
    # Just under the limit is fine.
    assert client.messages.create(
        model="any", max_tokens=64, messages=[{"role": "user", "content": "x" * 60_000}]
    )


def test_api_key_both_styles(serve: Any) -> None:
    served = serve(api_key="s3cret")
    by_header = served.client(api_key="s3cret")
    by_bearer = anthropic.Anthropic(
        base_url=served.url, auth_token="s3cret", max_retries=0, _strict_response_validation=True
    )
    assert by_header.messages.create(model="any", max_tokens=8, messages=USER).content
    assert by_bearer.messages.create(model="any", max_tokens=8, messages=USER).content
    assert list(by_bearer.models.list())

    wrong_key = served.client(api_key="wrong")
    wrong_token = anthropic.Anthropic(base_url=served.url, auth_token="wrong", max_retries=0)
    for client in (wrong_key, wrong_token):
        for call in (
            lambda c: c.messages.create(model="any", max_tokens=8, messages=USER),
            lambda c: c.messages.count_tokens(model="any", messages=USER),
            lambda c: c.models.retrieve("streamchat-script"),
        ):
            with pytest.raises(anthropic.AuthenticationError) as caught:
                call(client)
            assert_api_error(caught.value, 401, "authentication_error")
    missing = httpx.post(
        f"{served.url}/v1/messages", json={"model": "any", "max_tokens": 8, "messages": USER}
    )
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "authentication_error"
    assert served.engine.runs and all(r.prompt == "Hello" for r in served.engine.runs)
    assert len(served.engine.runs) == 2  # only the two authenticated replies ran


def test_engine_failure_before_the_stream_is_a_500(serve: Any) -> None:
    client = serve([{"type": "error", "message": "model file is corrupt"}]).client()
    with pytest.raises(anthropic.InternalServerError) as caught:
        client.messages.create(model="any", max_tokens=8, messages=USER)
    assert_api_error(caught.value, 500, "api_error", "model file is corrupt")


def test_malformed_json_and_unknown_routes(shared_server: Served) -> None:
    served = shared_server
    headers = {"x-api-key": API_KEY, "content-type": "application/json", "anthropic-version": "2023-06-01"}
    cases = [
        (
            "POST",
            "/v1/messages",
            b'{"model": "any", "max_tokens": 10,',
            400,
            "invalid_request_error",
            "There was an issue with the JSON body of your request",
        ),
        ("POST", "/v1/messages", b"\xff\xfe not utf-8", 400, "invalid_request_error", "JSON body"),
        ("POST", "/v1/messages", b'["a", "list"]', 400, "invalid_request_error", "must be a JSON object"),
        ("POST", "/v1/messages/count_tokens", b"{nope}", 400, "invalid_request_error", "JSON body"),
        ("POST", "/v1/nothing-here", b"{}", 404, "not_found_error", "/v1/nothing-here"),
        ("GET", "/v1/messages", b"", 405, "invalid_request_error", ""),
    ]
    with httpx.Client(base_url=served.url, headers=headers) as http:
        for method, path, body, status, error_type, fragment in cases:
            response = http.request(method, path, content=body)
            assert response.status_code == status, (path, body, response.text)
            payload = response.json()
            assert payload["type"] == "error" and payload["error"]["type"] == error_type
            assert fragment in payload["error"]["message"]
            assert payload["request_id"] == response.headers["request-id"]
