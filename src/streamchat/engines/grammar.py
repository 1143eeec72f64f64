"""llama.cpp grammars (GBNF) from JSON schemas: tool calls, and replies in a structured output format.

Both go through one converter, llama-cpp-python's port of llama.cpp's json-schema-to-grammar, with
two changes: each schema's `$ref`s resolve inside that schema, and strings may not hold raw
control characters (JSON forbids them; the converter's port lets them through).

- `tool_call_grammar(tools)`: the call form `{"name": NAME, "input": INPUT}`, NAME one of the
  tools, INPUT valid for that tool's `input_schema` (one alternative per tool).
- `output_format_grammar(schema)`: a reply that is one JSON value valid for `schema`
  (`output_config.format`). `unsupported_schema_feature(schema)` says first, in the API's manner,
  which keyword the grammar cannot enforce, so such a schema is refused instead of being answered
  with a reply the schema does not hold.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

from ..api.request import Block

_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_STRICT_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'

# Keywords that only describe (the grammar need not enforce them).
_ANNOTATIONS = frozenset({
    "title", "description", "default", "examples", "$comment", "$schema", "$id", "$anchor",
    "deprecated", "readOnly", "writeOnly", "discriminator", "$defs", "definitions",
})  # fmt: skip
# Keywords the converter turns into grammar rules.
_ENFORCED = frozenset({
    "type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems",
    "maxItems", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "pattern", "minLength", "maxLength",
    "format",
})  # fmt: skip
_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
# String formats as patterns the converter enforces (date, time, date-time and uuid it has built in).
_FORMAT_PATTERNS = {
    "email": r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$",
    "hostname": r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$",  # noqa: E501
    "ipv4": r"^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$",  # noqa: E501
    "ipv6": r"^([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}$",
    "uri": r"^[A-Za-z][A-Za-z0-9+.-]*:[^ \"\\<>{}|^`]+$",
    "duration": r"^P([0-9]+Y)?([0-9]+M)?([0-9]+W)?([0-9]+D)?(T([0-9]+H)?([0-9]+M)?([0-9]+(\.[0-9]+)?S)?)?$",
}
_BUILTIN_FORMATS = frozenset({"date", "time", "date-time", "uuid"})
_ALL_OF_PART = frozenset({
    "$ref", "properties", "required", "type", "title", "description", "additionalProperties",
})  # fmt: skip
_IN_SO = " in structured outputs"


def _converter() -> Any:
    from llama_cpp.llama_grammar import SchemaConverter  # loads llama.cpp: only when a grammar is built

    return SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)  # type: ignore[no-untyped-call]


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


_ESCAPE = re.compile(r"\\(.)")
_GBNF_ESCAPES = frozenset('xuUtrn\\"[]-^')


def _gbnf_escape(match: re.Match[str]) -> str:
    # the converter copies a pattern's `\.` into the grammar, where llama.cpp knows no such escape
    return match.group(0) if match.group(1) in _GBNF_ESCAPES else match.group(1)


def _finish(converter: Any) -> str:
    grammar: str = converter.format_grammar()
    return _ESCAPE.sub(_gbnf_escape, grammar.replace(_LOOSE_CHAR, _STRICT_CHAR))


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
    return _finish(converter)


def _where(path: Sequence[str | int]) -> str:
    return "output_config.format.schema" + "".join(f".{p}" for p in path)


SchemaPath = tuple[str | int, ...]


def _subschemas(schema: dict[str, Any], path: SchemaPath) -> list[tuple[Any, SchemaPath]]:
    """The schemas inside `schema`, with their paths."""
    found: list[tuple[Any, SchemaPath]] = []
    for key in ("properties", "$defs", "definitions"):
        if isinstance(schema.get(key), dict):
            found += [(v, (*path, key, k)) for k, v in schema[key].items()]
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if isinstance(schema.get(key), list):
            found += [(v, (*path, key, i)) for i, v in enumerate(schema[key])]
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found.append((schema[key], (*path, key)))
    return found


def _keyword_problem(schema: dict[str, Any], path: SchemaPath) -> str | None:
    for key, value in schema.items():
        if key in _ANNOTATIONS:
            continue
        if key not in _ENFORCED:
            return f"{_where(path)}: the keyword '{key}' is not supported{_IN_SO}"
        if key == "type":
            kinds = value if isinstance(value, list) else [value]
            if not kinds or not all(isinstance(k, str) and k in _TYPES for k in kinds):
                return f"{_where((*path, 'type'))}: unknown type {value!r}"
        elif key == "format" and value not in _BUILTIN_FORMATS and value not in _FORMAT_PATTERNS:
            return f"{_where((*path, 'format'))}: the string format {value!r} is not supported{_IN_SO}"
        elif key == "additionalProperties" and not isinstance(value, (bool, dict)):
            return f"{_where((*path, key))}: must be a boolean or a schema"
        elif key == "properties" and not isinstance(value, dict):
            return f"{_where((*path, key))}: Input should be a valid dictionary"
        elif key == "pattern" and not isinstance(value, str):
            return f"{_where((*path, key))}: Input should be a valid string"
        elif key in ("minItems", "maxItems", "minLength", "maxLength") and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            return f"{_where((*path, key))}: must be a non-negative integer"
        elif key == "required" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return f"{_where((*path, key))}: must be a list of property names"
        elif key == "enum" and not (isinstance(value, list) and value):
            return f"{_where((*path, key))}: must be a non-empty list"
        elif key in ("anyOf", "oneOf", "allOf", "prefixItems") and not (isinstance(value, list) and value):
            return f"{_where((*path, key))}: must be a non-empty list of schemas"
        elif key == "$ref" and not (isinstance(value, str) and value.startswith("#")):
            return f"{_where((*path, key))}: only local references ('#/...') are supported{_IN_SO}"
    if "allOf" in schema:  # the converter merges the properties of object parts, nothing else
        for i, part in enumerate(schema["allOf"]):
            if not isinstance(part, dict) or not set(part) <= _ALL_OF_PART:
                return f"{_where((*path, 'allOf', i))}: only object schemas can be combined with 'allOf'"
    return None


def unsupported_schema_feature(schema: Any) -> str | None:
    """Why `schema` cannot constrain a reply (the first unsupported keyword, with its path), or None."""
    if not isinstance(schema, dict):
        return f"{_where(())}: Input should be a valid dictionary"
    stack: list[tuple[Any, SchemaPath]] = [(schema, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, bool):
            return f"{_where(path)}: boolean schemas are not supported{_IN_SO}"
        if not isinstance(node, dict):
            return f"{_where(path)}: a schema must be an object"
        if (problem := _keyword_problem(node, path)) is not None:
            return problem
        stack.extend(reversed(_subschemas(node, path)))
    try:
        output_format_grammar(schema)
    except Exception as exc:  # the converter's own refusals: a bad $ref, a regex it cannot read
        return f"{_where(())}: the schema cannot be turned into a grammar: {exc}"
    return None


def _with_format_patterns(node: Any) -> Any:
    """`schema` with each `format` the converter lacks written as the equivalent `pattern`."""
    if isinstance(node, list):
        return [_with_format_patterns(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _with_format_patterns(v) if k not in ("enum", "const") else v for k, v in node.items()}
    pattern = _FORMAT_PATTERNS.get(out.get("format"))  # type: ignore[arg-type]
    if pattern is not None and "pattern" not in out:
        out.pop("format")
        out["pattern"] = pattern
    found = out.get("pattern")
    if isinstance(found, str) and not (found.startswith("^") and found.endswith("$")):
        out["pattern"] = f"^.*({found}).*$"  # JSON Schema patterns match anywhere; the converter anchors
    return out


def output_format_grammar(schema: dict[str, Any]) -> str:
    """GBNF (root rule `root`) for a reply that is one JSON value valid for `schema`.

    Check the schema with `unsupported_schema_feature` first: keywords the converter does not know
    are ignored by it. Objects admit no properties beyond those listed unless the schema says
    `additionalProperties` (structured outputs require `additionalProperties: false` anyway).
    """
    converter = _converter()
    resolved = converter.resolve_refs(
        _without_root_ref(_with_format_patterns(copy.deepcopy(schema))), "output"
    )
    converter.visit(resolved, "")
    return _finish(converter)


def _without_root_ref(schema: dict[str, Any]) -> dict[str, Any]:
    """A root `{"$ref": "#/$defs/X", "$defs": ...}` (pydantic's RootModel) as X itself, beside the defs:
    the converter resolves a root `$ref` without looking inside the definitions it points into."""
    for _ in range(len(schema.get("$defs") or ()) + 1):  # a chain of root refs is at most that long
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return schema
        target: Any = schema
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            return schema  # the converter reports the broken reference
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**rest, **{k: v for k, v in target.items() if k not in ("$defs", "definitions")}}
    return schema

