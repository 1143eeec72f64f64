"""Tools from a Python file: every public function becomes a tool the model may call.

The JSON schema of each tool comes from the function's type hints and its docstring (first
paragraph -> description; Google `Args:` or numpy `Parameters` sections -> parameter descriptions).
"""

from __future__ import annotations

import enum
import importlib.util
import inspect
import json
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_NONE = type(None)
_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _enum_schema(values: list[Any]) -> dict[str, Any]:
    """`{"enum": values}`, with their JSON type when they all share one."""
    schema: dict[str, Any] = {"enum": values}
    kinds = {_SCALARS.get(type(v)) for v in values}
    if len(kinds) == 1 and None not in kinds:
        schema["type"] = kinds.pop()
    return schema


def type_schema(hint: Any) -> dict[str, Any]:
    """The JSON schema of a type hint (unknown types: an unconstrained `{}`)."""
    if hint is inspect.Parameter.empty or hint is Any:
        return {}
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    if hint is None or hint is _NONE:
        return {"type": "null"}
    if inspect.isclass(hint) and issubclass(hint, enum.Enum):
        return _enum_schema([m.value for m in hint])
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Literal:
        return _enum_schema(list(args))
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not _NONE]
        if len(options) == 1:
            return type_schema(options[0])  # Optional[X]: X, and not required
        return {"anyOf": [type_schema(a) for a in options]}
    if hint in (list, tuple, set, frozenset) or origin in (list, tuple, set, frozenset):
        items = args[0] if args and (len(args) == 1 or args[-1] is Ellipsis) else None
        schema: dict[str, Any] = {"type": "array"}
        if items is not None:
            schema["items"] = type_schema(items)
        return schema
    if hint is dict or origin is dict or origin is Mapping:
        schema = {"type": "object"}
        if len(args) == 2 and args[1] is not Any:
            schema["additionalProperties"] = type_schema(args[1])
        return schema
    return {}


_SECTION = re.compile(r"^(args|arguments|parameters|params)\s*:?\s*$", re.IGNORECASE)
_OTHER_SECTION = re.compile(
    r"^(returns?|yields?|raises?|examples?|notes?|see also|attributes|references)\s*:?\s*$", re.IGNORECASE
)
_GOOGLE_PARAM = re.compile(r"^\*{0,2}(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_NUMPY_PARAM = re.compile(r"^\*{0,2}(\w+)\s*(?::\s*(.*))?$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """(description, {parameter: description}) from a Google- or numpy-style docstring."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    paragraph: list[str] = []
    for line in lines:
        if not line.strip() or _SECTION.match(line.strip()) or _OTHER_SECTION.match(line.strip()):
            break
        paragraph.append(line.strip())
    description = " ".join(paragraph)
    params: dict[str, str] = {}
    in_section = numpy = False
    current: str | None = None
    base_indent: int | None = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if _SECTION.match(stripped) or _OTHER_SECTION.match(stripped):
            in_section = bool(_SECTION.match(stripped))
            numpy = bool(nxt) and set(nxt) <= {"-"}  # numpy: "name : type" lines, description below
            current, base_indent = None, None
            continue
        if not in_section or (stripped and set(stripped) <= {"-", "="}):
            continue  # numpy underlines
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        if base_indent is None:
            base_indent = indent
        if indent < base_indent and current is not None and not nxt.startswith("-"):
            in_section = False  # dedented past the section: done
            continue
        if indent == base_indent:
            match = _NUMPY_PARAM.match(stripped) if numpy else _GOOGLE_PARAM.match(stripped)
            if match:
                current = match.group(1)
                params[current] = "" if numpy else match.group(3).strip()
            continue
        if current is not None:  # a continuation line
            params[current] = (params[current] + " " + stripped).strip()
    return description, params


def function_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    """The tool definition (`name`, `description`, `input_schema`) of a function."""
    signature = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable annotations: describe the parameters untyped
        hints = {}
    description, docs = parse_docstring(inspect.getdoc(fn))
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, param in signature.parameters.items():
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        hint = hints.get(name, param.annotation)
        schema = type_schema(hint)
        if docs.get(name):
            schema["description"] = docs[name]
        if param.default is not inspect.Parameter.empty:
            default = param.default.value if isinstance(param.default, enum.Enum) else param.default
            try:
                json.dumps(default)
                if default is not None:
                    schema["default"] = default
            except (TypeError, ValueError):
                pass
        else:
            union = typing.get_origin(hint) in (typing.Union, types.UnionType)
            if not (union and _NONE in typing.get_args(hint)):  # Optional[X] without a default: not required
                required.append(name)
        properties[name] = schema
    input_schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        input_schema["required"] = required
    return {"name": fn.__name__, "description": description or fn.__name__, "input_schema": input_schema}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _convert(value: Any, hint: Any) -> Any:
    """Turn JSON input into the annotated Python type where that is unambiguous (enums, tuples)."""
    if inspect.isclass(hint) and issubclass(hint, enum.Enum):
        return hint(value)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not _NONE]
        return _convert(value, options[0]) if len(options) == 1 and value is not None else value
    if (hint is tuple or origin is tuple) and isinstance(value, list):
        return tuple(value)
    return value


@dataclass
class ToolSet:
    """Named functions and their API definitions."""

    functions: dict[str, Callable[..., Any]] = field(default_factory=dict)
    definitions: list[dict[str, Any]] = field(default_factory=list)  # the request's `tools`

    @classmethod
    def from_functions(cls, functions: Sequence[Callable[..., Any]]) -> ToolSet:
        """A tool set of these functions."""
        return cls({f.__name__: f for f in functions}, [function_schema(f) for f in functions])

    @property
    def names(self) -> list[str]:
        """Tool names, in definition order."""
        return [d["name"] for d in self.definitions]

    def __len__(self) -> int:
        return len(self.functions)

    def __bool__(self) -> bool:
        return bool(self.functions)

    def run(self, name: str, input: dict[str, Any]) -> tuple[str, bool]:
        """Call a tool: (output, is_error). Exceptions become a one-line error, never raised."""
        fn = self.functions.get(name)
        if fn is None:
            return f"unknown tool: {name}", True
        try:
            hints = typing.get_type_hints(fn)
        except Exception:
            hints = {}
        try:
            args = {k: _convert(v, hints[k]) if k in hints else v for k, v in (input or {}).items()}
            result = fn(**args)
        except Exception as exc:  # the model sees the failure and may try again
            message = _one_line(str(exc))
            return (f"{type(exc).__name__}: {message}" if message else type(exc).__name__), True
        if isinstance(result, str):
            return result, False
        if result is None:
            return "", False
        if isinstance(result, enum.Enum):
            result = result.value
        try:
            return json.dumps(result, ensure_ascii=False, default=str), False
        except (TypeError, ValueError):
            return str(result), False


def load_tools(path: str | Path) -> ToolSet:
    """Import a Python file; each public function defined in it (no leading underscore) is a tool."""
    file = Path(path).resolve()
    name = f"streamchat_tools_{abs(hash(str(file)))}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import tools from {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and get_type_hints look the module up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    functions = [
        obj
        for attr, obj in vars(module).items()
        if not attr.startswith("_") and inspect.isfunction(obj) and obj.__module__ == name
        and obj.__name__ == attr  # defined here with `def` under its own name (not a lambda or an alias)
    ]
    return ToolSet.from_functions(functions)
