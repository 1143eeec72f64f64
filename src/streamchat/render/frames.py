"""The streaming terminal renderer: finished blocks go to scrollback once, the last block is repainted.

Screen model: everything above the cursor's live region is committed output, written once and then
left to scroll into the terminal's scrollback. The live region is the render of the unfinished tail,
drawn at the bottom, at most `height` lines (its last ones), with no newline after its last line, so
the cursor sits at the end of it. A frame is one `write()`: carriage return, cursor up to the live
region's first line, erase to the end of the screen, the newly committed lines, the new live region.
Committed lines are exactly the one-shot render's lines (see terminal.py), in order, so after
`finish()` scrollback + screen equal `render_markdown(text, width)`.

The cursor is assumed to start at the beginning of an empty line.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable

from rich.cells import cell_len

from .blocks import FENCE, StreamNormalizer, commit_blocks, fence_opening, split_blocks
from .plain import FedText
from .terminal import BlockPainter, FenceWriter, join_blocks

# CR as well as LF: in raw mode the terminal does not add the CR, and after a full-width line the
# cursor is parked in the last column, where a bare LF would leave the next line misplaced.
NEWLINE = "\r\n"
_SGR = re.compile(r"\x1b\[[0-9;]*m")


class TerminalRenderer:
    """Streams a Markdown reply to a terminal: commit-and-tail, at most `max_fps` frames a second."""

    def __init__(
        self,
        write: Callable[[str], None],
        width: int,
        height: int,
        *,
        max_fps: float = 30.0,
        code_theme: str = "monokai",
    ) -> None:
        """Write frames with `write` for a terminal of `width` x `height` cells."""
        if height < 1:
            raise ValueError(f"height must be at least 1, not {height}")
        self._write = write
        self._painter = BlockPainter(width, code_theme)
        self._height = height
        self._interval = 1.0 / max_fps if max_fps > 0 else 0.0
        self._fed = FedText()
        self._incoming: list[str] = []  # normalized text not yet in _pending
        self._normalizer = StreamNormalizer()
        self._pending = ""  # normalized text after the committed blocks (or the committed fence lines)
        self._lines_arrived = False  # a newline arrived since the last commit_blocks
        self._fence: FenceWriter | None = None  # the unfinished block is a fence, streamed line by line
        self._separate = False  # something is committed: a blank line goes before the next block
        self._live: list[str] = []  # the live region's lines as drawn
        self._live_rows = 0  # terminal rows the live region takes (differs from len(_live) after resize)
        self._repaint = False
        self._tail: tuple[str, list[str]] = ("", [])  # the last tail render, by source
        self._last_frame = -math.inf
        self._dirty = False
        self._done = False

    @property
    def text(self) -> str:
        """Everything fed so far, as fed."""
        return self._fed.value

    def feed(self, chunk: str, now: float | None = None) -> None:
        """Add a piece of the reply; paint a frame if one is due (`now` defaults to time.monotonic())."""
        if self._done:
            raise RuntimeError("feed() after finish() or abort()")
        if not chunk:
            return
        self._fed.append(chunk)
        text = self._normalizer.push(chunk)
        if text:
            self._incoming.append(text)
            self._dirty = True
        self.tick(now)

    def tick(self, now: float | None = None) -> None:
        """Repaint if something changed and a frame is due (call it from a timer while text is idle)."""
        if self._done or not (self._dirty or self._repaint):
            return
        now = time.monotonic() if now is None else now
        if now - self._last_frame < self._interval:
            return
        self._last_frame = now
        self._take_incoming()
        committed = self._advance(final=False)
        live = self._live_lines()
        self._dirty = False
        if committed or live != self._live or self._repaint:
            self._paint(committed, live)

    def finish(self) -> None:
        """Commit everything and clear the live region; the screen then equals the one-shot render."""
        if self._done:
            return
        self._done = True
        if rest := self._normalizer.end():
            self._incoming.append(rest)
        self._take_incoming()
        committed = self._advance(final=True)
        frame = self._erase() + "".join(line + NEWLINE for line in committed)
        self._live, self._live_rows = [], 0
        if frame:
            self._write(frame)

    def abort(self) -> None:
        """End an interrupted reply: commit what arrived, as it would render on its own."""
        self.finish()

    def resize(self, width: int, height: int) -> None:
        """Adopt a new terminal size; committed lines stay as drawn, the live region is redrawn now.

        Narrower: the live region is erased as a reflowing terminal has re-wrapped it.
        """
        if height < 1:
            raise ValueError(f"height must be at least 1, not {height}")
        if width == self._painter.width and height == self._height:
            return
        if width < self._painter.width:
            self._live_rows = sum(max(1, -(-cell_len(_SGR.sub("", line)) // width)) for line in self._live)
        self._painter = BlockPainter(width, self._painter.code_theme)
        if self._fence is not None:
            self._fence.painter = self._painter
        self._height = height
        self._tail = ("", [])
        if not self._done:
            self._repaint = True
            self._last_frame = -math.inf
            self.tick()

    # -- frame parts

    def _take_incoming(self) -> None:
        if self._incoming:
            text = "".join(self._incoming)
            self._incoming.clear()
            self._lines_arrived = self._lines_arrived or "\n" in text
            self._pending += text

    def _emit(self, lines: list[str], out: list[str]) -> None:
        """Commit one block's lines, after a blank line if something precedes them."""
        if lines:
            if self._separate:
                out.append("")
            out.extend(lines)
            self._separate = True

    def _advance(self, final: bool) -> list[str]:
        """Commit what is finished (everything, if `final`); return the newly committed lines."""
        out: list[str] = []
        while True:
            if self._fence is not None:
                if not self._advance_fence(out, final):
                    return out
                continue
            if final:
                for block in split_blocks(self._pending):
                    self._emit(self._painter.block(block), out)
                self._pending = ""
                return out
            if not self._lines_arrived:
                return out  # no new complete line: nothing can have finished
            self._lines_arrived = False
            split = commit_blocks(self._pending)
            for block in split.blocks:
                self._emit(self._painter.block(block), out)
            self._pending = split.tail
            if split.tail_kind != FENCE:
                return out
            # The unfinished block is a code fence with a complete opening line: stream it by lines.
            end = split.tail.index("\n", split.tail_start)
            opening = fence_opening(split.tail[split.tail_start : end])
            if opening is None:  # markdown-it has just called it a fence; keep it in the tail anyway
                return out
            self._fence = FenceWriter(self._painter, opening)
            self._emit(self._fence.open(), out)
            self._pending = split.tail[end + 1 :]

    def _advance_fence(self, out: list[str], final: bool) -> bool:
        """Commit the open fence's complete lines; return True once the fence has ended."""
        assert self._fence is not None
        fence, pending, start = self._fence, self._pending, 0
        while (newline := pending.find("\n", start)) >= 0:
            rows, closed = fence.line(pending[start:newline])
            out.extend(rows)
            start = newline + 1
            if closed:
                self._end_fence(pending[start:])
                return True
        self._pending = pending[start:]
        if not final:
            return False
        out.extend(fence.end(self._pending))
        self._end_fence("")
        return True

    def _end_fence(self, rest: str) -> None:
        self._fence = None
        self._pending = rest
        self._lines_arrived = "\n" in rest

    def _live_lines(self) -> list[str]:
        if self._fence is not None:
            lines = self._fence.preview(self._pending)
        else:
            if self._tail[0] != self._pending:
                blocks = split_blocks(self._pending)
                self._tail = (self._pending, join_blocks(self._painter.block(block) for block in blocks))
            lines = self._tail[1]
            if lines and self._separate:
                lines = ["", *lines]
        # Taller than the terminal: show the end; a taller region would push its top into scrollback.
        return lines[-self._height :]

    def _erase(self) -> str:
        """Return to the start of the live region and clear it (nothing if it is empty)."""
        if self._live_rows == 0:
            return ""
        up = self._live_rows - 1
        return f"\r\x1b[{up}A\x1b[J" if up else "\r\x1b[J"

    def _paint(self, committed: list[str], live: list[str]) -> None:
        frame = self._erase() + "".join(line + NEWLINE for line in committed) + NEWLINE.join(live)
        self._live, self._live_rows = live, len(live)
        self._repaint = False
        if frame:
            self._write(frame)
