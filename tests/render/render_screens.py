"""A pyte terminal for render tests: what a reply leaves in scrollback and on screen."""

from __future__ import annotations

import random
from collections.abc import Iterable

import pyte

from streamchat.render import TerminalRenderer, render_markdown

Cell = tuple[str, str, str, bool, bool, bool, bool, bool]


class Terminal:
    """A pyte screen with scrollback, fed everything the renderer writes."""

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self.screen = pyte.HistoryScreen(width, height, history=100_000)
        self.stream = pyte.Stream(self.screen)
        self.writes: list[str] = []

    def write(self, data: str) -> None:
        self.writes.append(data)
        self.stream.feed(data)

    def _cells(self, line: object) -> list[Cell]:
        cells: list[Cell] = []
        for x in range(self.width):
            char = line[x]  # type: ignore[index]
            cells.append(
                (
                    char.data,
                    char.fg,
                    char.bg,
                    char.bold,
                    char.italics,
                    char.underscore,
                    char.strikethrough,
                    char.reverse,
                )
            )
        return cells

    def scrollback_cells(self) -> list[list[Cell]]:
        return [self._cells(line) for line in self.screen.history.top]

    def screen_cells(self) -> list[list[Cell]]:
        return [self._cells(self.screen.buffer[y]) for y in range(self.height)]

    def all_cells(self) -> list[list[Cell]]:
        """Scrollback then screen, without the blank rows at the bottom."""
        rows = self.scrollback_cells() + self.screen_cells()
        while rows and all(
            cell == (" ", "default", "default", False, False, False, False, False) for cell in rows[-1]
        ):
            rows.pop()
        return rows

    def scrollback_text(self) -> list[str]:
        return [text_of(row) for row in self.scrollback_cells()]

    def all_text(self) -> list[str]:
        return [text_of(row) for row in self.all_cells()]


def text_of(row: list[Cell]) -> str:
    return "".join(cell[0] for cell in row).rstrip()


def one_shot(text: str, width: int, height: int) -> Terminal:
    """The one-shot render of `text`, printed into a fresh terminal of the same size."""
    terminal = Terminal(width, height)
    rendered = render_markdown(text, width)
    if rendered:
        terminal.write(rendered.replace("\n", "\r\n") + "\r\n")
    return terminal


def chunks_of(text: str, sizes: Iterable[int]) -> list[str]:
    out: list[str] = []
    position = 0
    for size in sizes:
        if position >= len(text):
            break
        out.append(text[position : position + size])
        position += size
    return out


def fixed(size: int) -> Iterable[int]:
    while True:
        yield size


def seeded(seed: int, low: int = 1, high: int = 16) -> Iterable[int]:
    rng = random.Random(seed)
    while True:
        yield rng.randint(low, high)


def stream(
    text: str, width: int, height: int, sizes: Iterable[int], *, fps: float = 30.0, step: float = 0.01
) -> Terminal:
    """Feed `text` in chunks of `sizes` on a fake clock that advances `step` seconds per chunk."""
    terminal = Terminal(width, height)
    renderer = TerminalRenderer(terminal.write, width, height, max_fps=fps)
    now = 0.0
    for chunk in chunks_of(text, sizes):
        renderer.feed(chunk, now)
        now += step
    renderer.finish()
    assert renderer.text == text
    return terminal
