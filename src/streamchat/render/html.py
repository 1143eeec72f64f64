"""Markdown blocks to sanitized HTML: the one-shot `render_html` and the stream the web view sends.

The one-shot HTML of a text is, by definition, the HTML of each of its top-level blocks rendered on
its own, concatenated (`split_blocks`, as for the terminal). `HtmlStream` commits exactly those
block renders as the text streams in (`commit_blocks`), and re-renders only the unfinished tail, so
a page that appends each finished block once and swaps the tail ends with `render_html(text)`.

A top-level code fence streams line by line, as in the terminal: its empty code block is sent once
(`fence`), each finished line is highlighted once and appended inside its `<code>` (`lines`), and
only the unfinished last line is the tail, so a frame costs the same at line 5 or line 500. Each
line is a `<span class="line">` (a block in the page's CSS), so the browser lays out an appended
line without laying out the lines before it again. Code is
highlighted one line at a time (`LineHighlighter`, which carries the lexer's state from line to
line) in the one-shot render too, so the streamed fence and the one-shot fence are the same HTML.

Model output is untrusted, so the Markdown dialect is locked down before a byte of HTML exists:
raw HTML is text, links keep only http/https/mailto targets and open in a new tab with
`rel="noopener noreferrer nofollow"`, images become links (a page that fetched them would leak
whatever a prompt injection put in the URL), table alignment is a class (the page's CSP forbids
inline styles). nh3 then sanitizes every fragment again with an allowlist, as a second layer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from html import escape
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token
from pygments.formatters import HtmlFormatter  # type: ignore[import-untyped]
from pygments.token import STANDARD_TYPES  # type: ignore[import-untyped]

from .blocks import (
    FENCE,
    Block,
    FenceOpening,
    StreamNormalizer,
    block_lines,
    commit_blocks,
    fence_closes,
    fence_content,
    fence_keeps_last_line,
    fence_opening,
    markdown_parser,
    normalize,
    split_blocks,
)
from .highlight import LexedLine, LineHighlighter, TokenType

LINK_REL = "noopener noreferrer nofollow"
_LINK_SCHEMES = ("http:", "https:", "mailto:")
_IMAGE_SCHEMES = ("http:", "https:")
_LANGUAGE = re.compile(r"[^A-Za-z0-9_+#.-]")
CODE_STYLE_LIGHT = "default"
CODE_STYLE_DARK = "github-dark"

_TAGS = {
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "pre", "code", "em",
    "strong", "s", "a", "hr", "br", "table", "thead", "tbody", "tr", "th", "td", "span", "div", "button",
}  # fmt: skip
_ATTRIBUTES = {
    "*": {"class"},
    "a": {"href", "title", "target"},
    "ol": {"start"},
    "button": {"type", "aria-label"},
}
_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    attributes=_ATTRIBUTES,
    url_schemes={"http", "https", "mailto"},
    url_relative="deny",
    link_rel=LINK_REL,
    strip_comments=True,
)


def _allowed(url: str, schemes: tuple[str, ...]) -> bool:
    """Only absolute URLs with one of `schemes` (case and leading whitespace ignored)."""
    return url.strip().lower().startswith(schemes)


def _render_link_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    token.attrSet("target", "_blank")
    token.attrSet("rel", LINK_REL)
    return str(self.renderToken(tokens, idx, options, env))


def _render_image(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    """An image as a link to it, never an <img>: nothing is fetched unless the user clicks."""
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = self.renderInlineAsText(token.children or [], options, env) or src
    label = escape(f"image: {alt}", quote=False)
    if not _allowed(src, _IMAGE_SCHEMES):
        return f'<span class="image-link">{label}</span>'
    href = escape(src)
    return f'<a class="image-link" href="{href}" target="_blank" rel="{LINK_REL}">{label}</a>'


def _render_cell(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    """Table cells align by class: the page's CSP blocks inline style attributes."""
    token = tokens[idx]
    style = str(token.attrGet("style") or "")
    if style:
        token.attrs.pop("style", None)
        align = style.partition(":")[2].strip()
        if align in ("left", "center", "right"):
            token.attrSet("class", f"align-{align}")
    return str(self.renderToken(tokens, idx, options, env))


def _render_fence(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    language = _LANGUAGE.sub("", token.info.strip().split(maxsplit=1)[0] if token.info.strip() else "")
    return code_block_html(token.content, language)


def _render_code_block(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return code_block_html(tokens[idx].content, "")


@lru_cache(maxsize=1)
def _html_parser() -> MarkdownIt:
    parser = markdown_parser()
    parser.options["html"] = False  # raw HTML in model output is shown as text
    parser.validateLink = lambda url: _allowed(url, _LINK_SCHEMES)  # type: ignore[method-assign]
    parser.add_render_rule("link_open", _render_link_open)
    parser.add_render_rule("image", _render_image)
    parser.add_render_rule("th_open", _render_cell)
    parser.add_render_rule("td_open", _render_cell)
    parser.add_render_rule("fence", _render_fence)
    parser.add_render_rule("code_block", _render_code_block)
    return parser


def _code_class(language: str) -> str:
    return f' class="language-{escape(language)}"' if language else ""


def code_block_shell(language: str) -> str:
    """A code block with no code yet: a header with its language and a Copy button, then `<pre><code>`."""
    label = escape(language) if language else "text"
    return (
        f'<div class="code-block"><div class="code-head"><span class="code-lang">{label}</span>'
        '<button type="button" class="copy-code" aria-label="Copy code">Copy</button></div>'
        f"<pre><code{_code_class(language)}></code></pre></div>\n"
    )


@cache
def _css_classes(kind: TokenType) -> str:
    """The CSS classes pygments' HtmlFormatter gives a token type ("" for plain text)."""
    classes: list[str] = []
    while True:
        name = STANDARD_TYPES.get(kind)
        suffix = ""
        base = kind
        while name is None:  # a type pygments has no short name for: its parent's name plus a suffix
            suffix = base[-1] + suffix
            base = base.parent
            name = STANDARD_TYPES.get(base)
        classes.insert(0, name + suffix)
        if kind in STANDARD_TYPES:
            return " ".join(c for c in classes if c)
        kind = kind.parent


def tokens_html(tokens: LexedLine) -> str:
    """One line's tokens as spans with pygments' classes (neighbours of the same class share one)."""
    out: list[str] = []
    run_class, run_text = "", ""
    for kind, value in tokens:
        css = _css_classes(kind)
        if css == run_class:
            run_text += value
            continue
        if run_text:
            out.append(f'<span class="{run_class}">{escape(run_text, quote=False)}</span>' if run_class
                       else escape(run_text, quote=False))  # fmt: skip
        run_class, run_text = css, value
    if run_text:
        out.append(f'<span class="{run_class}">{escape(run_text, quote=False)}</span>' if run_class
                   else escape(run_text, quote=False))  # fmt: skip
    return "".join(out)


def line_html(tokens: LexedLine, newline: str = "\n") -> str:
    """One line of code as a block of its own (a page appends lines to a long block at a flat cost)."""
    return f'<span class="line">{tokens_html(tokens)}{newline}</span>'


def code_block_html(code: str, language: str) -> str:
    """A code block: a header with its language and a Copy button, then the code highlighted by lines."""
    highlighter = LineHighlighter(language)
    lines = code.split("\n")
    body = "".join(line_html(highlighter.push(line)) for line in lines[:-1])
    if lines[-1]:  # fence content always ends in a newline; a caller's code may not
        body += line_html(highlighter.push(lines[-1]), "")
    shell = code_block_shell(language)
    at = shell.rindex("</code>")
    return shell[:at] + body + shell[at:]


def sanitize(html: str) -> str:
    """The allowlist pass every fragment goes through before it leaves the server."""
    return _CLEANER.clean(html)


def fence_language(opening: FenceOpening) -> str:
    """The language of a fence as its class names it: the info string's first word, made safe."""
    return _LANGUAGE.sub("", opening.language)


class FenceHtml:
    """Draws one top-level code fence line by line: the stream and the one-shot render both use it."""

    def __init__(self, opening: FenceOpening) -> None:
        self.opening = opening
        self.language = fence_language(opening)
        self._highlighter = LineHighlighter(self.language)
        shell = sanitize(code_block_shell(self.language))
        at = shell.rindex("</code>")
        self.shell = shell  # the whole empty block: the page appends it, then lines go into its <code>
        self.head, self.foot = shell[:at], shell[at:]

    def line(self, line: str) -> tuple[str, bool]:
        """The HTML of the fence's next line (without its newline), and whether that line closed it."""
        if fence_closes(self.opening, line):
            return "", True
        tokens = self._highlighter.push(fence_content(self.opening, line))
        return sanitize(line_html(tokens)), False

    def end(self, partial: str) -> str:
        """The HTML that ends the fence when the text ends inside it; `partial` is its unterminated line."""
        if partial and fence_keeps_last_line(self.opening, partial):
            return self.line(partial)[0]
        return ""

    def preview(self, partial: str) -> str:
        """What `end(partial)` would add, without moving past `partial`: the fence's live tail."""
        opening = self.opening
        if partial and fence_keeps_last_line(opening, partial) and not fence_closes(opening, partial):
            return sanitize(tokens_html(self._highlighter.peek(fence_content(opening, partial))))
        return ""


def _fence_block_html(block: Block) -> str | None:
    """A finished top-level fence drawn by `FenceHtml`, exactly as the stream draws it."""
    lines = block_lines(block)
    opening = fence_opening(lines[0]) if lines else None
    if opening is None:
        return None
    fence = FenceHtml(opening)
    body: list[str] = []
    for line in lines[1:]:
        html, closed = fence.line(line)
        if closed:
            break
        body.append(html)
    return fence.head + "".join(body) + fence.foot


@lru_cache(maxsize=256)
def block_html(block: Block) -> str:
    """The sanitized HTML of one top-level block (cached: the tail is rendered, then committed)."""
    if block.kind == FENCE and (html := _fence_block_html(block)) is not None:
        return html
    return sanitize(_html_parser().render(block.source))


def blocks_html(blocks: Sequence[Block]) -> str:
    """The blocks' HTML concatenated."""
    return "".join(block_html(block) for block in blocks)


def render_html(markdown: str) -> str:
    """The one-shot HTML of a whole Markdown text: its blocks rendered one by one, concatenated."""
    return blocks_html(split_blocks(normalize(markdown)))


@dataclass(frozen=True, slots=True)
class Piece:
    """One change to the page's finished content, applied in order.

    - "blocks": finished blocks' HTML, appended once;
    - "fence": a top-level code block opens: `html` is the whole block with an empty `<code>`;
    - "lines": finished lines of the open code block, appended inside its `<code>`; `end` when the
      fence is finished (its closing line arrived, or the text ended).
    """

    kind: str
    html: str
    end: bool = False


@dataclass(frozen=True, slots=True)
class HtmlFrame:
    """What changed since the last frame: pieces of finished content in order, and the new tail.

    While a code fence is open, the tail is its unfinished last line (shown at the end of its code);
    otherwise it is the HTML of the unfinished last block.
    """

    pieces: tuple[Piece, ...]
    tail: str | None  # HTML of the unfinished tail; None when it is the same as in the last frame

    @property
    def blocks(self) -> tuple[str, ...]:
        """The HTML of the frame's finished blocks (pieces of kind "blocks")."""
        return tuple(piece.html for piece in self.pieces if piece.kind == "blocks")

    @property
    def empty(self) -> bool:
        """True when the frame changes nothing on the page."""
        return not self.pieces and self.tail is None


class HtmlStream:
    """Streams Markdown to HTML with the commit-and-tail core: each finished block once, then the tail.

    Call `feed` with each piece of text as it arrives and `frame` when the page is due an update (the
    caller paces frames); `finish` commits the rest. The work per frame is the size of the tail: the
    unfinished block, or in a code fence the unfinished line.
    """

    def __init__(self) -> None:
        self._pending = ""  # normalized text after the committed blocks (or the fence's committed lines)
        self._normalizer = StreamNormalizer()
        self._lines_arrived = False  # a newline arrived since the last commit
        self._fence: FenceHtml | None = None  # the unfinished block is a fence, streamed line by line
        self._tail_source: tuple[bool, str] | None = None  # (in a fence, source) of the tail last rendered
        self._done = False

    def feed(self, chunk: str) -> None:
        """Add a piece of the text."""
        if self._done:
            raise RuntimeError("feed() after finish()")
        text = self._normalizer.push(chunk)
        if text:
            self._lines_arrived = self._lines_arrived or "\n" in text
            self._pending += text

    @property
    def pending(self) -> str:
        """The unfinished tail's Markdown (normalized); in a fence, its unfinished line."""
        return self._pending

    def frame(self) -> HtmlFrame:
        """Commit what is finished and render the tail if it changed."""
        pieces: list[Piece] = []
        self._advance(pieces, final=False)
        tail: str | None = None
        source = (self._fence is not None, self._pending)
        if source != self._tail_source:
            self._tail_source = source
            if self._fence is not None:
                tail = self._fence.preview(self._pending)
            else:
                tail = blocks_html(split_blocks(self._pending))
        return HtmlFrame(tuple(pieces), tail)

    def finish(self) -> HtmlFrame:
        """Commit everything: the page's content then equals `render_html` of the whole text."""
        if self._done:
            return HtmlFrame((), None)
        self._done = True
        self._pending += self._normalizer.end()
        pieces: list[Piece] = []
        self._advance(pieces, final=True)
        self._tail_source = (False, "")
        return HtmlFrame(tuple(pieces), "")

    def _blocks(self, blocks: tuple[Block, ...] | list[Block], pieces: list[Piece]) -> None:
        if blocks:
            pieces.append(Piece("blocks", "".join(block_html(block) for block in blocks)))

    def _advance(self, pieces: list[Piece], final: bool) -> None:
        """Commit what is finished (everything, if `final`) as pieces, in order."""
        while True:
            if self._fence is not None:
                if not self._advance_fence(pieces, final):
                    return
                continue
            if final:
                self._blocks(split_blocks(self._pending), pieces)
                self._pending = ""
                return
            if not self._lines_arrived:
                return  # no new complete line: nothing can have finished
            self._lines_arrived = False
            split = commit_blocks(self._pending)
            self._blocks(split.blocks, pieces)
            self._pending = split.tail
            if split.tail_kind != FENCE:
                return
            # The unfinished block is a code fence with a complete opening line: stream it by lines.
            end = split.tail.index("\n", split.tail_start)
            opening = fence_opening(split.tail[split.tail_start : end])
            if opening is None:  # markdown-it has just called it a fence; keep it in the tail anyway
                return
            self._fence = FenceHtml(opening)
            pieces.append(Piece("fence", self._fence.shell))
            self._pending = split.tail[end + 1 :]

    def _advance_fence(self, pieces: list[Piece], final: bool) -> bool:
        """Commit the open fence's complete lines; return True once the fence has ended."""
        assert self._fence is not None
        fence, pending, start = self._fence, self._pending, 0
        lines: list[str] = []
        while (newline := pending.find("\n", start)) >= 0:
            html, closed = fence.line(pending[start:newline])
            start = newline + 1
            if closed:
                pieces.append(Piece("lines", "".join(lines), end=True))
                self._end_fence(pending[start:])
                return True
            lines.append(html)
        self._pending = pending[start:]
        if not final:
            if lines:
                pieces.append(Piece("lines", "".join(lines)))
            return False
        lines.append(fence.end(self._pending))
        pieces.append(Piece("lines", "".join(lines), end=True))
        self._end_fence("")
        return True

    def _end_fence(self, rest: str) -> None:
        self._fence = None
        self._pending = rest
        self._lines_arrived = "\n" in rest


def code_style_css(selector: str = ".code-block pre") -> str:
    """Class-based CSS for highlighted code: a light style, and a dark one under prefers-color-scheme."""
    light = HtmlFormatter(style=CODE_STYLE_LIGHT).get_style_defs(selector)
    dark = HtmlFormatter(style=CODE_STYLE_DARK).get_style_defs(selector)
    dark = "\n".join("  " + line for line in dark.splitlines())
    return f"{light}\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"
