"""Structured outputs and mid-conversation system messages on the llama engine, with the real
built-in model (SmolLM2-135M-Instruct): the reply is held to the schema's grammar."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest
from anthropic.lib._parse._transform import transform_schema

from streamchat.api.request import MessagesRequest, parse_messages_request
from streamchat.api.stream import Finish, Part, TextDelta
from streamchat.engines.llama import LlamaEngine
from streamchat.engines.prompt import CHATML_TEMPLATE, ChatTemplate, render_prompt


class City(pydantic.BaseModel):
    name: str
    country: str
    population: int
    coastal: bool


class Contact(pydantic.BaseModel):
    email: str = pydantic.Field(json_schema_extra={"format": "email"})
    tags: list[str] = pydantic.Field(max_length=3)
    kind: str = pydantic.Field(json_schema_extra={"enum": ["friend", "work"]})


QUESTION = [{"role": "user", "content": "Describe the city of Paris."}]
ASKS = {  # a question each schema fits (a 135M model rambles on a field it has nothing to put in)
    City: QUESTION,
    Contact: [
        {
            "role": "user",
            "content": "Make a contact card for my colleague Alice, alice@example.com, tags: team, lunch.",
        }
    ],
}


@pytest.fixture(scope="module")
def engine() -> Iterator[LlamaEngine]:
    loaded = LlamaEngine(n_ctx=2048, seed=11)
    yield loaded
    loaded.close()


def request(schema: dict[str, Any] | None, **body: Any) -> MessagesRequest:
    fields: dict[str, Any] = {"model": "m", "max_tokens": 200, "messages": QUESTION, **body}
    if schema is not None:
        fields["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    return parse_messages_request(fields)


def generate(engine: LlamaEngine, req: MessagesRequest) -> list[Part]:
    return list(engine.generate(req, threading.Event()))


def conforms(value: Any, schema: dict[str, Any]) -> bool:
    """`value` is valid for `schema` as sent (the JSON Schema subset these tests' schemas use)."""
    if "enum" in schema:
        return value in schema["enum"]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return (isinstance(value, dict) and set(schema.get("required", ())) <= value.keys()
                and (schema.get("additionalProperties", True) is not False or value.keys() <= props.keys())
                and all(conforms(v, props[k]) for k, v in value.items() if k in props))  # fmt: skip
    if kind == "array":
        return isinstance(value, list) and all(conforms(v, schema.get("items", {})) for v in value)
    types = {"string": str, "integer": int, "boolean": bool, "number": (int, float)}
    if kind in types:
        return isinstance(value, types[kind]) and (kind == "boolean" or not isinstance(value, bool))
    return kind is None


# At temperature 1.0 the 135M model, even under the grammar, often wanders in a free string until
# max_tokens (measured: 14 of 30 Contact replies), and which sampled reply comes out depends on
# the machine's floating point (the wheel is built for its CPU). So the sampled case asks up to 8
# times (one seeded engine: a new seed per request) until a reply ends the turn (the others are cut
# by max_tokens), and the one that ends must be valid for the schema that was sent.
# (The SDK's `transform_schema` moves constraints the API does not enforce, such as `maxItems`,
# into descriptions; the Pydantic model itself is checked on the greedy reply.)
SAMPLED_SEED = 2
SAMPLED_TRIES = 8


@pytest.mark.parametrize("temperature", [0.0, 1.0])
@pytest.mark.parametrize("model", [City, Contact])
def test_reply_is_valid_json_for_the_schema(engine: LlamaEngine, model: type[pydantic.BaseModel],
                                            temperature: float) -> None:  # fmt: skip
    schema = transform_schema(model)
    ask = request(schema, temperature=temperature, messages=ASKS[model])
    if temperature > 0:
        seeded = LlamaEngine(n_ctx=2048, seed=SAMPLED_SEED)
        try:
            for _ in range(SAMPLED_TRIES):
                parts = generate(seeded, ask)
                finish = parts[-1]
                assert isinstance(finish, Finish) and finish.stop_reason in ("end_turn", "max_tokens")
                if finish.stop_reason == "end_turn":
                    break
        finally:
            seeded.close()
    else:
        parts = generate(engine, ask)
    texts = [p.text for p in parts if isinstance(p, TextDelta)]
    finish = parts[-1]
    assert isinstance(finish, Finish) and finish.stop_reason == "end_turn"
    assert len(texts) > 3  # streamed as ordinary text deltas, token by token
    value = json.loads("".join(texts))
    assert conforms(value, schema)  # valid for the schema, not just JSON
    if temperature == 0:
        model.model_validate(value)
    assert finish.output_tokens == len(texts)


def test_a_reply_cut_by_max_tokens_says_so(engine: LlamaEngine) -> None:
    parts = generate(engine, request(transform_schema(City), max_tokens=4, temperature=0))
    finish = parts[-1]
    assert isinstance(finish, Finish) and finish.stop_reason == "max_tokens" and finish.output_tokens == 4


def test_the_format_is_in_the_prompt_and_counted(engine: LlamaEngine) -> None:
    schema = transform_schema(City)
    with_format = engine.count_tokens(request(schema))
    assert with_format > engine.count_tokens(request(None))
    assert '"population"' in engine.prompt(request(schema)).text.text


def test_system_messages_render_where_they_stand() -> None:
    template = ChatTemplate(CHATML_TEMPLATE)
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Tell me a joke."},
        {
            "role": "system",
            "content": [
                {"type": "text", "text": "Jokes must be short."},
                {"type": "text", "text": "No puns."},
            ],
        },
    ]
    text = render_prompt(template, request(None, system="Top.", messages=messages), with_tools=False).text
    assert text == (
        "<|im_start|>system\nTop.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nTell me a joke.<|im_end|>\n"
        "<|im_start|>system\nJokes must be short.\n\nNo puns.<|im_end|>\n<|im_start|>assistant\n"
    )


def test_a_system_message_is_followed_and_counted_on_the_model(engine: LlamaEngine) -> None:
    plain = request(None, messages=QUESTION, temperature=0, max_tokens=24)
    one_word = {"role": "system", "content": "Answer with one word."}
    steered = request(None, temperature=0, max_tokens=24, messages=[*QUESTION, one_word])
    assert engine.count_tokens(steered) > engine.count_tokens(plain)
    assert "<|im_start|>system\nAnswer with one word.<|im_end|>\n<|im_start|>assistant\n" in (
        engine.prompt(steered).text.text
    )
    parts = generate(engine, steered)
    assert isinstance(parts[-1], Finish)


def test_sdk_parse_and_stream_through_the_server(engine: LlamaEngine) -> None:
    """`messages.parse` / `messages.stream(output_format=...)` on the built-in model, over HTTP."""
    import anthropic

    from streamchat.server import ServerSettings, ServerThread, create_app

    with ServerThread(create_app(engine, ServerSettings())) as server:
        client = anthropic.Anthropic(base_url=server.base_url, api_key="local", max_retries=0,
                                     _strict_response_validation=True)  # fmt: skip
        ask: dict[str, Any] = {"model": "local", "max_tokens": 200, "messages": ASKS[City]}
        ask["output_format"] = City
        parsed = client.messages.parse(**ask)
        assert isinstance(parsed.parsed_output, City) and parsed.stop_reason == "end_turn"
        with client.messages.stream(**ask) as s:
            texts = [e.text for e in s if e.type == "text"]
            final = s.get_final_message()
        assert len(texts) > 3 and isinstance(final.parsed_output, City)
        with pytest.raises(anthropic.BadRequestError, match="the keyword 'minimum' is not supported"):
            client.messages.create(model="local", max_tokens=20, messages=ASKS[City], output_config={
                "format": {"type": "json_schema", "schema": {"type": "integer", "minimum": 1}}})  # fmt: skip
