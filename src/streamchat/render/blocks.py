"""Split streamed Markdown into finished top-level blocks and an unfinished tail (pure functions).

The unit of output is the top-level block as markdown-it sees it. A block's source runs from the
end of the previous block through its own last line, so the blocks of a text concatenate back to
the text (less trailing blank lines). `split_blocks` cuts a whole text; `commit_blocks` cuts only
what can no longer change while more text is still coming, parsing from the caller's committed
offset and never before it. Each block renders from its own source, so a link reference definition
serves only the block it sits in front of.

Why "all blocks but the last" is safe: markdown-it decides where a top-level block ends by looking
at the lines that follow it, at most up to the first line of the next block (a table needs one more,
its delimiter row, which it has already seen when it reports the table). So once a later top-level
block has begun on a complete line, nothing appended can move an earlier block's end or change its
lines: a paragraph cannot turn into a setext heading or a table header any more, a list cannot take
back the line that ended it. The partial last line is left out of that decision entirely.
"""

from __future__ import annotations

from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.token import Token


def markdown_parser() -> MarkdownIt:
    """The Markdown dialect rendered: CommonMark with GitHub tables and strikethrough."""
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


# Block structure only: inline parsing cannot move block boundaries and would cost as much again.
_BLOCK_PARSER = markdown_parser().disable("inline")

FENCE = "fence"

# C0 and C1 controls other than tab and newline (CR is a newline) would reach the terminal as
# escape sequences; show them as U+FFFD, as markdown-it does for NUL.
_CONTROLS = {code: "\ufffd" for code in [*range(0, 32), *range(127, 160)] if code not in (9, 10, 13)}


@dataclass(frozen=True, slots=True)
class Block:
    """One top-level Markdown block and the source that renders it."""

    source: str  # from the end of the previous block through this block's last line
    kind: str  # markdown-it type of the block's first token ("paragraph_open", "fence", ...); "" if none
    start: int  # offset in `source` of the block's first line (blank lines, link definitions before)


@dataclass(frozen=True, slots=True)
class Split:
    """What `commit_blocks` found: blocks that are final, and the rest."""

    blocks: tuple[Block, ...]  # newly finished blocks, in order
    offset: int  # the new committed offset into the text (end of the last finished block)
    tail: str  # text[offset:]: the unfinished last block, possibly with a partial last line
    tail_kind: str  # kind of the tail's block so far, judged on complete lines only; "" if none yet
    tail_start: int  # offset in `tail` of the first line of that block


@dataclass(frozen=True, slots=True)
class FenceOpening:
    """The opening line of a fenced code block."""

    line: str  # the line as written, without its newline
    info: str  # the info string, stripped
    marker: str  # "`" or "~"

    @property
    def language(self) -> str:
        """First word of the info string ("" when there is none)."""
        return self.info.split(maxsplit=1)[0] if self.info else ""

    @property
    def indented(self) -> bool:
        """Whether the fence is indented, so that content lines lose up to as much indentation."""
        return not self.line.startswith(self.marker)


def normalize(text: str) -> str:
    """The text as it is rendered: CR LF and lone CR become LF, control characters become U+FFFD."""
    return text.replace("\r\n", "\n").replace("\r", "\n").translate(_CONTROLS)


class StreamNormalizer:
    """`normalize` for text that arrives in pieces: a CR that ends a piece may be half of a CR LF, so it
    waits for the next piece (or the end)."""

    def __init__(self) -> None:
        self._carry_cr = False

    def push(self, chunk: str) -> str:
        """The normalized text of `chunk` that can be known now."""
        if self._carry_cr:
            chunk = "\r" + chunk
        self._carry_cr = chunk.endswith("\r")
        return normalize(chunk[:-1] if self._carry_cr else chunk)

    def end(self) -> str:
        """What is left at the end of the text (a held-back CR is a line end)."""
        carried, self._carry_cr = self._carry_cr, False
        return "\n" if carried else ""


@dataclass(frozen=True, slots=True)
class _Span:
    first: int  # first line of the block
    end: int  # line after its last line
    kind: str


def _top_level_spans(tokens: list[Token]) -> list[_Span]:
    return [
        _Span(token.map[0], token.map[1], token.type)
        for token in tokens
        if token.level == 0 and token.nesting >= 0 and token.map is not None
    ]


def _line_offsets(source: str, lines: int) -> list[int]:
    """Offsets of the starts of lines 0..lines in `source` (len(source) past the end)."""
    offsets = [0]
    position = 0
    while len(offsets) <= lines:
        newline = source.find("\n", position)
        position = len(source) if newline < 0 else newline + 1
        offsets.append(position)
    return offsets


def commit_blocks(text: str, offset: int = 0) -> Split:
    """Return the top-level blocks of `text[offset:]` that are finished, and the unfinished rest.

    `offset` must be a block boundary (0 or an offset returned before). Only `text[offset:]` is
    parsed, up to its last newline. A block is finished when a later top-level block has begun.
    """
    complete = text.rfind("\n", offset) + 1
    if complete <= offset:
        return Split((), offset, text[offset:], "", 0)
    source = text[offset:complete]
    spans = _top_level_spans(_BLOCK_PARSER.parse(source))
    if not spans:
        return Split((), offset, text[offset:], "", 0)
    last = spans[-1]
    starts = _line_offsets(source, last.first)
    blocks: list[Block] = []
    begin = 0
    for span in spans[:-1]:
        end = starts[span.end]
        blocks.append(Block(source[begin:end], span.kind, starts[span.first] - begin))
        begin = end
    return Split(tuple(blocks), offset + begin, text[offset + begin :], last.kind, starts[last.first] - begin)


def split_blocks(text: str) -> list[Block]:
    """Cut a whole text into its top-level blocks; the text is final, so every block is.

    Text after the last block (only blank lines or link reference definitions) becomes a block of
    kind "" so that the blocks always concatenate back to `text`.
    """
    spans = _top_level_spans(_BLOCK_PARSER.parse(text))
    blocks: list[Block] = []
    begin = 0
    if spans:
        starts = _line_offsets(text, spans[-1].end)
        for span in spans:
            end = starts[span.end]
            blocks.append(Block(text[begin:end], span.kind, starts[span.first] - begin))
            begin = end
    if text[begin:].strip():
        blocks.append(Block(text[begin:], "", 0))
    return blocks


def block_lines(block: Block) -> list[str]:
    """The lines of a block from its first line on, without newlines (a partial last line included)."""
    lines = block.source[block.start :].split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _first_fence(source: str) -> Token | None:
    tokens = _BLOCK_PARSER.parse(source)
    if tokens and tokens[0].type == FENCE and tokens[0].map is not None and tokens[0].map[0] == 0:
        return tokens[0]
    return None


def fence_opening(line: str) -> FenceOpening | None:
    """Parse `line` (without newline) as the opening line of a fenced code block, or return None."""
    token = _first_fence(line + "\n")
    if token is None:
        return None
    return FenceOpening(line, token.info.strip(), token.markup[0])


def fence_closes(opening: FenceOpening, line: str) -> bool:
    """Whether `line` (without newline) closes the fence that `opening` opened."""
    if line.lstrip(" \t")[:1] != opening.marker:
        return False  # cheap test first: a closing line starts with the fence's marker
    token = _first_fence(f"{opening.line}\n{line}\n")
    # A closed fence with nothing in it has empty content; a content line would leave "line\n".
    return token is not None and token.content == ""


def fence_keeps_last_line(opening: FenceOpening, line: str) -> bool:
    """Whether a fence open at the end of the text takes `line`, the text's unterminated last line.

    markdown-it leaves out a last line that is only spaces; ask it rather than mirror its rule.
    """
    token = _first_fence(f"{opening.line}\n{line}")
    return token is not None and token.map is not None and token.map[1] == 2


def fence_content(opening: FenceOpening, line: str) -> str:
    """The code in a content line of the fence: the line less the fence's own indentation."""
    if not opening.indented:
        return line
    token = _first_fence(f"{opening.line}\n{line}\n")
    if token is None:  # cannot happen for an opening line; keep the line as written
        return line
    return token.content[:-1] if token.content.endswith("\n") else token.content
