"""Today's request surface through the real SDK (strict response validation): system-role messages,
thinking modes, structured outputs (`messages.parse`, `messages.stream(output_format=...)`), the
accepted-without-effect fields, `max_tokens: 0`, and the beta endpoint's own types."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pydantic
import pytest
from server_harness import USER, Served

from streamchat.api.request import MessagesRequest


class City(pydantic.BaseModel):
    name: str
    country: str
    population: int


CITY = {"name": "Oslo", "country": "Norway", "population": 709000}
MID_SYSTEM = [*USER, {"role": "system", "content": "From now on, answer in French."}]


class Seen:
    """The requests an engine was asked to answer (wraps a served RecordingEngine's generate)."""

    def __init__(self, served: Served) -> None:
        self.requests: list[MessagesRequest] = []
        original = served.engine.generate

        def generate(request: MessagesRequest, cancel: Any) -> Any:
            self.requests.append(request)
            return original(request, cancel)

        served.engine.generate = generate  # type: ignore[method-assign]


def test_parse_returns_the_model_type(serve: Any) -> None:
    served = serve(json.dumps(CITY), chunk=6)
    seen = Seen(served)
    parsed = served.client().messages.parse(model="any", max_tokens=256, messages=USER, output_format=City)
    assert parsed.parsed_output == City(**CITY)
    assert parsed.content[0].type == "text" and json.loads(parsed.content[0].text) == CITY
    schema = seen.requests[-1].output_format
    assert schema is not None and schema["required"] == ["name", "country", "population"]


def test_stream_with_output_format_gives_parsed_output_and_plain_text_deltas(serve: Any) -> None:
    served = serve(json.dumps(CITY), chunk=6)
    with served.client().messages.stream(model="any", max_tokens=256, messages=USER, output_format=City) as s:
        kinds = [e.type for e in s]
        final = s.get_final_message()
    assert kinds.count("text") > 3 and "input_json" not in kinds  # ordinary text deltas
    assert final.parsed_output == City(**CITY)


def test_output_format_as_a_schema_dict(serve: Any) -> None:
    served = serve(json.dumps(CITY), chunk=50)
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
              "additionalProperties": False}  # fmt: skip
    reply = served.client().messages.create(
        model="any", max_tokens=64, messages=USER,
        output_config={"format": {"type": "json_schema", "schema": schema}, "effort": "low"},
    )  # fmt: skip
    assert json.loads(reply.content[0].text) == CITY  # the script engine returns its script as is


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ({"type": "number", "multipleOf": 2}, "schema: the keyword 'multipleOf' is not supported"),
        ({"type": "object", "properties": {"a": {"not": {"type": "string"}}}}, "schema.properties.a:"),
        ({"type": "string", "format": "credit-card"}, "the string format 'credit-card' is not supported"),
        ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, "'uniqueItems'"),
        ({"type": "object", "if": {}, "then": {}}, "the keyword 'if' is not supported"),
        ({"$ref": "https://example.com/s.json"}, "only local references"),
    ],
)
def test_schemas_the_grammar_cannot_hold_are_refused(
    shared_server: Served, schema: Any, fragment: str
) -> None:
    client = shared_server.client()
    runs = len(shared_server.engine.runs)
    config: Any = {"format": {"type": "json_schema", "schema": schema}}
    for call, extra in ((client.messages.create, {"max_tokens": 64}), (client.messages.count_tokens, {})):
        with pytest.raises(anthropic.BadRequestError) as caught:
            call(model="any", messages=USER, output_config=config, **extra)
        assert fragment in caught.value.message and "output_config.format.schema" in caught.value.message
    assert len(shared_server.engine.runs) == runs


def test_system_messages_are_kept_in_place_and_counted(serve: Any) -> None:
    served = serve("D'accord.")
    seen = Seen(served)
    client = served.client()
    reply = client.messages.create(model="any", max_tokens=64, system="Be brief.", messages=MID_SYSTEM)
    assert reply.content[0].type == "text" and reply.content[0].text == "D'accord."
    request = seen.requests[-1]
    assert [m.role for m in request.messages] == ["user", "system"]
    assert request.messages[1].text == "From now on, answer in French." and request.system == "Be brief."
    with_it = client.messages.count_tokens(model="any", messages=MID_SYSTEM).input_tokens
    without = client.messages.count_tokens(model="any", messages=USER).input_tokens
    assert with_it > without
    # followed by an assistant turn (a prefill), as the API allows
    prefilled = [*MID_SYSTEM, {"role": "assistant", "content": "D'accord"}]
    assert client.messages.create(model="any", max_tokens=64, messages=prefilled).content


@pytest.mark.parametrize(
    "thinking",
    [
        {"type": "adaptive"},
        {"type": "adaptive", "display": "omitted"},
        {"type": "disabled"},
        {"type": "enabled", "budget_tokens": 1024, "display": "summarized"},
    ],
)
def test_thinking_modes(shared_server: Served, thinking: Any) -> None:
    reply = shared_server.client().messages.create(
        model="any", max_tokens=2048, messages=USER, thinking=thinking
    )
    assert reply.stop_reason == "end_turn"


def test_fields_accepted_without_effect(shared_server: Served) -> None:
    reply = shared_server.client().messages.create(
        model="any", max_tokens=64, messages=USER,
        output_config={"effort": "xhigh"}, cache_control={"type": "ephemeral", "ttl": "1h"},
        service_tier="standard_only", speed="fast", inference_geo="eu",
        diagnostics={"previous_message_id": None},
        container="container_01abc", metadata={"user_id": "u-1"},
    )  # fmt: skip
    assert reply.content and reply.usage.service_tier == "standard" and reply.usage.speed == "standard"
    assert reply.stop_details is None and reply.diagnostics is None


def test_max_tokens_zero_warms_and_answers_nothing(serve: Any) -> None:
    served = serve("Never sent.")
    client = served.client()
    reply = client.messages.create(model="any", max_tokens=0, messages=USER)
    assert reply.content == [] and reply.stop_reason == "max_tokens" and reply.usage.output_tokens == 0
    with client.messages.stream(model="any", max_tokens=0, messages=USER) as stream:
        kinds = [e.type for e in stream]
    assert kinds == ["message_start", "message_delta", "message_stop"]
    assert not served.engine.runs  # the engine never ran
    assert served.idle()


def test_beta_endpoint_checks_beta_fields(shared_server: Served) -> None:
    client = shared_server.client()
    edits = [{"type": "clear_thinking_20251015", "keep": "all"}]
    reply = client.beta.messages.create(
        model="any", max_tokens=64, messages=USER, context_management={"edits": edits},
        thinking={"type": "adaptive", "display": "updates"}, betas=["context-management-2025-06-27"],
    )  # fmt: skip
    assert reply.content
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.beta.messages.create(
            model="any", max_tokens=64, messages=USER, betas=["context-management-2025-06-27"],
            context_management={"edits": [{"type": "forget_everything"}]},
        )  # fmt: skip
    assert "context_management.edits.0.type: Input tag 'forget_everything'" in caught.value.message
