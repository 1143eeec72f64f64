"""Grammars from JSON schemas (`engines.grammar`): every grammar parses in llama.cpp, the supported
schema subset is exactly what the grammar enforces, and structured replies end when their value does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import llama_cpp
import pydantic
import pytest
from anthropic.lib._parse._transform import transform_schema

from streamchat.config import builtin_model_path
from streamchat.engines.grammar import (
    output_format_grammar,
    tool_call_grammar,
    unsupported_schema_feature,
)
from streamchat.engines.output import JsonValueEnd


@pytest.fixture(scope="module")
def vocab() -> Iterator[Any]:
    model = llama_cpp.Llama(str(builtin_model_path()), vocab_only=True, verbose=False)
    yield llama_cpp.llama_model_get_vocab(model.model)
    model.close()


def parses(vocab: Any, grammar: str) -> bool:
    """llama.cpp's own parser accepts the grammar (the sampler is built, then freed)."""
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
    if sampler:
        llama_cpp.llama_sampler_free(sampler)
    return bool(sampler)


class Address(pydantic.BaseModel):
    street: str
    zip: str | None = None


class Person(pydantic.BaseModel):
    name: str
    age: int
    tags: list[str]
    home: Address
    role: str = pydantic.Field(json_schema_extra={"enum": ["admin", "user"]})
    email: str = pydantic.Field(json_schema_extra={"format": "email"})
    born: str = pydantic.Field(json_schema_extra={"format": "date"})


SUPPORTED: list[Any] = [
    transform_schema(Person),  # what `messages.parse(output_format=Person)` sends
    {"type": "string", "minLength": 2, "maxLength": 5},
    {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
    {"anyOf": [{"type": "string"}, {"type": "null"}]},
    {"type": ["string", "number"]},
    {"enum": ["a", 1, None]},
    {"const": {"fixed": True}},
    {"type": "object", "additionalProperties": {"type": "integer"}},
    {"type": "string", "pattern": r"^v\d+\.\d+$"},
    {"type": "string", "pattern": "[a-z]+"},  # unanchored: matched anywhere, as JSON Schema says
    {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}},
            }
        },
        "$ref": "#/$defs/node",
    },
    *[
        {"type": "string", "format": f}
        for f in ("date", "time", "date-time", "uuid", "email", "hostname", "ipv4", "ipv6", "uri", "duration")
    ],
]


@pytest.mark.parametrize("schema", SUPPORTED, ids=[json.dumps(s)[:50] for s in SUPPORTED])
def test_supported_schemas_make_grammars_llama_cpp_parses(vocab: Any, schema: Any) -> None:
    assert unsupported_schema_feature(schema) is None
    assert parses(vocab, output_format_grammar(schema))


UNSUPPORTED: list[tuple[Any, str]] = [
    (
        {"type": "integer", "minimum": 0},
        "output_config.format.schema: the keyword 'minimum' is not supported",
    ),
    (
        {"type": "object", "properties": {"n": {"type": "number", "exclusiveMaximum": 3}}},
        "output_config.format.schema.properties.n: the keyword 'exclusiveMaximum'",
    ),
    ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, "'uniqueItems'"),
    ({"type": "array", "contains": {"type": "string"}}, "'contains'"),
    ({"not": {"type": "string"}}, "'not'"),
    ({"type": "object", "minProperties": 1}, "'minProperties'"),
    ({"type": "object", "patternProperties": {"^a": {}}}, "'patternProperties'"),
    ({"type": "object", "if": {}, "then": {}}, "'if'"),
    (
        {"anyOf": [{"type": "string"}, {"type": "integer", "multipleOf": 2}]},
        "schema.anyOf.1: the keyword 'multipleOf'",
    ),
    ({"type": "string", "format": "iban"}, "schema.format: the string format 'iban' is not supported"),
    ({"type": "strng"}, "schema.type: unknown type 'strng'"),
    ({"$ref": "https://example.com/x.json"}, "only local references"),
    ({"$ref": "#/$defs/missing"}, "the schema cannot be turned into a grammar"),
    ({"allOf": [{"type": "string"}, {"maxLength": 3}]}, "only object schemas can be combined with 'allOf'"),
    ({"type": "object", "properties": {"a": True}}, "schema.properties.a: boolean schemas are not supported"),
    ([{"type": "string"}], "Input should be a valid dictionary"),
]


@pytest.mark.parametrize(("schema", "message"), UNSUPPORTED, ids=[m for _, m in UNSUPPORTED])
def test_unsupported_keywords_are_named_with_their_path(schema: Any, message: str) -> None:
    problem = unsupported_schema_feature(schema)
    assert problem is not None and message in problem


def test_tool_call_grammar_still_parses_with_patterns(vocab: Any) -> None:
    tool = {"name": "tag", "input_schema": {"type": "object", "properties": {
        "version": {"type": "string", "pattern": r"^v\d\.\d$"}}, "required": ["version"]}}  # fmt: skip
    assert parses(vocab, tool_call_grammar([tool]))


@pytest.mark.parametrize(
    ("pieces", "ends_at"),
    [
        (['{"a": "}', '"', ', "b": [1, {"c": "\\""}]', "}", "\n"], 3),
        (["[1, ", "2]"], 1),
        (['{"s": "\\\\"}'], 0),
        (["42"], None),  # a scalar ends with the model's end of turn
    ],
)
def test_json_value_end(pieces: list[str], ends_at: int | None) -> None:
    end = JsonValueEnd()
    done = [end.feed(p) is not None for p in pieces]
    assert (done.index(True) if True in done else None) == ends_at
    assert end.done == (ends_at is not None)
