"""Markdown to styled rows at a given width: our own mapping from markdown-it tokens.

Pure layout (no I/O, no terminal state): `layout_markdown(source, width)` returns rows of rich
`Segment`s, each at most `width` cells. A block lays out from its own source and the width alone,
which is what lets the streaming renderer print a block once and never revisit it.

Why not rich's `Markdown`: a streamed reply repaints its unfinished last block up to 30 times a
second, and rich's table and list rendering cost 5-15 ms for an ordinary table; this mapping keeps
rich's look (its default Markdown styles) at a fraction of the cost, and renders loose lists (blank
lines between items) as CommonMark means them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import lru_cache

from markdown_it.tree import SyntaxTreeNode
from rich.cells import cell_len, get_character_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.syntax import PygmentsSyntaxTheme

from .blocks import markdown_parser
from .highlight import LexedLine, LineHighlighter, TokenType

Row = list[Segment]
Run = tuple[str, Style]  # a piece of inline text and its style

_PARSER = markdown_parser()

# rich's default Markdown styles, so replies look as they do in other rich-based tools.
PLAIN = Style()
EM = Style(italic=True)
STRONG = Style(bold=True)
STRIKE = Style(strike=True)
CODE = Style(bold=True, color="cyan", bgcolor="black")
LINK = Style(color="bright_blue")
LINK_URL = Style(color="blue", underline=True)
QUOTE = Style(color="magenta")
BULLET = Style(bold=True)
NUMBER = Style(color="cyan")
RULE = Style(dim=True)
HTML = Style(dim=True)
TABLE_BORDER = Style(color="cyan")
TABLE_HEADER = Style(color="cyan", bold=True)
HEADINGS = {
    1: Style(bold=True, underline=True),
    2: Style(color="magenta", underline=True),
    3: Style(color="magenta", bold=True),
    4: Style(color="magenta", italic=True),
    5: Style(italic=True),
    6: Style(dim=True),
}
BULLETS = ("•", "◦", "▪")  # by nesting depth
_TAB_SIZE = 4
_BREAKS = re.compile(r"(\n| +)")
_ALIGN = re.compile(r"text-align:(left|center|right)")


class CodePainter:
    """Draws code rows at one width with one pygments theme: a 1-cell margin, theme background."""

    def __init__(self, width: int, theme: str) -> None:
        """Rows are `width` cells wide; `theme` is a pygments style name."""
        self.width = width
        self._theme = PygmentsSyntaxTheme(theme)
        self._base = self._theme.get_background_style()
        self._styles: dict[TokenType, Style] = {}
        self._margin = 1 if width >= 3 else 0  # no room for margins in a tiny terminal
        self._code_width = width - 2 * self._margin

    def _style(self, kind: TokenType) -> Style:
        style = self._styles.get(kind)
        if style is None:
            style = self._styles[kind] = self._base + self._theme.get_style_for_token(kind)
        return style

    def edge(self) -> Row:
        """The background row drawn above and below the code."""
        return [Segment(" " * self.width, self._base)]

    def rows(self, tokens: LexedLine) -> list[Row]:
        """One line of code as rows, folded at the width (not word-wrapped: lines stay independent)."""
        segments: Row = []
        column = 0
        for kind, value in tokens:
            if "\t" in value:
                lead = column % _TAB_SIZE  # expand from the real column, not the token's start
                value = (" " * lead + value).expandtabs(_TAB_SIZE)[lead:]
            if value:
                segments.append(Segment(value, self._style(kind)))
                column += cell_len(value)
        if column <= self._code_width:
            pieces = [segments]
        else:
            cuts = range(self._code_width, column + self._code_width, self._code_width)
            pieces = [piece for piece in Segment.divide(segments, cuts) if piece]
        margin = [Segment(" " * self._margin, self._base)] if self._margin else []
        out: list[Row] = []
        for piece in pieces:
            fill = self.width - self._margin - Segment.get_line_length(piece)
            out.append([*margin, *piece, Segment(" " * max(0, fill), self._base)])
        return out

    def block(self, code: str, language: str) -> list[Row]:
        """A whole code block: edge, its lines, edge."""
        lines = code.split("\n")
        if lines[-1] == "":
            lines.pop()
        highlighter = LineHighlighter(language)
        rows = [self.edge()]
        for line in lines:
            rows.extend(self.rows(highlighter.push(line)))
        rows.append(self.edge())
        return rows


@lru_cache(maxsize=32)
def code_painter(width: int, theme: str) -> CodePainter:
    """A shared CodePainter for `width` and `theme` (painters hold only style caches)."""
    return CodePainter(width, theme)


def _words(runs: Sequence[Run]) -> Iterator[tuple[str, list[Run]]]:
    """Split runs into ("word", pieces), ("space", [run]) and ("newline", []) items.

    A word may span runs ("foo**bar**" is one word in two styles), so it is never broken between them.
    """
    word: list[Run] = []
    for text, style in runs:
        if "\t" in text:
            text = text.replace("\t", " ")
        for part in _BREAKS.split(text):
            if not part:
                continue
            if part == "\n" or part[0] == " ":
                if word:
                    yield "word", word
                    word = []
                yield ("newline", []) if part == "\n" else ("space", [(part, style)])
            else:
                word.append((part, style))
    if word:
        yield "word", word


def wrap(runs: Sequence[Run], width: int) -> list[Row]:
    """Greedy word wrap of styled runs into rows of at most `width` cells; long words are folded."""
    width = max(1, width)
    rows: list[Row] = []
    row: Row = []
    column = 0
    space: Run | None = None
    for kind, pieces in _words(runs):
        if kind == "newline":
            rows.append(row)
            row, column, space = [], 0, None
            continue
        if kind == "space":
            space = pieces[0] if column else None  # spaces at the start of a row are dropped
            continue
        size = sum(cell_len(text) for text, _ in pieces)
        gap = cell_len(space[0]) if space else 0
        if column + gap + size > width and column:
            rows.append(row)
            row, column, space, gap = [], 0, None, 0
        if space:
            row.append(Segment(*space))
            column += gap
            space = None
        if column + size <= width:
            row.extend(Segment(text, style) for text, style in pieces)
            column += size
            continue
        for text, style in pieces:  # a word wider than the row: fold it by cells
            for char in text:
                cells = get_character_cell_size(char)
                if column + cells > width and column:
                    rows.append(row)
                    row, column = [], 0
                row.append(Segment(char, style))
                column += cells
    if row or not rows:
        rows.append(row)
    return rows


def _fold(text: str, width: int, style: Style) -> list[Row]:
    """Rows of `text` cut every `width` cells, for text that must not be re-wrapped (raw HTML)."""
    rows: list[Row] = []
    for line in text.expandtabs(_TAB_SIZE).split("\n"):
        row, column = "", 0
        for char in line:
            cells = get_character_cell_size(char)
            if column + cells > width and column:
                rows.append([Segment(row, style)])
                row, column = "", 0
            row += char
            column += cells
        rows.append([Segment(row, style)])
    return rows


def _restyle(row: Row, style: Style) -> Row:
    """Put `style` under every segment of `row` (the segment's own style wins)."""
    return [Segment(text, style + own if own else style) for text, own, _ in row]


def _pad(row: Row, width: int, align: str) -> Row:
    """Pad `row` to `width` cells, aligning its content left, right or center."""
    spare = width - Segment.get_line_length(row)
    if spare <= 0:
        return row
    if align == "right":
        return [Segment(" " * spare), *row]
    if align == "center":
        return [Segment(" " * (spare // 2)), *row, Segment(" " * (spare - spare // 2))]
    return [*row, Segment(" " * spare)]


def _column_widths(natural: list[int], available: int) -> list[int]:
    """Column widths that fit `available` cells: natural widths, the widest cut down first."""
    if sum(natural) <= available:
        return natural
    if available <= len(natural):
        return [1] * len(natural)
    cap = 1  # the largest cap with sum(min(width, cap)) <= available
    low, high = 1, max(natural)
    while low <= high:
        middle = (low + high) // 2
        if sum(min(width, middle) for width in natural) <= available:
            cap, low = middle, middle + 1
        else:
            high = middle - 1
    widths = [min(width, cap) for width in natural]
    spare = available - sum(widths)
    for index, width in enumerate(natural):
        if spare and width > cap:
            widths[index] += 1
            spare -= 1
    return widths


class _Layout:
    """Lays out one parsed Markdown source; `code_theme` styles its code blocks."""

    def __init__(self, code_theme: str) -> None:
        self.code_theme = code_theme

    def blocks(
        self, nodes: Sequence[SyntaxTreeNode], width: int, *, gap: bool = True, depth: int = 0
    ) -> list[Row]:
        """Sibling blocks, with a blank row between them when `gap`."""
        out: list[Row] = []
        for node in nodes:
            rows = self.block(node, width, depth)
            if rows:
                if out and gap:
                    out.append([])
                out.extend(rows)
        return out

    def block(self, node: SyntaxTreeNode, width: int, depth: int) -> list[Row]:
        """One block node."""
        width = max(1, width)  # containers indent; in a tiny terminal the rows get cropped instead
        kind = node.type
        if kind == "paragraph":
            return wrap(self.inline(node, PLAIN), width)
        if kind == "heading":
            return self.heading(node, width)
        if kind in ("bullet_list", "ordered_list"):
            return self.list_block(node, width, depth)
        if kind == "blockquote":
            rows = self.blocks(node.children, width - 2, depth=depth)
            return [
                [Segment("▌ ", QUOTE), *_restyle(row, QUOTE)] if row else [Segment("▌", QUOTE)]
                for row in rows
            ]
        if kind in ("fence", "code_block"):
            info = node.info.strip() if kind == "fence" else ""
            return code_painter(width, self.code_theme).block(
                node.content, info.split(maxsplit=1)[0] if info else ""
            )
        if kind == "table":
            return self.table(node, width)
        if kind == "hr":
            return [[Segment("─" * width, RULE)]]
        if kind == "html_block":
            return _fold(node.content.rstrip("\n"), width, HTML)
        return self.blocks(node.children, width, depth=depth)

    def inline(self, node: SyntaxTreeNode, style: Style) -> list[Run]:
        """The styled text of a block's inline content."""
        runs: list[Run] = []
        self._runs(node.children, style, runs)
        return runs

    def _runs(self, nodes: Sequence[SyntaxTreeNode], style: Style, out: list[Run]) -> None:
        for node in nodes:
            kind = node.type
            if kind == "text":
                out.append((node.content, style))
            elif kind == "softbreak":
                out.append((" ", style))
            elif kind == "hardbreak":
                out.append(("\n", style))
            elif kind == "code_inline":
                out.append((node.content, style + CODE))
            elif kind == "strong":
                self._runs(node.children, style + STRONG, out)
            elif kind == "em":
                self._runs(node.children, style + EM, out)
            elif kind == "s":
                self._runs(node.children, style + STRIKE, out)
            elif kind == "link":
                start = len(out)
                self._runs(node.children, style + LINK, out)
                label = "".join(text for text, _ in out[start:])
                href = str(node.attrs.get("href", ""))
                if href and href not in (label, "mailto:" + label):  # autolinks show their URL already
                    out.extend([(" (", style), (href, style + LINK_URL), (")", style)])
            elif kind == "image":
                alt = "".join(text for text, _ in self.inline(node, style))
                out.append((f"[image: {alt}]" if alt else "[image]", style + LINK))
            elif kind == "html_inline":
                out.append((node.content, style + HTML))
            elif node.children:
                self._runs(node.children, style, out)
            elif node.content:
                out.append((node.content, style))

    def heading(self, node: SyntaxTreeNode, width: int) -> list[Row]:
        level = int(node.tag[1:]) if node.tag[1:].isdigit() else 6
        rows = wrap(self.inline(node, HEADINGS.get(level, HEADINGS[6])), width)
        if level == 1:  # centred, as rich does
            return [[Segment(" " * ((width - Segment.get_line_length(row)) // 2)), *row] for row in rows]
        return rows

    def list_block(self, node: SyntaxTreeNode, width: int, depth: int) -> list[Row]:
        items = node.children
        # Tight lists mark their paragraphs hidden; one visible paragraph makes the list loose.
        loose = any(
            child.type == "paragraph" and not child.hidden for item in items for child in item.children
        )
        ordered = node.type == "ordered_list"
        start = int(node.attrs.get("start", 1)) if ordered else 1
        marker_width = len(str(start + len(items) - 1)) + 3 if ordered else 3
        bullet = BULLETS[depth % len(BULLETS)]
        out: list[Row] = []
        for index, item in enumerate(items):
            content = self.blocks(item.children, max(1, width - marker_width), gap=loose, depth=depth + 1)
            if ordered:
                marker = Segment(f"{start + index}.".rjust(marker_width - 1) + " ", NUMBER)
            else:
                marker = Segment(f" {bullet} ", BULLET)
            if out and loose:
                out.append([])
            indent = Segment(" " * marker_width)
            for line, row in enumerate(content or [[]]):
                out.append([marker, *row] if line == 0 else [indent, *row] if row else [])
        return out

    def table(self, node: SyntaxTreeNode, width: int) -> list[Row]:
        rows: list[list[list[Run]]] = []
        aligns: list[str] = []
        header_rows = 0
        for section in node.children:
            for tr in section.children:
                cells = [
                    self.inline(cell, TABLE_HEADER if cell.type == "th" else PLAIN) for cell in tr.children
                ]
                rows.append(cells)
                if section.type == "thead":
                    header_rows += 1
                    aligns = [
                        match.group(1)
                        if (match := _ALIGN.search(str(cell.attrs.get("style", ""))))
                        else "left"
                        for cell in tr.children
                    ]
        columns = max((len(cells) for cells in rows), default=0)
        if not columns:
            return []
        aligns += ["left"] * (columns - len(aligns))
        natural = [1] * columns
        for cells in rows:
            for index, runs in enumerate(cells):
                natural[index] = max(natural[index], sum(cell_len(text) for text, _ in runs))
        widths = _column_widths(natural, width - 3 * (columns - 1))
        separator = Segment(" │ ", TABLE_BORDER)
        out: list[Row] = []
        for number, cells in enumerate(rows):
            wrapped = [wrap(runs, widths[index]) for index, runs in enumerate(cells)]
            wrapped += [[[]]] * (columns - len(wrapped))
            for line in range(max(len(cell) for cell in wrapped)):
                row: Row = []
                for index, cell in enumerate(wrapped):
                    if index:
                        row.append(separator)
                    row.extend(_pad(cell[line] if line < len(cell) else [], widths[index], aligns[index]))
                out.append(row)
            if number + 1 == header_rows:
                out.append([Segment("─┼─".join("─" * size for size in widths), TABLE_BORDER)])
        return out


def layout_markdown(source: str, width: int, *, code_theme: str = "monokai") -> list[Row]:
    """Lay out a Markdown source as rows of at most `width` cells (blank rows only between blocks)."""
    root = SyntaxTreeNode(_PARSER.parse(source))
    return _Layout(code_theme).blocks(root.children, max(1, width))
