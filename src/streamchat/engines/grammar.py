"""A llama.cpp grammar (GBNF) that only admits a valid tool call.

The call form is `{"name": NAME, "input": INPUT}` where NAME is one of the offered tools and INPUT
matches that tool's `input_schema` (the name fixes the schema: one alternative per tool). The
conversion is llama-cpp-python's port of llama.cpp's json-schema-to-grammar, with two changes:
each tool's `$ref`s resolve inside its own schema, and strings may not hold raw control
characters (JSON forbids them; the converter's port lets them through).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from llama_cpp.llama_grammar import SchemaConverter

from ..api.request import Block

_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_STRICT_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'


def _converter() -> Any:
    converter = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)  # type: ignore[no-untyped-call]
    return converter


def input_schema(tool: Block) -> dict[str, Any]:
    """The tool's input schema, or any object when it has none (server tools)."""
    schema = tool.get("input_schema")
    return copy.deepcopy(schema) if isinstance(schema, dict) else {"type": "object"}


def _convertible(schema: dict[str, Any]) -> bool:
    try:
        probe = _converter()
        probe.visit(probe.resolve_refs(copy.deepcopy(schema), "probe"), "")
    except Exception:  # the converter asserts on schema features it cannot express
        return False
    return True


def tool_call_grammar(tools: Sequence[Block]) -> str:
    """GBNF (root rule `root`) for one call of one of `tools`, its input valid for that tool.

    A schema the converter cannot express falls back to "any JSON object" for that tool. Objects
    admit no properties beyond those listed unless the schema says `additionalProperties`
    (the converter's default, and the right one for a small model that would otherwise ramble).
    """
    if not tools:
        raise ValueError("a tool call grammar needs at least one tool")
    converter = _converter()
    alternatives = []
    for i, tool in enumerate(tools):
        schema = input_schema(tool)
        if not _convertible(schema):
            schema = {"type": "object"}
        schema = converter.resolve_refs(schema, f"tool{i}")  # refs become "tool{i}#/..."
        alternatives.append({
            "type": "object",
            "properties": {"name": {"const": tool["name"]}, "input": schema},
            "required": ["name", "input"],
        })  # fmt: skip
    converter.visit(alternatives[0] if len(alternatives) == 1 else {"oneOf": alternatives}, "")
    grammar: str = converter.format_grammar()
    return grammar.replace(_LOOSE_CHAR, _STRICT_CHAR)
