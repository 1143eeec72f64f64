"""What a streamed reply leaves on a real terminal equals the one-shot render of the whole reply."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from term import SCRIPTS, Cell, Term, one_shot, rows_text, script, trim

Spawn = Callable[..., Term]
RICH = (SCRIPTS / "rich.md").read_text()


def assert_same(got: list[list[Cell]], want: list[list[Cell]]) -> None:
    """Same characters and the same look, row by row (a diff of the text first, for readability)."""
    assert rows_text(got) == rows_text(want)
    for y, (a, b) in enumerate(zip(got, want, strict=True)):
        assert a == b, f"row {y} differs in style: {rows_text([a])[0]!r}"


@pytest.mark.parametrize("chunk", [1, 4, 0])
def test_ask_in_a_terminal_equals_the_one_shot_render(spawn: Spawn, chunk: int) -> None:
    term = spawn("ask", "--engine", script("rich.md"), "--script-chunk", str(chunk), "--seed", "7",
                 "--max-tokens", "8000", "report please")  # fmt: skip
    assert term.wait_exit() == 0
    assert_same(trim(term.rows()), one_shot(RICH))


@pytest.mark.parametrize("chunk", [1, 0])
def test_chat_reply_equals_the_one_shot_render(spawn: Spawn, chunk: int) -> None:
    term = spawn("--engine", script("rich.md"), "--script-chunk", str(chunk), "--script-rate", "2000",
                 "--max-tokens", "8000")  # fmt: skip
    term.wait_prompt()
    term.submit("report please")
    term.wait_text("turn: in ", timeout=60)
    rows = term.rows()
    lines = rows_text(rows)
    start = lines.index("› report please") + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("turn: in "))
    assert_same(trim(rows[start:end]), one_shot(RICH))
    assert term.close() == 0


def test_no_markdown_in_a_terminal_prints_raw_text(spawn: Spawn) -> None:
    term = spawn("ask", "--no-markdown", "--engine", script("rich.md"), "report please")
    assert term.wait_exit() == 0
    assert term.text().strip("\n") == RICH.strip("\n")
    assert "\x1b[" not in bytes(term.raw).decode()
