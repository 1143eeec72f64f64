"""Hypothesis strategies for request bodies, derived from the `anthropic` SDK's own type definitions
(the TypedDicts and models of `anthropic.types`), and mutations that break them.

`body_strategy(TypedDict)` draws bodies that fit the types (not necessarily the API's other rules);
`mutate(body, rng)` makes one of several breakages: a value of the wrong JSON kind at any depth, a
required key removed, unknown keys, a block `type` that is a list or an object, huge numbers.
"""

from __future__ import annotations

import random
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pydantic
import typing_extensions
from hypothesis import strategies as st

from streamchat.api.typecheck import typeddict_fields  # Required/total read once, as the server reads them

Json = Any
_MAX_LIST = 3

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=32), st.text(max_size=12),
)  # fmt: skip
json_values: st.SearchStrategy[Json] = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
texts = st.text(min_size=1, max_size=16).filter(lambda s: bool(s.strip()))


def strategy_for(tp: Any, depth: int = 0) -> st.SearchStrategy[Json]:
    """Values of type `tp`, as JSON (a depth budget keeps recursive and nested types small)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is object:
        return json_values
    if tp is type(None):
        return st.none()
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(0, 5000)
    if tp is float:
        return st.floats(0, 1, allow_nan=False)
    if tp is str:
        return texts
    if origin in (typing.Annotated, typing.Required, typing_extensions.Required, typing.NotRequired,
                  typing_extensions.NotRequired):  # fmt: skip
        return strategy_for(args[0], depth)
    if origin in (typing.Literal, typing_extensions.Literal):
        return st.sampled_from(args)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if _json_type(a)]
        return st.one_of([strategy_for(a, depth + 1) for a in members])
    if origin in (Iterable, Sequence, list, tuple) or getattr(origin, "__name__", "") == "SequenceNotStr":
        item = strategy_for(args[0], depth + 1) if args else json_values
        return st.lists(item, min_size=0, max_size=0 if depth > 6 else _MAX_LIST)
    if origin in (dict, Mapping):
        value = strategy_for(args[1], depth + 1) if len(args) == 2 else json_values
        return st.dictionaries(st.text(min_size=1, max_size=8), value, max_size=3)
    if typing_extensions.is_typeddict(tp):
        fields = typeddict_fields(tp)
        required = {k: strategy_for(h, depth + 1) for k, (h, req) in fields.items() if req}
        optional = {k: strategy_for(h, depth + 1) for k, (h, req) in fields.items() if not req and depth < 5}
        return st.fixed_dictionaries(required, optional=optional)
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        required = {}
        optional = {}
        for name, info in tp.model_fields.items():
            target = required if info.is_required() else optional
            if info.is_required() or depth < 5:
                target[info.alias or name] = strategy_for(info.annotation, depth + 1)
        return st.fixed_dictionaries(required, optional=optional)
    return st.nothing()


def _json_type(tp: Any) -> bool:
    """False for the Python-only members of the SDK's unions (bytes, file handles, paths)."""
    return not (isinstance(tp, type) and tp in (bytes, bytearray)) and getattr(tp, "__name__", "") not in (
        "IO", "PathLike")  # fmt: skip


def body_strategy(params: Any, simple_messages: bool) -> st.SearchStrategy[dict[str, Json]]:
    """Bodies of the SDK's `params` TypedDict; `simple_messages` keeps `messages` to plain user text
    (so the API's ordering rules hold and the body can succeed), otherwise `messages` follow the types."""
    fields = typeddict_fields(params)
    strategies = {k: strategy_for(h, 1) for k, (h, _) in fields.items()}
    if simple_messages:
        user = st.fixed_dictionaries({"role": st.just("user"), "content": texts})
        strategies["messages"] = st.lists(user, min_size=1, max_size=2)
    required = {k: v for k, v in strategies.items() if fields[k][1]}
    optional = {k: v for k, v in strategies.items() if not fields[k][1]}
    return st.fixed_dictionaries(required, optional=optional)


WRONG_VALUES: list[Json] = [
    None,
    True,
    0,
    -1,
    2**64,
    1.5e300,
    "",
    "text",
    [],
    [1, "a"],
    {},
    {"type": ["text"]},
    {"type": {"a": 1}},
    [[[[[]]]]],
    {"role": "system", "content": 7},
]


def paths(value: Json, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every location in a JSON value (the root excluded)."""
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found.append((*prefix, key))
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.append((*prefix, i))
            found += paths(item, (*prefix, i))
    return found


def replaced(body: Json, path: tuple[Any, ...], value: Json) -> Json:
    """A copy of `body` with the value at `path` replaced (`...` as value: removed)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(body, dict):
        out = dict(body)
        if rest or value is not ...:
            out[head] = replaced(body[head], rest, value)
        else:
            del out[head]
        return out
    out_list = list(body)
    if rest or value is not ...:
        out_list[head] = replaced(body[head], rest, value)
    else:
        del out_list[head]
    return out_list


def mutate(body: dict[str, Json], rng: random.Random) -> tuple[dict[str, Json], str]:
    """`body` broken at one place, chosen by `rng`: (the broken body, what was done)."""
    where = paths(body)
    kind = rng.choice(["wrong", "wrong", "wrong", "drop", "unknown", "deep"])
    if not where or kind == "unknown":
        return {**body, f"unknown_{rng.randrange(99)}": rng.choice(WRONG_VALUES)}, "unknown field"
    path = rng.choice(where)
    if kind == "drop":
        return replaced(body, path, ...), f"removed {path}"
    if kind == "deep":
        nested: Json = "leaf"
        for _ in range(rng.randint(50, 400)):
            nested = [nested] if rng.random() < 0.5 else {"a": nested}
        return replaced(body, path, nested), f"deeply nested value at {path}"
    return replaced(body, path, rng.choice(WRONG_VALUES)), f"wrong value at {path}"
