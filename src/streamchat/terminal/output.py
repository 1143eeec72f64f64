"""The terminal as an output: writes, sizes, styles, and raw streams that never touch a live region."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TextIO

DIM = "\x1b[2m"
BOLD = "\x1b[1m"
RED = "\x1b[31m"
YELLOW = "\x1b[33m"
CYAN = "\x1b[36m"
RESET = "\x1b[0m"


class StreamRenderer(Protocol):
    """What a reply's text stream is drawn with (TerminalRenderer or a raw stream)."""

    def feed(self, chunk: str, now: float | None = None) -> None: ...

    def tick(self, now: float | None = None) -> None: ...

    def finish(self) -> None: ...

    def abort(self) -> None: ...

    def resize(self, width: int, height: int) -> None: ...


class Output:
    """One output stream: every write is flushed, so streamed text shows as it arrives."""

    def __init__(self, stream: TextIO | None = None, *, color: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.tty = _isatty(self.stream)
        self.color = self.tty and not os.environ.get("NO_COLOR") if color is None else color

    def write(self, text: str) -> None:
        """Write and flush."""
        self.stream.write(text)
        self.stream.flush()

    def line(self, text: str = "", style: str = "") -> None:
        """Write one line, styled when colour is on."""
        if style and self.color:
            self.write(f"{style}{text}{RESET}\n")
        else:
            self.write(f"{text}\n")

    def size(self) -> tuple[int, int]:
        """(columns, lines) of the terminal; 80x24 when unknown."""
        size = shutil.get_terminal_size((80, 24))
        return max(size.columns, 20), max(size.lines, 4)

    def styled(self, text: str, style: str) -> str:
        """`text` in `style` when colour is on."""
        return f"{style}{text}{RESET}" if self.color and style else text


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class RawStream:
    """Text written as it arrives, optionally in one style (plain output, --no-markdown, thinking)."""

    def __init__(self, write: Callable[[str], None], style: str = "") -> None:
        self._write = write
        self._style = style
        self._open = False
        self.text = ""
        self._ends_with_newline = True

    def feed(self, chunk: str, now: float | None = None) -> None:
        """Write a chunk now."""
        if not chunk:
            return
        self.text += chunk
        self._ends_with_newline = chunk.endswith("\n")
        self._write(f"{self._style}{chunk}{RESET}" if self._style else chunk)
        self._open = True

    def tick(self, now: float | None = None) -> None:
        """Nothing is held back: every chunk was written when it came."""

    def finish(self) -> None:
        """End the stream on a fresh line."""
        if self._open and not self._ends_with_newline:
            self._write("\n")
        self._open = False

    def abort(self) -> None:
        """Same as finish: everything written stays."""
        self.finish()

    def resize(self, width: int, height: int) -> None:
        """Nothing to reflow."""


def markdown_renderer(out: Output, write: Callable[[str], None] | None = None,
                      reserve: int = 0) -> StreamRenderer:  # fmt: skip
    """The commit-and-tail Markdown renderer for this terminal (`reserve` rows kept free below it)."""
    from ..render import TerminalRenderer

    width, height = out.size()
    renderer: StreamRenderer = TerminalRenderer(write or out.write, width, max(1, height - reserve))
    return renderer


class StatusUnderRenderer:
    """A one-line live status under the renderer's live region, drawn between its frames.

    It relies on the renderer's frame contract: every frame starts from the live region's first row
    ("\r", cursor up, erase below) or, with no live region, at the start of an empty line. The status
    row is drawn below the region and the cursor put back at the start of the region's last row, so
    each next frame erases it first; it never reaches the scrollback.
    """

    def __init__(self, out: Output, text: Callable[[], str]) -> None:
        self.out = out
        self.text = text
        self.active = True  # False while the renderer paints its final frame
        self.drawn = False

    def frame(self, frame: str) -> None:
        """The renderer's `write`: the frame, then the status line again under it."""
        prefix = "\x1b[J" if self.drawn else ""  # a frame without a live region does not erase below
        self.drawn = self.active
        self.out.write(prefix + frame + (self._line() if self.active else ""))

    def refresh(self) -> None:
        """Redraw the status line alone (new usage numbers)."""
        if self.active and self.drawn:
            self.out.write(self._line())

    def clear(self) -> None:
        """Erase the status line (the cursor is at the start of the line above it, or on it)."""
        self.active = False
        if self.drawn:
            self.out.write("\x1b[J")
            self.drawn = False

    def _line(self) -> str:
        width = self.out.size()[0]
        text = self.text()
        if len(text) > width - 1:
            text = text[: width - 2] + "…"
        return f"\r\n\x1b[2K{self.out.styled(text, DIM)}\x1b[1A\r"


class QuietInput:
    """While a reply streams, keys typed are not echoed into the output (Ctrl-C still interrupts).

    `paused()` gives the terminal back for a moment (a y/N tool confirmation).
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._fd: int | None = None
        self._saved: list[Any] | None = None

    def __enter__(self) -> QuietInput:
        if not self.enabled:
            return self
        try:
            import termios

            fd = sys.stdin.fileno()
            if os.isatty(fd):
                self._fd = fd
                self._saved = termios.tcgetattr(fd)
                self._quiet()
        except (ImportError, OSError, ValueError):
            self._saved = None
        return self

    def _quiet(self) -> None:
        import termios

        if self._fd is None or self._saved is None:
            return
        quiet = termios.tcgetattr(self._fd)
        quiet[3] &= ~(termios.ECHO | termios.ICANON)
        termios.tcsetattr(self._fd, termios.TCSANOW, quiet)

    def _restore(self) -> None:
        import termios

        if self._fd is None or self._saved is None:
            return
        with contextlib.suppress(OSError):
            # TCSANOW keeps keys typed during the reply: they show up in the next prompt (type-ahead).
            termios.tcsetattr(self._fd, termios.TCSANOW, self._saved)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Normal line input for a moment."""
        self._restore()
        try:
            yield
        finally:
            self._quiet()

    def __exit__(self, *exc: object) -> None:
        self._restore()
        self._fd = None
        self._saved = None
