"""The terminal chat in a real pty: streaming, Ctrl-C, commands, status line, store, window."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from term import SCRIPTS, Term, run, script

Spawn = Callable[..., Term]
SLOW = ["--engine", script("slow.json"), "--script-rate", "60", "--script-chunk", "4"]


@pytest.mark.parametrize("mode", [[], ["--no-markdown"]], ids=["markdown", "raw"])
def test_reply_streams_before_it_is_finished(spawn: Spawn, mode: list[str]) -> None:
    term = spawn(*mode, *SLOW)
    term.wait_prompt()
    term.submit("go slowly")
    term.wait_text("word005")
    # part of the reply is on screen while its end has not arrived yet
    assert "Slow reply begins." in term.text()
    assert "SLOW-END" not in term.text()
    term.wait_text("SLOW-END", timeout=60)
    term.wait_text("turn: in ")
    assert term.close() == 0


def test_ctrl_c_keeps_the_partial_reply_and_the_next_turn_works(spawn: Spawn, home: Path) -> None:
    term = spawn("--no-markdown", *SLOW)
    term.wait_prompt()
    term.submit("go slowly")
    term.wait_text("word010")
    term.send("\x03")
    term.wait_text("interrupted")
    term.wait_prompt()
    text = term.text()
    assert "Slow reply begins. word000" in text and "SLOW-END" not in text
    term.submit("and now?")
    term.wait_text("Second reply: all good.")
    term.wait_prompt()
    assert term.close() == 0
    with sqlite3.connect(home / "streamchat.db") as db:
        rows = db.execute("SELECT role, status, content FROM messages ORDER BY position").fetchall()
    assert [(r[0], r[1]) for r in rows] == [
        ("user", "complete"),
        ("assistant", "interrupted"),
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    partial = json.loads(rows[1][2])[0]["text"]
    assert partial.startswith("Slow reply begins. word000") and "SLOW-END" not in partial


def test_ctrl_c_at_the_prompt_clears_the_line_and_ctrl_d_exits(spawn: Spawn) -> None:
    term = spawn("--no-markdown", "--engine", script("turns.json"))
    term.wait_prompt()
    term.send("half typed")
    term.wait_text("› half typed")
    term.send("\x03")
    term.wait_prompt()
    term.submit("hi")
    term.wait_text("First answer: alpha.")
    term.wait_prompt()
    term.send("\x04")
    assert term.wait_exit() == 0


def test_clear_undo_retry_context(spawn: Spawn) -> None:
    term = spawn("--no-markdown", "--engine", script("turns.json"))
    term.wait_prompt()
    term.submit("one")
    term.wait_text("First answer: alpha.")
    term.wait_prompt()
    term.submit("two")
    term.wait_text("Second answer: beta.")
    term.wait_prompt()

    term.submit("/context")
    term.wait_text("context: 4 of 4 messages")
    term.wait_prompt()

    term.submit("/undo")
    term.wait_text("dropped the last exchange")
    term.wait_prompt()
    term.submit("/context")
    term.wait_text("context: 2 of 2 messages")
    term.wait_prompt()

    term.submit("/retry")  # regenerates the reply to "one"
    term.wait_count("First answer: alpha.", 3)  # reply, /context preview, retried reply
    term.wait_prompt()
    term.submit("/context")
    term.wait_count("context: 2 of 2 messages", 2)
    term.wait_prompt()

    term.submit("/clear")
    term.wait_text("new conversation")
    term.wait_prompt()
    term.submit("/context")
    term.wait_text("context: 0 of 0 messages")
    term.wait_prompt()
    term.submit("fresh start")
    term.wait_count("First answer: alpha.", 4)  # a new conversation starts from the first reply
    term.wait_prompt()
    assert term.close() == 0


def test_pin_system_model_tokens_cost_help_and_unknown(spawn: Spawn) -> None:
    term = spawn("--no-markdown", "--engine", script("turns.json"), "--max-turns", "1")
    term.wait_prompt()
    term.submit("/pin")
    term.wait_text("nothing to pin yet")
    for word in ("one", "two"):
        term.wait_prompt()
        term.submit(word)
        term.wait_text("turn: in ", timeout=60)
        term.wait(lambda w=word: f"› {w}" in term.text())
    term.wait_count("turn: in ", 2)
    term.wait_prompt()
    term.submit("/pin 1")
    term.wait_text("pinned #1: one")
    term.wait_prompt()
    term.submit("/context")
    term.wait_text(re.compile(r"#1 +pinned +user +one"))
    term.wait_prompt()
    term.submit("/system Be brief.")
    term.wait_text("system prompt set")
    term.wait_prompt()
    term.submit("/model other-model")
    term.wait_text("model: other-model")
    term.wait_prompt()
    term.submit("/tokens")
    term.wait_text("session: in ")
    term.wait_prompt()
    term.submit("/cost")
    term.wait_text("session cost: $0.00")
    term.wait_prompt()
    term.submit("/thinking")
    term.wait_text("thinking on")
    term.wait_prompt()
    term.submit("/help")
    term.wait_text("/retry")
    term.wait_prompt()
    term.submit("/frobnicate")
    term.wait_text("unknown command /frobnicate — /help lists the commands")
    term.wait_prompt()
    term.submit("/quit")
    assert term.wait_exit() == 0


def test_status_line_shows_model_context_tokens_and_cost(spawn: Spawn) -> None:
    term = spawn("--no-markdown", "--engine", script("turns.json"), "--max-context-tokens", "2000")
    term.wait(lambda: "streamchat-script · context ?/2.0k" in term.text(), what="the toolbar")
    term.submit("hi")
    term.wait_text(re.compile(r"turn: in \d+ · out \d+ · \$0\.00 │ streamchat-script · context \d+/2\.0k"))
    assert term.close() == 0


def test_error_keeps_the_partial_reply_and_offers_retry(spawn: Spawn) -> None:
    term = spawn("--no-markdown", "--engine", script("error.json"))
    term.wait_prompt()
    term.submit("hi")
    term.wait_text("/retry to try again")
    text = term.text()
    assert "Partial before the failure." in text
    assert "the engine broke" in text and "Traceback" not in text
    term.wait_prompt()
    assert term.close() == 0


def test_tool_call_is_shown_and_confirmed(spawn: Spawn) -> None:
    term = spawn("--no-markdown", "--engine", script("tools.json"), "--tools", str(SCRIPTS / "add_tools.py"),
                 "--thinking")  # fmt: skip
    term.wait_prompt()
    term.submit("add 2 and 3")
    term.wait_text("Let me think about adding numbers.")
    term.wait_text('run tool add {"a": 2, "b": 3}? [y/N]')
    term.submit("y")
    term.wait_text("↳ add: 5")
    term.wait_text("The sum is 5.")
    term.wait_prompt()
    assert term.close() == 0


def test_store_survives_kill_9_mid_stream(spawn: Spawn, env: dict[str, str], home: Path) -> None:
    term = spawn("--no-markdown", *SLOW)
    term.wait_prompt()
    term.submit("go slowly")
    term.wait_text("word030")
    term.child.kill(signal.SIGKILL)
    term.wait_exit()
    with sqlite3.connect(home / "streamchat.db") as db:
        rows = db.execute("SELECT role, content FROM messages ORDER BY position").fetchall()
    assert [r[0] for r in rows] == ["user", "assistant"]
    partial = json.loads(rows[1][1])[0]["text"]
    assert partial.startswith("Slow reply begins. word000") and "SLOW-END" not in partial
    listed = run(["history"], env)
    assert listed.returncode == 0 and "go slowly" in listed.stdout and "2 msg" in listed.stdout


def test_continue_and_conversation_id(spawn: Spawn, env: dict[str, str], home: Path) -> None:
    done = run(["ask", "--engine", script("turns.json"), "first question"], env)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(home / "streamchat.db") as db:
        (conv_id,) = db.execute("SELECT id FROM conversations").fetchone()
    term = spawn("--no-markdown", "--engine", script("turns.json"), "-c")
    term.wait_text("continuing “first question”")
    term.wait_prompt()
    term.submit("second question")
    term.wait_text("Second answer: beta.")
    term.wait_prompt()
    assert term.close() == 0
    done = run(["ask", "--engine", script("turns.json"), "--conversation", conv_id, "third"], env)
    assert done.stdout.strip() == "Third answer: gamma."
    with sqlite3.connect(home / "streamchat.db") as db:
        query = "SELECT conversation_id, COUNT(*) FROM messages GROUP BY conversation_id"
        counts = db.execute(query).fetchall()
    assert counts == [(conv_id, 6)]


def test_input_history_is_kept_across_runs(spawn: Spawn) -> None:
    term = spawn("--no-markdown", "--engine", script("turns.json"))
    term.wait_prompt()
    term.submit("remember this line")
    term.wait_text("First answer")
    term.wait_prompt()
    assert term.close() == 0
    term = spawn("--no-markdown", "--engine", script("turns.json"))
    term.wait_prompt()
    term.send("\x1b[A")  # Up: the previous run's input
    term.wait_text("› remember this line")
    assert term.close() == 0


def test_multiline_input_with_escape_enter(spawn: Spawn, home: Path) -> None:
    term = spawn("--no-markdown", "--engine", script("turns.json"))
    term.wait_prompt()
    term.send("line one")
    term.send("\x1b\r")
    term.send("line two\r")
    term.wait_text("First answer")
    term.wait_prompt()
    term.send("\x1b[200~pasted one\npasted two\x1b[201~")  # bracketed paste: stays one message
    term.wait_text("› pasted one")
    term.send("\r")
    term.wait_text("Second answer")
    term.wait_prompt()
    assert term.close() == 0
    with sqlite3.connect(home / "streamchat.db") as db:
        rows = db.execute("SELECT content FROM messages WHERE role = 'user' ORDER BY position").fetchall()
    assert [json.loads(r[0])[0]["text"] for r in rows] == ["line one\nline two", "pasted one\npasted two"]


def test_resizing_while_a_reply_streams(spawn: Spawn) -> None:
    term = spawn(*SLOW)
    term.wait_prompt()
    term.submit("go slowly")
    term.wait_text("word005")
    term.child.setwinsize(30, 80)
    term.screen.resize(30, 80)
    term.wait_text("SLOW-END", timeout=60)
    term.wait_text("turn: in ")


def test_window_keeps_input_tokens_flat_over_30_turns(env: dict[str, str]) -> None:
    lines = "".join(f"message number {i:02d}\n" for i in range(30))
    done = run(["--engine", script("flat.json"), "--max-turns", "3"], env, input=lines)
    assert done.returncode == 0, done.stderr
    tokens = [int(m) for m in re.findall(r"turn: in (\d+)", done.stdout)]
    assert len(tokens) == 30
    assert tokens[0] < tokens[3]  # the window fills up...
    assert len(set(tokens[5:])) == 1  # ...then stays flat


def test_non_tty_chat_prints_plain_text(env: dict[str, str]) -> None:
    done = run(["--engine", script("rich.md")], env, input="report\n")
    assert done.returncode == 0, done.stderr
    assert (SCRIPTS / "rich.md").read_text().rstrip("\n") in done.stdout
    assert "\x1b" not in done.stdout


def test_history_and_load(spawn: Spawn, home: Path) -> None:
    term = spawn("--no-markdown", "--engine", script("turns.json"))
    term.wait_prompt()
    term.submit("the first chat")
    term.wait_text("First answer: alpha.")
    term.wait_prompt()
    term.submit("/clear")
    term.wait_text("new conversation")
    term.wait_prompt()
    term.submit("the second chat")
    term.wait_count("First answer: alpha.", 2)
    term.wait_prompt()
    with sqlite3.connect(home / "streamchat.db") as db:
        (first,) = db.execute("SELECT id FROM conversations WHERE title = 'the first chat'").fetchone()
    term.submit("/history")
    term.wait_text(re.compile(r"\* \w+ .* 2 msg .* the second chat"))
    term.wait_prompt()
    term.submit(f"/load {first}")
    term.wait_text(f"loaded “the first chat” ({first}, 2 messages)")
    term.wait_prompt()
    term.submit("/load nope")
    term.wait_text("no conversation nope")
    term.wait_prompt()
    term.submit("continue the first")
    term.wait_text("Second answer: beta.")
    term.wait_prompt()
    assert term.close() == 0


def test_live_status_line_under_a_streaming_reply(spawn: Spawn) -> None:
    term = spawn(*SLOW, "--max-context-tokens", "5000")
    term.wait_prompt()
    term.submit("go slowly")
    term.wait_text("word020")
    # under the reply while it streams: model, context / budget, this reply's output so far
    live = r"streaming · streamchat-script · context \d+/5\.0k · reply out ~\d+ · session"
    term.wait_text(re.compile(live))
    term.wait_text("SLOW-END", timeout=60)
    term.wait_prompt()
    assert "streaming ·" not in term.text()  # erased when the reply ended, never left in scrollback
    assert term.close() == 0
