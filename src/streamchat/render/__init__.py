"""Streaming Markdown rendering: finished blocks are printed once, the unfinished last block is live.

`blocks` is the pure core (where top-level blocks end), `layout` lays a block out at a width,
`highlight` colours code line by line, `terminal` turns blocks into ANSI lines (and holds the
one-shot `render_markdown`), `frames` paints them to a terminal as the reply streams in, and
`plain` is `--no-markdown`; `html` is the web view's sanitized HTML (`render_html`, `HtmlStream`).
"""

from __future__ import annotations

from typing import Protocol

from .frames import TerminalRenderer
from .html import HtmlFrame, HtmlStream, render_html
from .plain import PlainRenderer
from .terminal import render_markdown


class Renderer(Protocol):
    """What the terminal REPL drives while a reply streams (TerminalRenderer, PlainRenderer)."""

    def feed(self, chunk: str, now: float | None = None) -> None:
        """Add a piece of the reply."""

    def tick(self, now: float | None = None) -> None:
        """Repaint if a frame is due."""

    def finish(self) -> None:
        """The reply is complete."""

    def abort(self) -> None:
        """The reply was interrupted."""

    def resize(self, width: int, height: int) -> None:
        """The terminal changed size."""

    @property
    def text(self) -> str:
        """Everything fed so far."""


__all__ = [
    "HtmlFrame",
    "HtmlStream",
    "PlainRenderer",
    "Renderer",
    "TerminalRenderer",
    "render_html",
    "render_markdown",
]
