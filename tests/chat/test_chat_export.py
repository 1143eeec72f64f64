"""Export: a Markdown transcript that reads as one, JSON that reads back, and `streamchat export`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from streamchat.chat.export import FORMAT, export_json, export_markdown, fenced, saved_from_json
from streamchat.chat.messages import ChatMessage
from streamchat.chat.store import Store
from streamchat.cli import main

TOOL_OUTPUT = "line 1\n```\nnot the end of the block\n```"


def fill(store: Store) -> str:
    """A conversation with every kind of turn, through the store's own API."""
    cid = "conv-1"
    store.create_conversation(cid, title="Adding numbers — naïvely", system="You are a careful\ncalculator.",
                              model="claude-sonnet-4-5",
                              settings={"thinking": True, "persona": "calc"})  # fmt: skip
    turns = [
        ChatMessage("system", [{"type": "text", "text": "Answer in English."}]),
        ChatMessage("user", [{"type": "text", "text": "What is 2 + 3? 🧮"}], pinned=True),
        ChatMessage("assistant", [
            {"type": "thinking", "thinking": "Two plus three.\nUse the tool.", "signature": "sig"},
            {"type": "text", "text": "Let me add."},
            {"type": "tool_use", "id": "t1", "name": "add", "input": {"a": 2, "b": 3}},
        ], usage={"input_tokens": 50, "output_tokens": 20}),
        ChatMessage("user", [{"type": "tool_result", "tool_use_id": "t1", "content": TOOL_OUTPUT}]),
        ChatMessage("assistant", [{"type": "text", "text": "It is **5**."}], usage={"input_tokens": 80}),
        ChatMessage("user", [{"type": "text", "text": "And 10 + 20?"}]),
        ChatMessage("assistant", [{"type": "text", "text": "That is 3"}], status="interrupted"),
    ]  # fmt: skip
    for position, message in enumerate(turns):
        store.add_message(cid, position, message)
    return cid


def test_markdown_reads_as_a_transcript(store: Store) -> None:
    saved = store.load(fill(store))
    text = export_markdown(saved)
    assert text.startswith("# Adding numbers — naïvely\n")
    assert "model `claude-sonnet-4-5`" in text and "id `conv-1`" in text and "thinking on" in text
    assert "> **Persona** (calc)\n>\n> You are a careful\n> calculator." in text
    assert "### User · pinned\n\nWhat is 2 + 3? 🧮" in text and "### System\n\nAnswer in English." in text
    assert "> **Thinking**\n>\n> Two plus three.\n> Use the tool." in text and "sig" not in text
    assert '**Tool call:** `add`\n\n```json\n{\n  "a": 2,\n  "b": 3\n}\n```' in text
    assert f"**Tool result:** `add`\n\n````\n{TOOL_OUTPUT}\n````" in text  # a fence longer than the output's
    assert text.rstrip().endswith("That is 3\n\n*(interrupted: the reply stopped here)*")
    # As Markdown: one title, a heading per turn, the tool output in one code block, nothing else fenced.
    tokens = MarkdownIt("commonmark").parse(text)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings == ["Adding numbers — naïvely", "System", "User · pinned", "Assistant", "Assistant",
                        "User", "Assistant"]  # fmt: skip
    fences = [t.content for t in tokens if t.type == "fence"]
    assert fences == ['{\n  "a": 2,\n  "b": 3\n}\n', TOOL_OUTPUT + "\n"]
    assert sum(t.type == "blockquote_open" for t in tokens) == 2  # persona and thinking


def test_json_round_trips(store: Store) -> None:
    saved = store.load(fill(store))
    data = export_json(saved)
    back = saved_from_json(json.loads(json.dumps(data)))
    assert export_json(back) == data and data["format"] == FORMAT and data["version"] == 1
    assert back.info == saved.info
    assert [(m.role, m.content, m.status, m.usage, m.pinned) for m in back.messages] == [
        (m.role, m.content, m.status, m.usage, m.pinned) for m in saved.messages]  # fmt: skip


@pytest.mark.parametrize(("data", "message"), [
    ([], "not a streamchat conversation export"),
    ({"format": "other"}, "not a streamchat conversation export"),
    ({"format": FORMAT, "version": 9}, "unsupported export version 9"),
    ({"format": FORMAT, "version": 1, "messages": [{"role": "bot", "content": [], "status": "complete"}]},
     r"messages\[0\]"),
    ({"format": FORMAT, "version": 1, "messages": [{"role": "user", "content": "hi", "status": "complete"}]},
     r"messages\[0\]"),
])  # fmt: skip
def test_bad_json_is_a_clear_error(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        saved_from_json(data)


def test_fences_outlast_the_backticks_inside() -> None:
    assert fenced("plain") == "```\nplain\n```"
    assert fenced("a ```` b", "py") == "`````py\na ```` b\n`````"


def test_the_export_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setenv("STREAMCHAT_HOME", str(tmp_path))
    with Store(tmp_path / "streamchat.db") as store:
        cid = fill(store)
        saved = store.load(cid)
    assert main(["export", cid]) == 0
    assert capsys.readouterr().out == export_markdown(saved)
    assert main(["export", cid, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == export_json(saved)
    assert main(["export", cid, "-o", str(tmp_path / "c.json")]) == 0  # the name picks the format
    assert json.loads((tmp_path / "c.json").read_text(encoding="utf-8")) == export_json(saved)
    assert main(["export", cid, "-o", str(tmp_path / "c.md")]) == 0
    assert (tmp_path / "c.md").read_text(encoding="utf-8") == export_markdown(saved)
    assert capsys.readouterr().out == ""
    assert main(["export", "nope"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == (
        "streamchat: no saved conversation 'nope' (`streamchat history` lists them)\n")  # fmt: skip
    assert main(["export", cid, "-o", str(tmp_path / "missing" / "c.md")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("streamchat: cannot write ") and err.count("\n") == 1
