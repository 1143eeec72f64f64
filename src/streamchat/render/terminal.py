"""Markdown blocks to ANSI terminal lines: the one-shot render and the pieces a stream commits.

The one-shot render of a text is, by definition, the render of each of its top-level blocks on its
own (`BlockPainter.block`), joined with one blank line between non-empty blocks (`join_blocks`). The
streaming renderer commits exactly those block renders, so both agree by construction. A top-level
code fence is drawn by a `FenceWriter` one line at a time, and `BlockPainter.block` draws finished
fences through the same writer, so a fence streamed line by line equals the fence drawn at once.

Lines are ANSI strings with no newline, never wider than the width (in terminal cells), so the
terminal never soft-wraps them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from rich.color import ColorSystem
from rich.segment import Segment

from .blocks import (
    FENCE,
    Block,
    FenceOpening,
    block_lines,
    fence_closes,
    fence_content,
    fence_keeps_last_line,
    fence_opening,
    normalize,
    split_blocks,
)
from .highlight import LineHighlighter
from .layout import Row, code_painter, layout_markdown

_CACHE_SIZE = 32  # block renders kept: the tail is re-rendered each frame and then committed


def row_to_ansi(row: Iterable[Segment]) -> str:
    """One row of rich segments as an ANSI string (24-bit colour, no newline)."""
    return "".join(
        style.render(text, color_system=ColorSystem.TRUECOLOR) if style else text
        for text, style, control in Segment.simplify(row)
        if not control
    )


def join_blocks(renders: Iterable[list[str]]) -> list[str]:
    """Join block renders with one blank line between non-empty ones (the one-shot layout)."""
    out: list[str] = []
    for lines in renders:
        if lines:
            if out:
                out.append("")
            out.extend(lines)
    return out


def _is_empty(row: Row) -> bool:
    return all(not segment.text for segment in row)


class BlockPainter:
    """Renders top-level blocks to ANSI lines at one width; a block's lines never depend on others."""

    def __init__(self, width: int, code_theme: str = "monokai") -> None:
        """Lines are at most `width` cells; code uses the pygments style `code_theme`."""
        if width < 1:
            raise ValueError(f"width must be at least 1, not {width}")
        self.width = width
        self.code_theme = code_theme
        self.code = code_painter(width, code_theme)
        self._cache: OrderedDict[Block, list[str]] = OrderedDict()

    def block(self, block: Block) -> list[str]:
        """The lines of one top-level block, without blank lines around it."""
        lines = self._cache.get(block)
        if lines is None:
            lines = self._fence(block) if block.kind == FENCE else None
            if lines is None:
                lines = self._markdown(block.source)
            self._cache[block] = lines
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(block)
        return lines

    def _fence(self, block: Block) -> list[str] | None:
        lines = block_lines(block)
        opening = fence_opening(lines[0]) if lines else None
        if opening is None:
            return None
        writer = FenceWriter(self, opening)
        out = writer.open()
        for line in lines[1:]:
            rows, closed = writer.line(line)
            out.extend(rows)
            if closed:
                return out
        out.extend(writer.close())
        return out

    def _markdown(self, source: str) -> list[str]:
        rows = layout_markdown(source, self.width, code_theme=self.code_theme)
        start, end = 0, len(rows)
        while start < end and _is_empty(rows[start]):
            start += 1
        while end > start and _is_empty(rows[end - 1]):
            end -= 1
        return [row_to_ansi(self._fit(row)) for row in rows[start:end]]

    def _fit(self, row: Row) -> Row:
        """Crop a row to the width (only degenerate widths, narrower than a list marker, need it)."""
        if Segment.get_line_length(row) > self.width:
            return Segment.adjust_line_length(row, self.width)
        return row


class FenceWriter:
    """Draws one top-level code fence line by line: the stream and the one-shot render both use it."""

    def __init__(self, painter: BlockPainter, opening: FenceOpening) -> None:
        """A fence opened by `opening`, drawn with `painter` (which may be swapped on resize)."""
        self.painter = painter
        self.opening = opening
        self._highlighter = LineHighlighter(opening.language)

    def open(self) -> list[str]:
        """Lines for the opening line."""
        return [row_to_ansi(self.painter.code.edge())]

    def line(self, line: str) -> tuple[list[str], bool]:
        """Lines for the next line of the fence, and whether that line closed it."""
        if fence_closes(self.opening, line):
            return self.close(), True
        tokens = self._highlighter.push(fence_content(self.opening, line))
        return [row_to_ansi(row) for row in self.painter.code.rows(tokens)], False

    def close(self) -> list[str]:
        """Lines that close the fence (also when the text ends inside it)."""
        return [row_to_ansi(self.painter.code.edge())]

    def end(self, partial: str) -> list[str]:
        """Lines that end the fence when the text ends inside it; `partial` is its unterminated last line."""
        if partial and fence_keeps_last_line(self.opening, partial):
            rows, closed = self.line(partial)
            return rows if closed else rows + self.close()
        return self.close()

    def preview(self, partial: str) -> list[str]:
        """What `end(partial)` would draw, without moving past `partial`: the live region's lines."""
        if partial and fence_keeps_last_line(self.opening, partial):
            if fence_closes(self.opening, partial):
                return self.close()
            tokens = self._highlighter.peek(fence_content(self.opening, partial))
            return [row_to_ansi(row) for row in self.painter.code.rows(tokens)] + self.close()
        return self.close()


def render_markdown(text: str, width: int, *, code_theme: str = "monokai") -> str:
    """Render a whole Markdown text at once: ANSI lines joined by "\\n", each at most `width` cells."""
    painter = BlockPainter(width, code_theme)
    return "\n".join(join_blocks(painter.block(block) for block in split_blocks(normalize(text))))
