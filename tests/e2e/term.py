"""A real pty running `streamchat`, its output read back through a pyte screen with scrollback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pexpect
import pyte

ROOT = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).with_name("streamchat"))
COLS, ROWS = 100, 30
SCRIPTS = Path(__file__).resolve().parent / "scripts"

Cell = tuple[str, str, str, bool, bool, bool, bool]


def script(name: str) -> str:
    """`--engine` value replaying tests/e2e/scripts/NAME."""
    return f"script:{SCRIPTS / name}"


def base_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment isolated in `home`: no API key, no config but the one in `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "STREAMCHAT_"))}
    env.update(STREAMCHAT_HOME=str(home), TERM="xterm-256color", LANG="C.UTF-8", LC_ALL="C.UTF-8",
               COLUMNS=str(COLS), LINES=str(ROWS))  # fmt: skip
    env.pop("NO_COLOR", None)
    env.update(extra)
    return env


def cell(ch: Any) -> Cell:
    """What a test compares of one screen cell: the character and how it looks."""
    return (ch.data, ch.fg, ch.bg, ch.bold, ch.italics, ch.underscore, ch.reverse)


def row_cells(line: Any, columns: int) -> list[Cell]:
    """A pyte line as cells, trailing blanks dropped."""
    cells = [cell(line[x]) for x in range(columns)]
    while cells and cells[-1][0] == " " and cells[-1][2] == "default" and not cells[-1][6]:
        cells.pop()
    return cells


def screen_rows(screen: pyte.HistoryScreen) -> list[list[Cell]]:
    """Scrollback then screen, as rows of cells."""
    rows = [row_cells(line, screen.columns) for line in screen.history.top]
    rows += [row_cells(screen.buffer[y], screen.columns) for y in range(screen.lines)]
    return rows


def rows_text(rows: list[list[Cell]]) -> list[str]:
    """Rows as plain strings."""
    return ["".join(c[0] for c in row).rstrip() for row in rows]


def trim(rows: list[list[Cell]]) -> list[list[Cell]]:
    """Without leading and trailing empty rows."""
    start, end = 0, len(rows)
    while start < end and not rows[start]:
        start += 1
    while end > start and not rows[end - 1]:
        end -= 1
    return rows[start:end]


def one_shot(text: str, width: int = COLS) -> list[list[Cell]]:
    """`render_markdown(text, width)` fed into a fresh pyte screen (as the tty would deliver it)."""
    from streamchat.render import render_markdown

    rendered = render_markdown(text, width)
    screen = pyte.HistoryScreen(width, 400, history=10000)
    pyte.ByteStream(screen).feed(rendered.replace("\r\n", "\n").replace("\n", "\r\n").encode())
    return trim(screen_rows(screen))


class Term:
    """`streamchat ARGS` in a pty of COLSxROWS; `wait(...)` reads output until a condition holds."""

    def __init__(self, args: Sequence[str], env: dict[str, str], cols: int = COLS, rows: int = ROWS) -> None:
        self.screen = pyte.HistoryScreen(cols, rows, history=20000)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        self.child = pexpect.spawn(EXE, list(args), env=env, dimensions=(rows, cols), cwd=str(ROOT))
        # Answer cursor-position and status queries (prompt_toolkit asks) like a real terminal.
        self.screen.write_process_input = self._answer
        self.exitstatus: int | None = None

    def _answer(self, data: str) -> None:
        if self.child.isalive():
            self.child.send(data)

    def pump(self, timeout: float = 0.05) -> bool:
        """Read what is there (up to `timeout`); False once the program has exited."""
        try:
            data = self.child.read_nonblocking(65536, timeout)
        except pexpect.TIMEOUT:
            return True
        except pexpect.EOF:
            return False
        self.raw += data
        self.stream.feed(data)
        return True

    def wait(self, condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
        """Read output until `condition()` holds; fail with the screen after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; screen:\n{self.dump()}")
            if not self.pump() and not condition():
                raise AssertionError(f"program exited while waiting for {what}; screen:\n{self.dump()}")

    def wait_text(self, text: str | re.Pattern[str], timeout: float = 60.0) -> None:
        """Until `text` (or a regex) is somewhere in scrollback+screen."""
        if isinstance(text, re.Pattern):
            self.wait(lambda: bool(text.search(self.text())), timeout, repr(text.pattern))
        else:
            self.wait(lambda: text in self.text(), timeout, repr(text))

    def count(self, text: str) -> int:
        """How often `text` occurs in scrollback+screen."""
        return self.text().count(text)

    def wait_count(self, text: str, n: int, timeout: float = 60.0) -> None:
        """Until `text` occurs at least `n` times."""
        self.wait(lambda: self.count(text) >= n, timeout, f"{n}x {text!r}")

    def wait_prompt(self, n: int = 1, timeout: float = 60.0) -> None:
        """Until the n-th status line at a prompt (the toolbar shows `context`) and an empty prompt."""
        self.wait(lambda: self.at_prompt(), timeout, "the prompt")

    def at_prompt(self) -> bool:
        """The cursor's line is an empty prompt."""
        line = self.lines()[len(self.screen.history.top) + self.screen.cursor.y]
        return line.strip() == "›"

    def lines(self) -> list[str]:
        """Scrollback + screen as text lines."""
        return rows_text(screen_rows(self.screen))

    def text(self) -> str:
        """Scrollback + screen as one string; a full-width row continues on the next (soft wrap)."""
        rows = screen_rows(self.screen)
        parts = []
        for row in rows:
            line = "".join(c[0] for c in row)
            parts.append(line if len(row) >= self.screen.columns else line.rstrip() + "\n")
        return "".join(parts)

    def rows(self) -> list[list[Cell]]:
        """Scrollback + screen as cells."""
        return screen_rows(self.screen)

    def send(self, data: str) -> None:
        """Type keys."""
        self.child.send(data)

    def submit(self, text: str) -> None:
        """Type a line and press Enter."""
        self.child.send(text)
        self.child.send("\r")

    def close(self) -> int | None:
        """End the program (Ctrl-D, then force) and return its exit status."""
        if self.child.isalive():
            deadline = time.monotonic() + 30  # bounds a failure on a loaded machine; times nothing
            while self.child.isalive() and not self.at_prompt() and time.monotonic() < deadline:
                self.pump()
            self.child.send("\x03")  # clear the line, then Ctrl-D on the empty prompt
            self.child.sendeof()
            deadline = time.monotonic() + 30
            while self.child.isalive() and time.monotonic() < deadline and self.pump(0.1):
                pass
        self.child.close(force=True)
        self.exitstatus = self.child.exitstatus
        return self.exitstatus

    def wait_exit(self, timeout: float = 60.0) -> int | None:
        """Until the program exits; its status."""
        deadline = time.monotonic() + timeout
        while self.pump(0.1):
            if time.monotonic() > deadline:
                raise AssertionError(f"program did not exit; screen:\n{self.dump()}")
        self.child.close()
        self.exitstatus = self.child.exitstatus
        return self.exitstatus

    def dump(self) -> str:
        """Scrollback + screen for a failure message (the last 60 lines)."""
        return "\n".join(f"|{line}" for line in self.lines()[-60:])


def run(args: Sequence[str], env: dict[str, str], input: str | None = None,
        timeout: float = 60.0) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """`streamchat ARGS` with pipes (not a terminal)."""
    return subprocess.run([EXE, *args], env=env, input=input, capture_output=True, text=True, timeout=timeout,
                          cwd=str(ROOT))  # fmt: skip
