"""Request validation: what is accepted, how it is normalised, and the API's messages for what is not."""

from __future__ import annotations

from typing import Any

import pytest

from streamchat.api.errors import InvalidRequestError, error_body, new_id
from streamchat.api.request import parse_json_body, parse_messages_request

USER = [{"role": "user", "content": "Hello"}]


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "any", "max_tokens": 100, "messages": USER, **fields}


def test_minimal_request_is_normalised() -> None:
    request = parse_messages_request(body())
    assert request.model == "any" and request.max_tokens == 100 and not request.stream
    assert request.messages[0].role == "user"
    assert request.messages[0].content == ({"type": "text", "text": "Hello"},)
    assert request.prefill == "" and not request.has_media() and not request.thinking_enabled


def test_unknown_fields_are_ignored_and_options_kept() -> None:
    request = parse_messages_request(
        body(
            future_field={"x": 1},
            metadata={"user_id": "u"},
            stream=True,
            temperature=0,
            top_p=1,
            top_k=3,
            stop_sequences=["END"],
            system=[{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
            thinking={"type": "enabled", "budget_tokens": 1024},
            max_tokens=2048.0,
        )
    )
    assert request.stream and request.temperature == 0.0 and request.top_k == 3
    assert request.stop_sequences == ("END",) and request.system == "A\n\nB"
    assert request.thinking_enabled and request.max_tokens == 2048
    assert request.extra == {"metadata": {"user_id": "u"}}


def test_consecutive_turns_of_one_role_are_merged() -> None:
    request = parse_messages_request(
        body(
            messages=[
                {"role": "user", "content": "one"},
                {"role": "user", "content": [{"type": "text", "text": "two"}]},
            ]
        )
    )
    assert len(request.messages) == 1
    assert [b["text"] for b in request.messages[0].content] == ["one", "two"]


def test_final_assistant_turn_is_a_prefill() -> None:
    request = parse_messages_request(
        body(messages=[*USER, {"role": "assistant", "content": "The answer is"}])
    )
    assert request.prefill == "The answer is"


def test_tool_round_trip_is_accepted() -> None:
    messages = [
        *USER,
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "42"}]}
            ],
        },
    ]
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    request = parse_messages_request(
        body(messages=messages, tools=tools, tool_choice={"type": "tool", "name": "f"})
    )
    assert request.tools == tuple(tools) and request.tool_choice == {"type": "tool", "name": "f"}


def test_media_is_found_in_tool_results() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}
    nested = [
        *USER,
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "shot", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [image]}]},
    ]
    assert parse_messages_request(body(messages=nested)).has_media()


def test_count_only_needs_no_max_tokens() -> None:
    request = parse_messages_request({"model": "m", "messages": USER}, count_only=True)
    assert request.max_tokens == 0


TOOL_USE = {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_9", "name": "f", "input": {}}]}

INVALID: list[tuple[Any, str]] = [
    ([], "Request body must be a JSON object"),
    ({"max_tokens": 5, "messages": USER}, "model: Field required"),
    ({"model": "any", "messages": USER}, "max_tokens: Field required"),
    (body(max_tokens=None), "max_tokens: Input should be a valid integer"),
    (body(max_tokens=-1), "max_tokens: Input should be greater than or equal to 0"),
    (body(max_tokens=True), "max_tokens: Input should be a valid integer"),
    (body(max_tokens=2.5), "max_tokens: Input should be a valid integer, got a number with a fractional"),
    (body(max_tokens=2**64), "max_tokens: Input should be less than or equal to 9223372036854775807"),
    (body(messages=None), "messages: Input should be a valid list"),
    ({"model": "any", "max_tokens": 5}, "messages: Field required"),
    (body(messages="hi"), "messages: Input should be a valid list"),
    (body(messages=[]), "messages: at least one message is required"),
    (body(messages=["hi"]), "messages.0: Input should be a valid dictionary"),
    (body(messages=[{"role": "bot", "content": "x"}]), "messages.0.role: Input should be 'user', "),
    (body(messages=[{"role": "system", "content": "x"}]), 'messages: first message must use the "user" role'),
    (
        body(messages=[*USER, {"role": "system", "content": [{"type": "image", "source": {}}]}]),
        "messages.1.content.0.type: Input should be 'text'",
    ),
    (
        body(messages=[*USER, {"role": "assistant", "content": "Hi"}, {"role": "system", "content": "x"}]),
        "messages.2: a system message must immediately follow a user message",
    ),
    (
        body(messages=[*USER, {"role": "system", "content": "x"}, {"role": "user", "content": "y"}]),
        "messages.1: a system message must be the last message or be followed by an assistant message",
    ),
    (
        body(messages=[*USER, {"role": "system", "content": "a"}, {"role": "system", "content": "b"}]),
        "messages.1: a system message must be the last message",
    ),
    (body(messages=[*USER, {"role": "system", "content": ""}]), "text content blocks must be non-empty"),
    (
        body(messages=[{"role": "user", "content": [{"type": ["text"]}]}]),
        "messages.0.content.0.type: Input should be a valid string",
    ),
    (
        body(messages=[{"role": "user", "content": [{"type": {"a": 1}}]}]),
        "messages.0.content.0.type: Input should be a valid string",
    ),
    (
        body(messages=[{"role": "user", "content": [{"type": "text", "text": 5}]}]),
        "messages.0.content.0.text.text: Input should be a valid string",
    ),
    (body(messages=[{"role": "user"}]), "messages.0.content: Field required"),
    (body(messages=[{"role": "user", "content": ""}]), "messages: text content blocks must be non-empty"),
    (
        body(messages=[{"role": "user", "content": []}]),
        "messages.0: all messages must have non-empty content",
    ),
    (
        body(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]),
        "text content blocks must be non-empty",
    ),
    (
        body(messages=[{"role": "user", "content": [{"type": "video"}]}]),
        "messages.0.content.0.type: Input tag 'video' found using 'type' does not match any of the expected",
    ),
    (
        body(messages=[{"role": "assistant", "content": "x"}]),
        'messages: first message must use the "user" role',
    ),
    (body(messages=[*USER, TOOL_USE]), "messages.1: `tool_use` ids were found without `tool_result` blocks"),
    (
        body(messages=[*USER, TOOL_USE, {"role": "user", "content": "no result"}]),
        "messages.2: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_9",
    ),
    (
        body(messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x"}]}]),
        "unexpected `tool_use_id` found in `tool_result` blocks: toolu_x",
    ),
    (
        body(messages=[*USER, {"role": "assistant", "content": "ends with space "}]),
        "final assistant content cannot end with trailing whitespace",
    ),
    (body(temperature=1.01), "temperature: Input should be less than or equal to 1"),
    (body(temperature=-1), "temperature: Input should be greater than or equal to 0"),
    (body(temperature="hot"), "temperature: Input should be a valid number"),
    (body(top_p=2), "top_p: Input should be less than or equal to 1"),
    (body(top_k=-1), "top_k: Input should be greater than or equal to 0"),
    (body(stop_sequences=[""]), "stop_sequences: Input should be a list of non-empty strings"),
    (body(stop_sequences=[1]), "stop_sequences.0: Input should be a valid string"),
    (body(stop_sequences=["  "]), "stop_sequences: each stop sequence must contain non-whitespace"),
    (body(stream="yes"), "stream: Input should be a valid boolean"),
    (body(system=[{"type": "image"}]), "system.0.type: Input should be 'text'"),
    (body(system=5), "system: Input should be a valid string or a valid list"),
    (body(tools=[{"name": "f"}]), "tools.0.input_schema: Field required"),
    (body(tools=[{"name": "f", "input_schema": {}, "type": "gadget"}]), "tools.0.type: Input tag 'gadget'"),
    (body(tools=[{"name": "f", "input_schema": {"type": "array"}}]), "tools.0.input_schema.type"),
    (body(tools=[{"name": "f", "input_schema": {"type": "object"}}] * 2), "Tool names must be unique"),
    (body(tool_choice={"type": "any"}), "tool_choice: may only be specified while providing tools"),
    (body(thinking={"type": "enabled"}), "thinking.enabled.budget_tokens: Field required"),
    (body(thinking={"type": "sometimes"}), "thinking.type: Input tag 'sometimes' found using 'type'"),
    (body(thinking={"type": "adaptive", "display": "loud"}), "thinking.adaptive.display: Input should be"),
    (body(output_config={"effort": "huge"}), "output_config.effort: Input should be 'low', "),
    (body(output_config={"format": {"type": "json_schema"}}), "output_config.format.schema: Field required"),
    (
        body(output_config={"format": {"type": "xml", "schema": {}}}),
        "output_config.format.type: Input should be 'json_schema'",
    ),
    (
        body(
            messages=[*USER, {"role": "assistant", "content": "{"}],
            output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}},
        ),
        "output_config.format: structured outputs cannot be combined with a prefilled assistant message",
    ),
    (body(service_tier="gold"), "service_tier: Input should be 'auto' or 'standard_only'"),
    (body(speed="warp"), "speed: Input should be "),  # the literal's order is typing's cache's
    (body(inference_geo=5), "inference_geo: Input should be a valid string"),
    (body(cache_control={"type": "forever"}), "cache_control.type: Input should be 'ephemeral'"),
    (body(cache_control={"type": "ephemeral", "ttl": "1d"}), "cache_control.ttl: Input should be '5m' or"),
    (body(container=[1]), "container: Input should be a valid dictionary or a valid string"),
    (body(diagnostics={"previous_message_id": 5}), "diagnostics.previous_message_id: Input"),
    (body(metadata={"user_id": ["u"]}), "metadata.user_id: Input should be a valid string"),
    (body(thinking={"type": "enabled", "budget_tokens": 100}), "greater than or equal to 1024"),
    (body(thinking={"type": "enabled", "budget_tokens": 2048}), "`max_tokens` must be greater than"),
]


@pytest.mark.parametrize(("raw", "message"), INVALID, ids=[m[:40] for _, m in INVALID])
def test_invalid_requests_are_answered_like_the_api(raw: Any, message: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_messages_request(raw)
    assert message in caught.value.message
    assert caught.value.status == 400 and caught.value.error_type == "invalid_request_error"


def test_malformed_json() -> None:
    assert parse_json_body(b'{"a": [1]}') == {"a": [1]}
    for raw in (b'{"a": ', b"\xff\xfe", b""):
        with pytest.raises(InvalidRequestError) as caught:
            parse_json_body(raw)
        assert caught.value.message.startswith("There was an issue with the JSON body of your request")


def test_error_body_and_ids() -> None:
    request_id = new_id("req_")
    assert request_id.startswith("req_01") and len(request_id) == len("req_") + 24
    assert error_body("overloaded_error", "Overloaded", request_id) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": request_id,
    }
    assert InvalidRequestError("bad").body("req_1")["error"] == {
        "type": "invalid_request_error",
        "message": "bad",
    }
