"""Markdown blocks to sanitized HTML: the one-shot `render_html` and the stream the web view sends.

The one-shot HTML of a text is, by definition, the HTML of each of its top-level blocks rendered on
its own, concatenated (`split_blocks`, as for the terminal). `HtmlStream` commits exactly those
block renders as the text streams in (`commit_blocks`), and re-renders only the unfinished tail, so
a page that appends each finished block once and swaps the tail ends with `render_html(text)`.

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
from functools import lru_cache
from html import escape
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token
from pygments import highlight  # type: ignore[import-untyped]
from pygments.formatters import HtmlFormatter  # type: ignore[import-untyped]
from pygments.lexers import get_lexer_by_name  # type: ignore[import-untyped]
from pygments.lexers.special import TextLexer  # type: ignore[import-untyped]
from pygments.util import ClassNotFound  # type: ignore[import-untyped]

from .blocks import Block, StreamNormalizer, commit_blocks, markdown_parser, normalize, split_blocks

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


@lru_cache(maxsize=64)
def _lexer(language: str) -> Any:
    try:
        return get_lexer_by_name(language or "text", stripnl=False, ensurenl=False)
    except ClassNotFound:
        return TextLexer(stripnl=False, ensurenl=False)


_FORMATTER = HtmlFormatter(nowrap=True)


def code_block_html(code: str, language: str) -> str:
    """A code block: a header with its language and a Copy button, then the highlighted code."""
    body = highlight(code, _lexer(language.lower()), _FORMATTER) if code else ""
    label = escape(language) if language else "text"
    language_class = f' class="language-{escape(language)}"' if language else ""
    return (
        f'<div class="code-block"><div class="code-head"><span class="code-lang">{label}</span>'
        '<button type="button" class="copy-code" aria-label="Copy code">Copy</button></div>'
        f"<pre><code{language_class}>{body}</code></pre></div>\n"
    )


def sanitize(html: str) -> str:
    """The allowlist pass every fragment goes through before it leaves the server."""
    return _CLEANER.clean(html)


@lru_cache(maxsize=256)
def block_html(block: Block) -> str:
    """The sanitized HTML of one top-level block (cached: the tail is rendered, then committed)."""
    return sanitize(_html_parser().render(block.source))


def blocks_html(blocks: Sequence[Block]) -> str:
    """The blocks' HTML concatenated."""
    return "".join(block_html(block) for block in blocks)


def render_html(markdown: str) -> str:
    """The one-shot HTML of a whole Markdown text: its blocks rendered one by one, concatenated."""
    return blocks_html(split_blocks(normalize(markdown)))


@dataclass(frozen=True, slots=True)
class HtmlFrame:
    """What changed since the last frame: finished blocks to append once, and the new tail."""

    blocks: tuple[str, ...]  # HTML of newly finished blocks, in order
    tail: str | None  # HTML of the unfinished tail; None when it is the same as in the last frame

    @property
    def empty(self) -> bool:
        """True when the frame changes nothing on the page."""
        return not self.blocks and self.tail is None


class HtmlStream:
    """Streams Markdown to HTML with the commit-and-tail core: each finished block once, then the tail.

    Call `feed` with each piece of text as it arrives and `frame` when the page is due an update (the
    caller paces frames); `finish` commits the rest. The work per frame is the size of the tail.
    """

    def __init__(self) -> None:
        self._pending = ""  # normalized text after the committed blocks
        self._normalizer = StreamNormalizer()
        self._lines_arrived = False  # a newline arrived since the last commit
        self._tail_source: str | None = None  # the tail as last rendered
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
        """The unfinished tail's Markdown (normalized)."""
        return self._pending

    def frame(self) -> HtmlFrame:
        """Commit the blocks that are finished and render the tail if it changed."""
        blocks: tuple[str, ...] = ()
        if self._lines_arrived:
            self._lines_arrived = False
            split = commit_blocks(self._pending)
            blocks = tuple(block_html(block) for block in split.blocks)
            self._pending = split.tail
        tail: str | None = None
        if self._pending != self._tail_source:
            self._tail_source = self._pending
            tail = blocks_html(split_blocks(self._pending))
        return HtmlFrame(blocks, tail)

    def finish(self) -> HtmlFrame:
        """Commit everything: the page's content then equals `render_html` of the whole text."""
        if self._done:
            return HtmlFrame((), None)
        self._done = True
        self._pending += self._normalizer.end()
        blocks = tuple(block_html(block) for block in split_blocks(self._pending))
        self._pending = ""
        self._tail_source = ""
        return HtmlFrame(blocks, "")


def code_style_css(selector: str = ".code-block pre") -> str:
    """Class-based CSS for highlighted code: a light style, and a dark one under prefers-color-scheme."""
    light = HtmlFormatter(style=CODE_STYLE_LIGHT).get_style_defs(selector)
    dark = HtmlFormatter(style=CODE_STYLE_DARK).get_style_defs(selector)
    dark = "\n".join("  " + line for line in dark.splitlines())
    return f"{light}\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"
