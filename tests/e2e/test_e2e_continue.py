"""/continue in a real pty: Ctrl-C mid-reply, then the reply goes on in the same message."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from term import SCRIPTS, Term, script

Spawn = Callable[..., Term]
FULL = json.loads((SCRIPTS / "paragraphs.json").read_text())["replies"][0]
PARAGRAPHS = ["--engine", script("paragraphs.json"), "--script-rate", "120", "--script-chunk", "4"]


@pytest.mark.parametrize("mode", [[], ["--no-markdown"]], ids=["markdown", "raw"])
def test_ctrl_c_then_continue_shows_and_saves_the_whole_reply_once(spawn: Spawn, home: Path,
                                                                   mode: list[str]) -> None:  # fmt: skip
    term = spawn(*mode, *PARAGRAPHS)
    term.wait_prompt()
    term.submit("/help")
    term.wait_text("/continue")
    term.wait_prompt()
    term.submit("/continue")
    term.wait_text("nothing to continue: the last message is not a reply")
    term.wait_prompt()
    term.submit("write paragraphs")
    term.wait_text("Paragraph 3 begins")  # a long paragraph: Ctrl-C lands inside it
    term.send("\x03")
    term.wait_text("/continue goes on")
    term.wait_prompt()
    assert "mark2." in term.text() and "mark3." not in term.text()
    term.submit("/continue")
    term.wait_text("PARAS-END", timeout=60)
    term.wait_text("turn: in ")
    term.wait_prompt()
    text = term.text()
    # Finished paragraphs stay on screen once; the one that was cut is drawn again whole with the rest.
    for n in range(1, 6):
        assert text.count(f"Paragraph {n} begins") == (2 if n == 3 else 1), n
        assert text.count(f"mark{n}.") == 1, n
    assert text.count("PARAS-END") == 1
    assert term.close() == 0
    with sqlite3.connect(home / "streamchat.db") as db:
        rows = db.execute("SELECT role, status, content FROM messages ORDER BY position").fetchall()
    assert [(role, status) for role, status, _ in rows] == [("user", "complete"), ("assistant", "complete")]
    assert [b["text"] for b in json.loads(rows[1][2]) if b["type"] == "text"] == [FULL]
