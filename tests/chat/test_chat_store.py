"""The SQLite store: WAL, concurrent readers, persistence of every history change, kill -9 durability."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

from chat_harness import script

from streamchat.chat.conversation import Conversation, ConversationOptions
from streamchat.chat.store import SCHEMA_VERSION, Store, default_store


def test_schema_wal_and_reader_during_write_transaction(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    writer = Store(path)
    reader = Store(path, timeout=0.1)  # a blocked read would fail fast instead of waiting
    assert writer.journal_mode == "wal" and writer.schema_version == SCHEMA_VERSION
    writer.create_conversation("a", title="committed")
    with writer.transaction():
        writer.create_conversation("b", title="pending")
        seen = [c.id for c in reader.list_conversations()]  # does not wait for the writer
        assert seen == ["a"]
    assert {c.id for c in reader.list_conversations()} == {"a", "b"}
    writer.close()
    reader.close()


def test_a_second_writer_waits_for_the_first(tmp_path: Path) -> None:
    first, second = Store(tmp_path / "s.db"), Store(tmp_path / "s.db")
    done = threading.Event()

    def write() -> None:
        second.create_conversation("late")
        done.set()

    with first.transaction():
        first.create_conversation("early")
        thread = threading.Thread(target=write)
        thread.start()
        assert not done.wait(0.2)  # blocked by busy_timeout, not failed
    thread.join(5)
    assert done.is_set() and {c.id for c in first.list_conversations()} == {"early", "late"}


def test_failed_transaction_rolls_back(store: Store) -> None:
    try:
        with store.transaction():
            store.create_conversation("x")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert store.get_conversation("x") is None


def test_resume_undo_retry_pin_clear_are_persisted(harness: Any, store: Store) -> None:
    h = harness(script("One.", "Two.", "Three."))
    conv = h.conversation(store, system="Be brief.", local=True)
    for text in ("  first   question\n", "second", "third"):
        list(conv.send(text))
    assert conv.title == "first question"
    back = Conversation.resume(h.client, store, None)
    assert (back.id, back.title, back.options.system, back.options.model) == (
        conv.id, "first question", "Be brief.", "streamchat-script")  # fmt: skip
    assert [(m.role, m.content, m.status) for m in back.messages] == [
        (m.role, m.content, m.status) for m in conv.messages
    ]
    assert conv.undo()
    assert len(store.load(conv.id).messages) == 4
    h.engine.replies = ("Retried.",)  # type: ignore[assignment]
    from streamchat.engines.script import parse_script

    h.engine.replies = parse_script("Retried.")
    list(conv.retry())
    saved = store.load(conv.id).messages
    assert len(saved) == 4 and saved[-1].content == [{"type": "text", "text": "Retried."}]
    conv.pin(0)
    conv.set_model("other-model")
    back = Conversation.resume(h.client, store, conv.id)
    assert back.messages[0].pinned and back.options.model == "other-model"
    old = conv.id
    conv.clear()
    assert conv.id != old and conv.messages == [] and store.get_conversation(conv.id) is None
    conv.set_model("streamchat-script")
    list(conv.send("new topic"))
    assert store.last_conversation_id() == conv.id
    assert [c.id for c in store.list_conversations(10)] == [conv.id, old]
    assert store.list_conversations(10)[1].messages == 4
    overridden = Conversation.resume(h.client, store, old, ConversationOptions(model="m2"))
    assert overridden.options.model == "m2" and overridden.options.system == "Be brief."
    assert store.delete_conversation(old) and store.get_conversation(old) is None
    assert not store.delete_conversation(old)


def test_undo_empty_and_default_store(tmp_path: Path, monkeypatch: Any, harness: Any) -> None:
    monkeypatch.setenv("STREAMCHAT_HOME", str(tmp_path / "home"))
    with default_store() as s:
        assert s.path == tmp_path / "home" / "streamchat.db" and s.last_conversation_id() is None
        conv = harness("x").conversation(s)
        assert not conv.undo()
        try:
            Conversation.resume(conv.client, s, None)
        except LookupError:
            pass
        else:
            raise AssertionError("resume of an empty store must fail")


CHILD = textwrap.dedent(
    """
    import sys
    import anthropic
    from streamchat.chat.conversation import Conversation, ConversationOptions
    from streamchat.chat.events import Delta
    from streamchat.chat.store import Store
    from streamchat.engines.script import ScriptEngine, parse_script
    from streamchat.server import ServerThread, create_app

    path, text, rate = sys.argv[1], sys.argv[2], float(sys.argv[3])
    server = ServerThread(create_app(ScriptEngine(parse_script(text), chunk=4, rate=rate)))
    client = anthropic.Anthropic(base_url=server.start(), api_key="test", max_retries=0)
    conv = Conversation(client, ConversationOptions(model="streamchat-script", local=True), Store(path))
    count = 0
    for event in conv.send("tell me everything"):
        if isinstance(event, Delta):
            count += 1
            print(count, flush=True)
    """
)


def test_kill_9_loses_at_most_half_a_second(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    text = "one two six ten " * 100
    rate = 20.0  # deltas per second, 4 characters each
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    proc = subprocess.Popen([sys.executable, str(child), str(path), text, str(rate)], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    counts: list[int] = []
    reader = threading.Thread(target=lambda: counts.extend(int(line) for line in proc.stdout or ()))
    reader.start()
    try:
        deadline = time.monotonic() + 20
        saved = ""
        while len(saved) < 60:  # poll the store until the partial reply has content
            assert time.monotonic() < deadline and proc.poll() is None, (
                "the child never saved a partial reply"
            )
            time.sleep(0.02)
            if not path.exists():
                continue
            try:
                with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
                    row = db.execute("SELECT content FROM messages WHERE role = 'assistant'").fetchone()
            except sqlite3.OperationalError:  # the schema is being created
                continue
            saved = row[0] if row else ""
        # Then kill at a moment unrelated to the saves: a few deltas later, as the child reports them.
        target = max(counts, default=0) + 7
        while max(counts, default=0) < target:
            assert time.monotonic() < deadline
            time.sleep(0.005)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        reader.join()
    received = max(counts)
    with Store(path) as store:
        conversation_id = store.last_conversation_id()
        assert conversation_id is not None
        loaded = store.load(conversation_id)
    assert loaded.info.title == "tell me everything"
    assert [m.role for m in loaded.messages] == ["user", "assistant"]
    partial = loaded.messages[1]
    assert partial.status == "interrupted"  # never flipped to complete
    stored = "".join(b["text"] for b in partial.content if b["type"] == "text")
    assert text.startswith(stored) and stored
    assert len(stored) // 4 >= received - rate * 0.5, (len(stored) // 4, received)
