"""One-shot rendering: layout of each block kind, widths, and the line-by-line code highlighter."""

from __future__ import annotations

import re

import pytest
from pygments.token import Comment, Name, String  # type: ignore[import-untyped]
from rich.cells import cell_len
from rich.style import Style

from streamchat.render import render_markdown
from streamchat.render.blocks import split_blocks
from streamchat.render.highlight import LineHighlighter
from streamchat.render.layout import _column_widths, layout_markdown, wrap
from streamchat.render.terminal import BlockPainter, join_blocks

_SGR = re.compile(r"\x1b\[[0-9;]*m")


def plain(rendered: str) -> list[str]:
    return [_SGR.sub("", line).rstrip() for line in rendered.split("\n")]


def test_one_shot_render_is_the_blocks_rendered_alone_and_joined() -> None:
    text = "# T\n\npara\n\n- a\n- b\n\n```py\nx = 1\n```\n\n| a |\n|---|\n| 1 |\n"
    painter = BlockPainter(40)
    by_block = join_blocks(BlockPainter(40).block(block) for block in split_blocks(text))
    assert render_markdown(text, 40).split("\n") == by_block
    # A block renders the same alone as inside the whole text.
    for block in split_blocks(text):
        alone = split_blocks(block.source)
        assert join_blocks(painter.block(part) for part in alone) == painter.block(block)


def test_block_kinds_look_as_intended() -> None:
    text = (
        "# Title\n\nSome **bold**, *it*, `code`, ~~gone~~ and [a link](https://x.org).\n\n"
        "- one\n  - nested\n- two\n\n3. three\n4. four\n\n> quoted\n\n---\n\n<div>raw</div>\n"
    )
    assert plain(render_markdown(text, 50)) == [
        "                      Title",
        "",
        "Some bold, it, code, gone and a link",
        "(https://x.org).",
        "",
        " • one",
        "    ◦ nested",
        " • two",
        "",
        " 3. three",
        " 4. four",
        "",
        "▌ quoted",
        "",
        "─" * 50,
        "",
        "<div>raw</div>",
    ]


def test_loose_lists_keep_blank_lines_between_items() -> None:
    assert plain(render_markdown("- a\n\n- b\n", 20)) == [" • a", "", " • b"]
    assert plain(render_markdown("- a\n- b\n", 20)) == [" • a", " • b"]


def test_unclosed_emphasis_renders_as_written() -> None:
    assert plain(render_markdown("Hello **wor", 20)) == ["Hello **wor"]


def test_tables_align_and_fit() -> None:
    text = "| Name | Count |\n|:-----|------:|\n| a | 1 |\n| bb | 22 |\n"
    assert plain(render_markdown(text, 40)) == [
        "Name │ Count",
        "─────┼──────",
        "a    │     1",
        "bb   │    22",
    ]
    wide = "| " + " | ".join(f"column {i} with words" for i in range(6)) + " |\n|" + "---|" * 6 + "\n"
    for line in plain(render_markdown(wide, 30)):
        assert cell_len(line) <= 30


def test_column_widths_shrink_the_widest_first() -> None:
    assert _column_widths([5, 3], 20) == [5, 3]
    assert _column_widths([30, 4, 10], 24) == [10, 4, 10]
    assert sum(_column_widths([30, 40, 10], 50)) == 50


def test_wrap_keeps_words_whole_and_folds_words_wider_than_the_row() -> None:
    bold = Style(bold=True)
    rows = wrap([("one ab ", Style()), ("thr", Style()), ("ee", bold), (" " + "x" * 12, Style())], 7)
    texts = ["".join(segment.text for segment in row) for row in rows]
    # "three" spans two runs and does not fit after "one ab": it moves down whole.
    assert texts == ["one ab", "three", "xxxxxxx", "xxxxx"]


@pytest.mark.parametrize("width", [1, 2, 5, 13, 80])
def test_no_line_is_wider_than_the_width(width: int) -> None:
    text = (
        "# A heading long enough to wrap\n\n" + "supercalifragilistic " * 5 + "\n\n- - - nested deeply\n\n"
        "> > quote in quote with words\n\n```python\nprint('a long line of code that must fold')\n```\n\n"
        "| a | b | c |\n|---|---|---|\n| 1 | 2 | 3 |\n\n" + "全角文字" * 10 + "\n"
    )
    for line in render_markdown(text, width).split("\n"):
        assert cell_len(_SGR.sub("", line)) <= width


def test_code_rows_fill_the_width_with_the_theme_background() -> None:
    rows = layout_markdown("```python\nx = 1\n```\n", 20)
    assert len(rows) == 3  # edge, code, edge
    for row in rows:
        assert sum(cell_len(segment.text) for segment in row) == 20
        assert all(segment.style is not None and segment.style.bgcolor is not None for segment in row)


def test_highlighter_carries_lexer_state_across_lines() -> None:
    highlighter = LineHighlighter("python")
    highlighter.push("s = '''start")
    inside = highlighter.push("still inside the string")
    assert all(kind in String for kind, _ in inside)
    # Lexed on its own, the same line is names and spaces.
    assert not all(kind in String for kind, _ in LineHighlighter("python").push("still inside the string"))


def test_highlighter_peek_does_not_move_on() -> None:
    highlighter = LineHighlighter("python")
    assert highlighter.peek("'''open")[0][0] in String
    assert highlighter.push("x = 1")[0] == (Name, "x")


def test_highlighter_handles_other_lexer_kinds() -> None:
    ruby = LineHighlighter("ruby")  # an ExtendedRegexLexer
    assert "".join(value for _, value in ruby.push("def f # note")) == "def f # note"
    assert any(kind in Comment for kind, _ in ruby.push("# a comment"))
    json = LineHighlighter("json")  # a hand-written lexer
    assert "".join(value for _, value in json.push('{"a": 1}')) == '{"a": 1}'
    unknown = LineHighlighter("no-such-language")
    assert "".join(value for _, value in unknown.push("text")) == "text"
