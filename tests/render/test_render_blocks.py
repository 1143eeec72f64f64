"""The pure block core: where top-level blocks end, and what may be committed while text streams."""

from __future__ import annotations

import pytest

from streamchat.render.blocks import (
    Block,
    commit_blocks,
    fence_closes,
    fence_content,
    fence_keeps_last_line,
    fence_opening,
    normalize,
    split_blocks,
)


def sources(blocks: tuple[Block, ...] | list[Block]) -> list[str]:
    return [block.source for block in blocks]


def stream_blocks(text: str) -> tuple[list[Block], str]:
    """Feed `text` one character at a time; return the blocks committed along the way and the rest."""
    committed: list[Block] = []
    offset = 0
    for end in range(1, len(text) + 1):
        split = commit_blocks(text[:end], offset)
        assert split.offset >= offset
        assert split.tail == text[split.offset : end]
        committed.extend(split.blocks)
        offset = split.offset
    return committed, text[offset:]


def test_a_block_is_committed_once_the_next_block_has_begun() -> None:
    split = commit_blocks("First paragraph.\n\n# Heading\nMore")
    assert sources(split.blocks) == ["First paragraph.\n"]
    assert split.blocks[0].kind == "paragraph_open"
    assert split.tail == "\n# Heading\nMore"
    assert split.tail_kind == "heading_open"
    assert split.offset == len("First paragraph.\n")


def test_the_partial_last_line_never_finishes_a_block() -> None:
    # "# Heading" is not yet a complete line: it might still be anything.
    assert commit_blocks("First paragraph.\n\n# Head").blocks == ()
    assert commit_blocks("First paragraph.\n\n").blocks == ()


def test_a_list_continues_across_blank_lines() -> None:
    text = "- one\n\n- two\n\n  still two\n\n"
    assert commit_blocks(text).blocks == ()
    split = commit_blocks(text + "After the list.\n")
    assert sources(split.blocks) == [text]
    assert split.blocks[0].kind == "bullet_list_open"


def test_an_indented_line_after_a_blank_keeps_the_list_open() -> None:
    assert commit_blocks("1. one\n\n   more of one\n").blocks == ()


def test_a_paragraph_followed_by_a_table_row_is_not_committed_until_the_table_is_known() -> None:
    # "| a | b |" may be a paragraph line or a table header: it depends on the next line.
    assert commit_blocks("Intro\n| a | b |\n").blocks == ()
    split = commit_blocks("Intro\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert sources(split.blocks) == ["Intro\n"]
    assert split.tail_kind == "table_open"


def test_a_setext_underline_turns_the_paragraph_into_a_heading_before_anything_is_committed() -> None:
    assert commit_blocks("Title\n").blocks == ()
    split = commit_blocks("Title\n=====\nText\n")
    assert [block.kind for block in split.blocks] == ["heading_open"]
    assert sources(split.blocks) == ["Title\n=====\n"]
    # "---" right under a paragraph is a setext underline, not a rule.
    assert [block.kind for block in split_blocks("Title\n---\n")] == ["heading_open"]


def test_lazy_continuation_keeps_a_quote_open() -> None:
    assert commit_blocks("> quoted\nlazy line\n").blocks == ()
    split = commit_blocks("> quoted\nlazy line\n\nNext\n")
    assert sources(split.blocks) == ["> quoted\nlazy line\n"]


def test_committed_text_is_never_parsed_again() -> None:
    # Everything before the offset is ignored: an open fence there would otherwise swallow the rest.
    text = "```\nnot a fence any more\n" + "Para\n\n# H\n"
    offset = len("```\nnot a fence any more\n")
    split = commit_blocks(text, offset)
    assert sources(split.blocks) == ["Para\n"]
    assert split.offset == offset + len("Para\n")


def test_the_tail_reports_its_block_kind_and_where_it_starts() -> None:
    split = commit_blocks("Para\n\n[ref]: /url\n```python\nx = 1\n")
    assert sources(split.blocks) == ["Para\n"]
    assert split.tail_kind == "fence"
    assert split.tail[split.tail_start :].startswith("```python\n")


DOCUMENTS = [
    "# Title\n\nText with **bold**.\n\n- a\n- b\n\n  loose\n\n1. x\n2. y\n\nEnd\n",
    "Intro\n| a | b |\n|---|---|\n| 1 | 2 |\n\nSetext\n===\n\n> quote\nlazy\n\n***\n",
    "```python\ndef f():\n    return 1\n```\n\n    indented code\n\n<div>\nhtml\n</div>\n\ntail **open",
    "- a\n  - nested\n\n    deeper\n- b\n\n[ref]: https://example.com\n\nSee [ref].\n",
]


@pytest.mark.parametrize("text", DOCUMENTS)
def test_streamed_commits_plus_the_final_split_equal_the_one_shot_split(text: str) -> None:
    committed, rest = stream_blocks(text)
    assert committed + split_blocks(rest) == split_blocks(text)


@pytest.mark.parametrize("text", DOCUMENTS)
def test_blocks_concatenate_back_to_the_text(text: str) -> None:
    assert "".join(sources(split_blocks(text))) == text.rstrip("\n") + ("\n" if text.endswith("\n") else "")


def test_only_blank_lines_after_the_last_block_are_dropped() -> None:
    assert sources(split_blocks("a\n\n\n")) == ["a\n"]
    assert split_blocks("a\n\n[x]: /u\n")[-1] == Block("\n[x]: /u\n", "", 0)
    assert split_blocks("") == []


def test_fence_opening_lines() -> None:
    opening = fence_opening("```python title=x")
    assert opening is not None
    assert (opening.language, opening.marker, opening.indented) == ("python", "`", False)
    assert fence_opening("~~~~") is not None
    assert fence_opening("``` a`b") is None  # a backtick fence's info string cannot hold a backtick
    assert fence_opening("``") is None
    assert fence_opening("    ```") is None  # indented code, not a fence


def test_fence_closing_lines() -> None:
    opening = fence_opening("````js")
    assert opening is not None
    assert fence_closes(opening, "````")
    assert fence_closes(opening, "   `````  ")
    assert not fence_closes(opening, "```")  # shorter than the opening
    assert not fence_closes(opening, "```` js")  # a closing line has no info string
    assert not fence_closes(opening, "~~~~")
    assert not fence_closes(opening, "    ````")  # indented four: code


def test_fence_content_loses_the_fence_indentation() -> None:
    opening = fence_opening("  ```")
    assert opening is not None and opening.indented
    assert fence_content(opening, "    four") == "  four"
    assert fence_content(opening, " one") == "one"
    plain = fence_opening("```")
    assert plain is not None
    assert fence_content(plain, "\t  kept") == "\t  kept"


def test_a_last_line_of_spaces_is_not_part_of_an_open_fence() -> None:
    opening = fence_opening("```")
    assert opening is not None
    assert fence_keeps_last_line(opening, "x")
    assert not fence_keeps_last_line(opening, "   ")


def test_normalize_turns_cr_into_newlines_and_controls_into_replacement_characters() -> None:
    assert normalize("a\r\nb\rc\x1b[31md\te\x00") == "a\nb\nc\ufffd[31md\te\ufffd"
