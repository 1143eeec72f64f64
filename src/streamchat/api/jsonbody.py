"""Decoding a request body into JSON values every later step can handle.

Python's `json` accepts what the API refuses (`NaN`, `Infinity`, numbers that overflow to
infinity, lone UTF-16 surrogates, repeated keys, where the last one silently wins) and fails in
ways a server must not (`RecursionError` on deep nesting). `decode_body` refuses all of these with
an `InvalidRequestError`, naming the field where it can, so the rest of the server only ever sees
finite numbers, encodable strings, unique keys and a bounded depth.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import InvalidRequestError

MAX_DEPTH = 128  # objects and arrays inside each other; JSON schemas and tool inputs stay far below
_PREFIX = "There was an issue with the JSON body of your request"


class _Object(dict[str, Any]):
    """A decoded JSON object that remembers the first key it saw twice."""

    duplicate: str | None = None


def _pairs(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                obj.duplicate = key
                break
            seen.add(key)
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a `\ud800` escape
        return False
    return True


def _where(path: list[str | int]) -> str:
    return ".".join(str(p) for p in path) or "body"


def _check(root: Any) -> None:
    """Depth, strings and keys of a decoded body, without recursion."""
    stack: list[tuple[Any, list[str | int]]] = [(root, [])]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if not _encodable(value):
                raise InvalidRequestError(f"{_where(path)}: Input should be a valid string: lone surrogate")
            continue
        if not isinstance(value, (dict, list)):
            continue
        if len(path) >= MAX_DEPTH:
            raise InvalidRequestError(f"{_where(path)}: JSON nesting deeper than {MAX_DEPTH} levels")
        if isinstance(value, list):
            stack.extend((item, [*path, i]) for i, item in enumerate(value))
            continue
        duplicate = getattr(value, "duplicate", None)
        if duplicate is not None:
            raise InvalidRequestError(f"{_where([*path, duplicate])}: duplicate key in a JSON object")
        for key, item in value.items():
            if not _encodable(key):
                raise InvalidRequestError(f"{_where(path)}: object key is not a valid string: lone surrogate")
            stack.append((item, [*path, key]))


def decode_body(raw: bytes) -> Any:
    """The JSON value of a request body, or an `InvalidRequestError` in the API's words."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = f"{exc.reason} at byte {exc.start}"
        raise InvalidRequestError(f"{_PREFIX}: the body is not valid UTF-8 ({where})") from None
    try:
        value = json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise InvalidRequestError(f"{_PREFIX}: JSON nesting deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, or one of the hooks above
        raise InvalidRequestError(f"{_PREFIX}: {exc}") from None
    _check(value)
    return value
