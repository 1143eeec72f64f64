"""Tools from a Python file: schemas from type hints and docstrings, and running them."""

from __future__ import annotations

import textwrap
from pathlib import Path

from streamchat.chat.tools import ToolSet, load_tools, parse_docstring

SAMPLE = textwrap.dedent(
    '''
    """Sample tools."""
    import enum
    import json
    from typing import Literal, Optional
    from os.path import join  # imported, not defined here: not a tool


    class Unit(enum.Enum):
        CELSIUS = "celsius"
        FAHRENHEIT = "fahrenheit"


    def get_weather(city: str, unit: Unit = Unit.CELSIUS, days: int = 1) -> str:
        """Get the weather forecast for a city.

        Uses a made-up forecast service.

        Args:
            city: The city name, e.g.
                "Paris".
            unit: Temperature unit.
            days (int): How many days ahead.
        """
        return f"{city}: sunny, 21 degrees {unit.value} for {days} day(s)"


    def search(query: str, tags: list[str], limit: Optional[int] = None, exact: bool = False,
               mode: Literal["fast", "deep"] = "fast", weights: dict[str, float] | None = None,
               score: float = 0.5) -> dict:
        """Search the notes.

        Parameters
        ----------
        query : str
            What to look for.
        tags : list of str
            Tags to filter by.
        """
        return {"query": query, "tags": tags, "limit": limit, "mode": mode}


    def divide(a: float, b: float) -> float:
        """Divide a by b."""
        return a / b


    def _private() -> None:
        """Not a tool."""


    helper = lambda: None  # not a def: still a function, but named <lambda>
    '''
)


def load(tmp_path: Path) -> ToolSet:
    path = tmp_path / "sample_tools.py"
    path.write_text(SAMPLE)
    return load_tools(path)


def test_schema_from_hints_and_docstrings(tmp_path: Path) -> None:
    tools = load(tmp_path)
    by_name = {d["name"]: d for d in tools.definitions}
    assert sorted(by_name) == ["divide", "get_weather", "search"]
    weather = by_name["get_weather"]
    assert weather["description"] == "Get the weather forecast for a city."
    assert weather["input_schema"] == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": 'The city name, e.g. "Paris".'},
            "unit": {"enum": ["celsius", "fahrenheit"], "type": "string", "description": "Temperature unit.",
                     "default": "celsius"},
            "days": {"type": "integer", "description": "How many days ahead.", "default": 1},
        },
        "required": ["city"],
    }  # fmt: skip
    search = by_name["search"]["input_schema"]
    assert by_name["search"]["description"] == "Search the notes."
    assert search["required"] == ["query", "tags"]
    props = search["properties"]
    assert props["query"] == {"type": "string", "description": "What to look for."}
    assert props["tags"] == {
        "type": "array",
        "items": {"type": "string"},
        "description": "Tags to filter by.",
    }
    assert props["limit"] == {"type": "integer"}
    assert props["exact"] == {"type": "boolean", "default": False}
    assert props["mode"] == {"enum": ["fast", "deep"], "type": "string", "default": "fast"}
    assert props["weights"] == {"type": "object", "additionalProperties": {"type": "number"}}
    assert props["score"] == {"type": "number", "default": 0.5}


def test_run_tools_and_errors(tmp_path: Path) -> None:
    tools = load(tmp_path)
    assert tools.run("get_weather", {"city": "Oslo", "unit": "fahrenheit"}) == (
        "Oslo: sunny, 21 degrees fahrenheit for 1 day(s)", False)  # fmt: skip
    out, err = tools.run("search", {"query": "q", "tags": ["a"]})
    assert not err and out == '{"query": "q", "tags": ["a"], "limit": null, "mode": "fast"}'
    assert tools.run("divide", {"a": 1, "b": 0}) == ("ZeroDivisionError: division by zero", True)
    out, err = tools.run("divide", {"a": 1})
    assert err and out.startswith("TypeError: ") and "\n" not in out
    assert tools.run("nope", {}) == ("unknown tool: nope", True)


def test_parse_docstring_google_and_numpy() -> None:
    doc = """Do a thing.

    More detail here.

    Arguments:
        x (int): The x.
        y: The y,
            continued.

    Returns:
        Nothing.
    """
    assert parse_docstring(doc) == ("Do a thing.", {"x": "The x.", "y": "The y, continued."})
    assert parse_docstring(None) == ("", {})
    assert parse_docstring("One line") == ("One line", {})
