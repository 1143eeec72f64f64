"""TerminalRenderer into a real terminal emulator (pyte): what ends in scrollback and on screen.

The reference is the one-shot render printed into a fresh terminal of the same size; the streamed
reply must leave exactly the same cells (characters and attributes) in scrollback + screen.
"""

from __future__ import annotations

import re

import pytest
from render_screens import Terminal, chunks_of, fixed, one_shot, seeded, stream

from streamchat.render import TerminalRenderer, render_markdown

WIDTH, HEIGHT = 64, 10  # far fewer rows than the documents: scrollback is exercised

CODE = "\n".join(
    [
        "```python",
        "import dataclasses",
        "",
        "@dataclasses.dataclass",
        "class Point:",
        '    """A point.',
        "",
        '    With a docstring over several lines."""',
        "    x: float",
        "    y: float",
        "",
        "    def norm(self) -> float:",
        "        # the Euclidean norm, written out in a line longer than the terminal is wide, to fold",
        "        return (self.x ** 2 + self.y ** 2) ** 0.5",
        *[f"    value_{i} = {i} * 2  # line {i}" for i in range(24)],
        "```",
    ]
)

DOCUMENT = f"""# Release notes

The renderer streams **Markdown** as it arrives, with `inline code`, *emphasis*,
~~strike~~ and [links](https://example.com/docs).

Setext heading
==============

- first item
- second item with a long line that has to wrap because it is wider than the terminal is
  - nested item
  - another nested item

1. loose one

2. loose two

   a second paragraph in item two

3. loose three

| Name | Count | Note |
|------|------:|:----:|
| alpha | 1 | first |
| beta | 22 | second row |
| gamma | 333 | third row, longer than the others |

{CODE}

> A block quote
> over two lines

Paragraph right before a table
| k | v |
|---|---|
| 1 | 2 |

Second setext
---

***

The end, with an unclosed **bold
"""

SMALL_DOCUMENTS = {
    "unclosed-bold": "Some text and **unclosed bold that never ends",
    "open-fence-at-end": 'Intro\n\n```rust\nfn main() {\n    println!("hi");\n',
    "setext-after-paragraph": "Line one\nline two\n---\nAfter\n",
    "table-interrupts-paragraph": "Words\n| a | b |\n|---|---|\n| 1 | 2 |\nmore row\n\ntext",
    "list-then-paragraph": "- a\n\n- b\n\n  b2\n\nNot in the list\n",
    "crlf": "# T\r\n\r\n- a\r\n- b\r\n\r\ntext\r\n",
    "indented-fence": "- item\n\n  ```sh\n  echo hi\n  ```\n\n   ```\n   three spaces\n   ```\n",
}

CHUNKINGS = {
    "1-char": lambda: fixed(1),
    "4-char": lambda: fixed(4),
    "random-a": lambda: seeded(11),
    "random-b": lambda: seeded(12),
}


def assert_same_terminal(got: Terminal, expected: Terminal) -> None:
    assert got.all_text() == expected.all_text()
    assert got.all_cells() == expected.all_cells()  # colours and attributes too


@pytest.mark.parametrize("chunking", CHUNKINGS)
def test_streamed_document_equals_one_shot_render(chunking: str) -> None:
    got = stream(DOCUMENT, WIDTH, HEIGHT, CHUNKINGS[chunking]())
    assert_same_terminal(got, one_shot(DOCUMENT, WIDTH, HEIGHT))


def test_streamed_document_equals_one_shot_render_painting_every_chunk() -> None:
    got = stream(DOCUMENT, WIDTH, HEIGHT, seeded(5), fps=0)  # no frame limit: a frame per chunk
    assert_same_terminal(got, one_shot(DOCUMENT, WIDTH, HEIGHT))


@pytest.mark.parametrize("name", SMALL_DOCUMENTS)
@pytest.mark.parametrize("chunking", ["1-char", "random-a"])
def test_small_documents_equal_one_shot_render(name: str, chunking: str) -> None:
    text = SMALL_DOCUMENTS[name]
    got = stream(text, 40, 4, CHUNKINGS[chunking](), fps=0)
    assert_same_terminal(got, one_shot(text, 40, 4))


def test_scrollback_only_ever_holds_finished_lines_in_order() -> None:
    expected = one_shot(DOCUMENT, WIDTH, HEIGHT).all_text()
    terminal = Terminal(WIDTH, HEIGHT)
    renderer = TerminalRenderer(terminal.write, WIDTH, HEIGHT, max_fps=0)
    for chunk in chunks_of(DOCUMENT, seeded(3)):
        renderer.feed(chunk, 0.0)
        scrollback = terminal.scrollback_text()
        # Never a live line, never a torn or repeated one: a prefix of the final render.
        assert scrollback == expected[: len(scrollback)]
    renderer.finish()
    assert terminal.all_text() == expected


def test_no_line_appears_twice_when_all_lines_are_distinct() -> None:
    text = "\n\n".join(f"Paragraph number {i} says something different." for i in range(40))
    text += "\n\n" + "\n".join(f"- item {i}" for i in range(30))
    terminal = stream(text, WIDTH, 6, fixed(3), step=0.004)
    lines = [line for line in terminal.all_text() if line]
    assert len(lines) == 70
    assert len(set(lines)) == len(lines)


def test_a_tail_taller_than_the_screen_is_clipped_to_its_last_lines() -> None:
    # One list of 40 items stays unfinished (a list can always go on), so it is all live region.
    items = [f"- list item {i:02d}" for i in range(40)]
    terminal = Terminal(WIDTH, 8)
    renderer = TerminalRenderer(terminal.write, WIDTH, 8, max_fps=0)
    for item in items:
        renderer.feed(item + "\n", 0.0)
    assert terminal.scrollback_text() == []  # no live line was pushed into scrollback
    screen = [text for text in (row.rstrip() for row in terminal.screen.display) if text]
    assert screen == [f" •  list item {i:02d}".replace(" •  ", " • ") for i in range(32, 40)]
    renderer.finish()
    assert_same_terminal(terminal, one_shot("\n".join(items) + "\n", WIDTH, 8))


def test_an_open_code_fence_is_committed_line_by_line() -> None:
    opening, lines = "```python\n", [f"x_{i} = {i}\n" for i in range(30)]
    terminal = Terminal(WIDTH, 8)
    renderer = TerminalRenderer(terminal.write, WIDTH, 8, max_fps=0)
    renderer.feed("Intro.\n\n" + opening, 0.0)
    for line in lines:
        renderer.feed(line, 0.0)
    # The fence is still open, yet its lines have scrolled into scrollback, once each, in order.
    committed = [line.strip() for line in terminal.scrollback_text() if line.strip().startswith("x_")]
    assert committed == [f"x_{i} = {i}" for i in range(len(committed))]
    assert len(committed) >= 20
    renderer.feed("```\n", 0.0)
    renderer.finish()
    assert_same_terminal(terminal, one_shot("Intro.\n\n" + opening + "".join(lines) + "```\n", WIDTH, 8))


def test_frames_are_limited_and_each_is_one_write() -> None:
    terminal = Terminal(WIDTH, HEIGHT)
    renderer = TerminalRenderer(terminal.write, WIDTH, HEIGHT, max_fps=30)
    for index in range(100):
        renderer.feed("word ", 1.0 + index * 0.001)  # 100 chunks within 0.1 s
    assert len(terminal.writes) == 3  # at 1.000, 1.034 and 1.068: at least 1/30 s apart
    renderer.tick(1.09)  # changed, but too soon
    assert len(terminal.writes) == 3
    renderer.tick(1.2)
    assert len(terminal.writes) == 4
    renderer.tick(1.5)  # nothing changed: no frame
    assert len(terminal.writes) == 4
    renderer.finish()
    assert len(terminal.writes) == 5


def test_written_lines_never_exceed_the_width() -> None:
    table = "| " + " | ".join(["wide cell"] * 12) + " |\n|" + "---|" * 12 + "\n"
    text = DOCUMENT + "\n" + "x" * 200 + "\n\n" + "漢字" * 50 + "\n\n" + table
    for width in (12, 30, 64):
        terminal = Terminal(width, 5)
        renderer = TerminalRenderer(terminal.write, width, 5, max_fps=0)
        for chunk in chunks_of(text, seeded(2, 1, 40)):
            renderer.feed(chunk, 0.0)
        renderer.finish()
        for line in re.split(r"\r\n|\x1b\[\d*A|\x1b\[J|\r", "".join(terminal.writes)):
            visible = re.sub(r"\x1b\[[0-9;]*m", "", line)
            assert _cells(visible) <= width, (width, visible)


def _cells(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


def test_abort_commits_what_arrived() -> None:
    text = DOCUMENT[: DOCUMENT.index("    def norm")]  # stops inside the code fence
    terminal = Terminal(WIDTH, HEIGHT)
    renderer = TerminalRenderer(terminal.write, WIDTH, HEIGHT)
    for chunk in chunks_of(text, fixed(5)):
        renderer.feed(chunk, 0.0)
    renderer.abort()
    assert_same_terminal(terminal, one_shot(text, WIDTH, HEIGHT))
    with pytest.raises(RuntimeError):
        renderer.feed("more")


def test_text_is_everything_fed_as_fed() -> None:
    renderer = TerminalRenderer(lambda data: None, WIDTH, HEIGHT)
    for chunk in ["a\r", "\nb", "\x1b", "c"]:
        renderer.feed(chunk, 0.0)
    assert renderer.text == "a\r\nb\x1bc"
    renderer.finish()
    assert render_markdown(renderer.text, WIDTH).count("\ufffd") == 1


def test_resize_redraws_the_live_region_at_the_new_size() -> None:
    terminal = Terminal(WIDTH, HEIGHT)
    renderer = TerminalRenderer(terminal.write, WIDTH, HEIGHT, max_fps=0)
    renderer.feed("Intro.\n\n" + "A long paragraph that keeps going " * 4, 0.0)
    writes = len(terminal.writes)
    renderer.resize(30, HEIGHT)
    assert len(terminal.writes) == writes + 1  # redrawn at once
    frame = terminal.writes[-1]
    assert frame.startswith("\r\x1b[")  # erases the old live region first
    for line in frame.split("\r\n")[1:]:
        assert _cells(re.sub(r"\x1b\[[0-9;]*m", "", line)) <= 30
