"""Request bodies checked against the installed `anthropic` SDK's own type definitions.

The SDK describes every request field as TypedDicts, unions, literals and lists
(`anthropic.types.message_create_params` and what it imports). `shape_of` compiles such a type
once into a small tree of checkers; `Shape.problem(value)` walks a decoded JSON body along it and
returns the first field that does not fit, with its path (`messages.0.content.1.text`) and a
message in the API's (pydantic's) words. Unknown fields are ignored, as the API ignores them.

Recursion follows the type, never the data: a value the type calls `object` is not descended
into, so a body's nesting depth cannot exhaust the stack here.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pydantic
import typing_extensions

Path = tuple[str | int, ...]
INT64_MAX = 2**63 - 1
_TAG_KEYS = ("type", "role")  # the keys the SDK's unions are told apart by


@dataclass(frozen=True)
class Problem:
    """The first field of a body that does not fit its type."""

    path: Path
    message: str

    def __str__(self) -> str:
        where = ".".join(str(p) for p in self.path)
        return f"{where}: {self.message}" if where else self.message


def json_kind(value: Any) -> str:
    """The JSON type of a decoded value (`bool` is not a number)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "unknown"


def _quoted(values: Sequence[Any]) -> str:
    shown = [repr(v) if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)
             for v in values]  # fmt: skip
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


class Shape:
    """A checker for one type; `problem` returns None when the value fits."""

    expects = "a valid value"  # for "Input should be ..." when a union's members all refuse
    kinds: frozenset[str] = frozenset()  # the JSON kinds it can accept (empty: any)

    def problem(self, value: Any, path: Path = ()) -> Problem | None:
        raise NotImplementedError

    def _wrong(self, path: Path) -> Problem:
        return Problem(path, f"Input should be {self.expects}")


class AnyShape(Shape):
    """`object` / `Any`: every JSON value fits."""

    def problem(self, value: Any, path: Path = ()) -> Problem | None:
        return None


class NeverShape(Shape):
    """A Python-only type (bytes, file handles): no JSON value is one."""

    kinds = frozenset({"never"})

    def problem(self, value: Any, path: Path = ()) -> Problem | None:
        return self._wrong(path)


class ScalarShape(Shape):
    def __init__(self, kinds: Iterable[str], expects: str) -> None:
        self.kinds = frozenset(kinds)
        self.expects = expects

    def problem(self, value: Any, path: Path = ()) -> Problem | None:
        kind = json_kind(value)
        if kind not in self.kinds:
            if self.kinds == {"integer"} and kind == "number":
                if not value.is_integer():
                    return Problem(
                        path, "Input should be a valid integer, got a number with a fractional part"
                    )
                value = int(value)
            else:
                return self._wrong(path)
        if kind == "integer" and not -INT64_MAX - 1 <= value <= INT64_MAX:
            return Problem(path, f"Input should be less than or equal to {INT64_MAX}" if value > 0
                           else f"Input should be greater than or equal to {-INT64_MAX - 1}")  # fmt: skip
        return None


class LiteralShape(Shape):
    def __init__(self, values: Sequence[Any]) -> None:
        self.values = tuple(values)
        self.expects = _quoted(self.values)
        self.kinds = frozenset(json_kind(v) for v in self.values)

    def problem(self, value: Any, path: Path = ()) -> Problem | None:
        fits = any(value == v and json_kind(value) == json_kind(v) for v in self.values)
        return None if fits else self._wrong(path)


class ListShape(Shape):
    expects = "a valid list"
    kinds = frozenset({"array"})

    def __init__(self, item: Shape) -> None:
        self.item = item

    def problem(self, value: Any, path: Path = ()) -> Problem | None:
        if not isinstance(value, list):
            return self._wrong(path)
        for i, item in enumerate(value):
            if found := self.item.problem(item, (*path, i)):
                return found
        return None


class MappingShape(Shape):
    expects = "a valid dictionary"
    kinds = frozenset({"object"})

    def __init__(self, value: Shape) -> None:
        self.value = value

    def problem(self, value: Any, path: Path = ()) -> Problem | None:
        if not isinstance(value, dict):
            return self._wrong(path)
        for key, item in value.items():
            if found := self.value.problem(item, (*path, key)):
                return found
        return None


class ObjectShape(Shape):
    """A TypedDict (or an SDK model, as JSON): required keys, known keys' types; others ignored."""

    expects = "a valid dictionary"
    kinds = frozenset({"object"})

    def __init__(self) -> None:
        self.fields: dict[str, tuple[Shape, bool]] = {}  # filled after creation: types may recurse

    def problem(self, value: Any, path: Path = ()) -> Problem | None:
        if not isinstance(value, dict):
            return self._wrong(path)
        for name, (shape, required) in self.fields.items():
            if name not in value:
                if required:
                    return Problem((*path, name), "Field required")
                continue
            if found := shape.problem(value[name], (*path, name)):
                return found
        return None

    def tag(self, key: str) -> tuple[tuple[Any, ...], bool] | None:
        """The literal values of field `key` and whether it is required (None: not a literal field)."""
        field = self.fields.get(key)
        if field is None:
            return None
        shape, required = field
        if isinstance(shape, LiteralShape):
            return shape.values, required
        if isinstance(shape, UnionShape) and shape.nullable and isinstance(shape.members[0], LiteralShape):
            return (*shape.members[0].values, None), False
        return None


class UnionShape(Shape):
    """Members tried in order; objects told apart by a literal `type` / `role` when they have one."""

    def __init__(self, members: Sequence[Shape], nullable: bool) -> None:
        self.members = tuple(members)
        self.nullable = nullable
        self.kinds = frozenset().union(*(m.kinds for m in self.members)) if all(
            m.kinds for m in self.members) else frozenset()  # fmt: skip
        self.kinds |= {"null"} if nullable and self.kinds else frozenset()
        expects = [m.expects for m in self.members if not isinstance(m, NeverShape)]
        self.expects = " or ".join(dict.fromkeys(expects)) if expects else "a valid value"
        self._tagged = self._tag_map()

    def _tag_map(self) -> tuple[str, dict[Any, list[Shape]], list[Shape]] | None:
        objects = [m for m in self.members if isinstance(m, ObjectShape)]
        if len(objects) < 2:
            return None
        for key in _TAG_KEYS:
            tags = [m.tag(key) for m in objects]
            if any(t is None for t in tags):
                continue
            by_tag: dict[Any, list[Shape]] = {}
            untagged: list[Shape] = []
            for member, found in zip(objects, tags, strict=True):
                assert found is not None
                values, required = found
                for v in values:
                    by_tag.setdefault(v, []).append(member)
                if not required:
                    untagged.append(member)
            return key, by_tag, untagged
        return None

    def problem(self, value: Any, path: Path = ()) -> Problem | None:
        if value is None and self.nullable:
            return None
        if self._tagged is not None and isinstance(value, dict):
            key, by_tag, untagged = self._tagged
            tag = value.get(key)
            if key not in value and untagged:
                return self._first_fit(untagged, value, path)
            if key not in value:
                return Problem((*path, key), "Field required")
            if not isinstance(tag, (str, type(None))):
                return Problem((*path, key), "Input should be a valid string")
            if tag not in by_tag:
                expected = [t for t in by_tag if t is not None]
                if key == "role":  # messages are one model with a `role` literal in the API
                    return Problem((*path, key), f"Input should be {_quoted(expected)}")
                return Problem((*path, key), f"Input tag {tag!r} found using {key!r} does not match any "
                               f"of the expected tags: {', '.join(repr(t) for t in expected)}")  # fmt: skip
            # like pydantic, a tagged member's errors are reported under its tag (`thinking.enabled.…`)
            where = (*path, tag) if key == "type" and tag is not None else path
            return self._first_fit(by_tag[tag], value, where)
        return self._first_fit(list(self.members), value, path)

    def _first_fit(self, members: list[Shape], value: Any, path: Path) -> Problem | None:
        kind = json_kind(value)
        first: Problem | None = None
        near: Problem | None = None  # the error of a member that takes this kind of value
        for member in members:
            found = member.problem(value, path)
            if found is None:
                return None
            first = first or found
            if near is None and (not member.kinds or kind in member.kinds):
                near = found
        if len(members) == 1 or near is not None:
            return near or first
        return self._wrong(path)


def typeddict_fields(cls: Any) -> dict[str, tuple[Any, bool]]:
    """A TypedDict's fields: each one's type and whether it is required (`Required[...]`, `total`)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    totals: dict[str, bool] = {}
    for klass in _typeddict_lineage(cls):
        for name in getattr(klass, "__annotations__", {}):
            totals[name] = bool(getattr(klass, "__total__", True))
    fields: dict[str, tuple[Any, bool]] = {}
    for name, hint in hints.items():
        origin = typing.get_origin(hint)
        if origin in (typing.Required, typing_extensions.Required):
            fields[name] = (typing.get_args(hint)[0], True)
        elif origin in (typing.NotRequired, typing_extensions.NotRequired):
            fields[name] = (typing.get_args(hint)[0], False)
        else:
            fields[name] = (hint, totals.get(name, False))
    return fields


def _typeddict_lineage(cls: Any) -> list[Any]:
    """The TypedDict and the TypedDicts it extends, base first (each has its own `total`)."""
    order: list[Any] = []
    for base in getattr(cls, "__orig_bases__", ()):
        if typing_extensions.is_typeddict(base):
            order.extend(b for b in _typeddict_lineage(base) if b not in order)
    order.append(cls)
    return order


_ITERABLES = {Iterable, Sequence, list, tuple}
_MAPPINGS = {dict, Mapping}
_WRAPPERS = {typing.Required, typing_extensions.Required, typing.NotRequired, typing_extensions.NotRequired}
_LITERALS = {typing.Literal, typing_extensions.Literal}
_UNIONS = {typing.Union, types.UnionType}


@functools.cache
def shape_of(tp: Any) -> Shape:
    """The checker for a type from `anthropic.types` (compiled once, then shared)."""
    return _compile(tp, {})


def _compile(tp: Any, seen: dict[Any, Shape]) -> Shape:
    if tp in seen:  # a recursive type: the shape being built
        return seen[tp]
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is object:
        return AnyShape()
    if tp is type(None):
        return LiteralShape([None])
    if tp is bool:
        return ScalarShape({"boolean"}, "a valid boolean")
    if tp is int:
        return ScalarShape({"integer"}, "a valid integer")
    if tp is float:
        return ScalarShape({"integer", "number"}, "a valid number")
    if tp is str:
        return ScalarShape({"string"}, "a valid string")
    if origin is typing.Annotated:
        return _compile(args[0], seen)
    if origin in _WRAPPERS:
        return _compile(args[0], seen)
    if origin in _LITERALS:
        return LiteralShape(args)
    if origin in _UNIONS:
        nullable = type(None) in args
        members = [_compile(a, seen) for a in args if a is not type(None)]
        members = [m for m in members if not isinstance(m, NeverShape)] or members
        # a union inside a union (the SDK's `ContentBlock` models beside the block params) is one union
        members = [inner for m in members for inner in (
            m.members if isinstance(m, UnionShape) and not m.nullable else (m,))]  # fmt: skip
        if len(members) == 1 and not nullable:
            return members[0]
        return UnionShape(members, nullable)
    if origin in _ITERABLES or _is_sequence_not_str(origin):
        return ListShape(_compile(args[0], seen) if args else AnyShape())
    if origin in _MAPPINGS:
        return MappingShape(_compile(args[1], seen) if len(args) == 2 else AnyShape())
    if typing_extensions.is_typeddict(tp):
        shape = seen[tp] = ObjectShape()
        for name, (hint, required) in typeddict_fields(tp).items():
            shape.fields[name] = (_compile(hint, seen), required)
        _tags_first(shape)
        return shape
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        shape = seen[tp] = ObjectShape()
        for name, info in tp.model_fields.items():
            shape.fields[info.alias or name] = (_compile(info.annotation, seen), info.is_required())
        _tags_first(shape)
        return shape
    return NeverShape()  # bytes, IO, PathLike: only in unions that also take a string


def _tags_first(shape: ObjectShape) -> None:
    # a block of the wrong kind is reported by its `type`, not by the first field it lacks
    tags = {k: v for k, v in shape.fields.items() if k in _TAG_KEYS and isinstance(v[0], LiteralShape)}
    shape.fields = {**tags, **{k: v for k, v in shape.fields.items() if k not in tags}}


def _is_sequence_not_str(origin: Any) -> bool:
    return getattr(origin, "__name__", "") == "SequenceNotStr"
