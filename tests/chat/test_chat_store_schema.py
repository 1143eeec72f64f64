"""Schema versions: a store written by release 0.1.0 (schema 1, built here by hand from that release's
DDL) opens in this one with every conversation intact and searchable; failed and foreign migrations
change nothing."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from chat_harness import script

import streamchat.chat.store as store_module
from streamchat.chat.conversation import ChatMessage, Conversation
from streamchat.chat.store import SCHEMA_VERSION, SchemaError, Store

# The schema release 0.1.0 wrote, copied from that release (do not edit: it is what users' files hold).
RELEASE_0_1_0_SCHEMA = """
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    system TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('complete', 'interrupted', 'error')),
    usage TEXT,
    pinned INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (conversation_id, position)
);
CREATE INDEX conversations_by_update ON conversations(updated_at);
"""

TOOL_ID = "toolu_01A"
CONVERSATIONS: dict[str, dict[str, Any]] = {
    "c-interrupted": {
        "title": "Tell me a long story", "system": "You are a storyteller.", "model": "claude-sonnet-4-5",
        "updated": "2025-01-02T10:00:00.000+00:00",
        "messages": [
            ("user", [{"type": "text", "text": "Tell me a long story"}], "complete", None, 0),
            ("assistant", [{"type": "thinking", "thinking": "A dragon, perhaps", "signature": ""},
                           {"type": "text", "text": "Once upon a time a dragon named Ember "}],
             "interrupted", {"input_tokens": 12, "output_tokens": 9}, 0),
        ],
    },
    "c-tools": {
        "title": "add 2 and 3", "system": "", "model": "claude-haiku-4-5",
        "updated": "2025-01-03T10:00:00.000+00:00",
        "messages": [
            ("user", [{"type": "text", "text": "add 2 and 3"}], "complete", None, 1),
            ("assistant", [{"type": "text", "text": "Let me add."},
                           {"type": "tool_use", "id": TOOL_ID, "name": "add", "input": {"a": 2, "b": 3}}],
             "complete", {"input_tokens": 40, "output_tokens": 20, "cache_read_input_tokens": 5}, 0),
            ("user", [{"type": "tool_result", "tool_use_id": TOOL_ID, "content": "sum is fivefold"}],
             "complete", None, 0),
            ("assistant", [{"type": "text", "text": "The sum is 5."}], "complete",
             {"input_tokens": 70, "output_tokens": 6}, 0),
        ],
    },
    "c-unicode": {
        "title": "Größe des Cafés 東京 🚀", "system": "Antworte auf Deutsch.", "model": "streamchat-script",
        "updated": "2025-01-04T10:00:00.000+00:00",
        "messages": [
            ("user", [{"type": "text", "text": "Wie groß ist das Café in 東京? 🚀"}], "complete", None, 1),
            ("assistant", [{"type": "text", "text": "Ziemlich groß: « naïve » ≠ naive, ½ × π"}], "error",
             {"input_tokens": 3, "output_tokens": 0}, 1),
        ],
    },
}


def write_release_0_1_0_store(path: Path) -> dict[str, list[int]]:
    """A store as release 0.1.0 left it (its DDL, its JSON, WAL); returns message ids per conversation."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("BEGIN IMMEDIATE")
    for statement in RELEASE_0_1_0_SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    ids: dict[str, list[int]] = {}
    for cid, conv in CONVERSATIONS.items():
        created = "2025-01-01T09:00:00.000+00:00"
        db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?)",
                   (cid, conv["title"], conv["system"], conv["model"], created, conv["updated"]))  # fmt: skip
        for position, (role, content, status, usage, pinned) in enumerate(conv["messages"]):
            cursor = db.execute(
                "INSERT INTO messages (conversation_id, position, role, content, status, usage, pinned,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (cid, position, role, json.dumps(content, ensure_ascii=False), status,
                 json.dumps(usage) if usage else None, pinned, created, conv["updated"]),
            )  # fmt: skip
            ids.setdefault(cid, []).append(int(cursor.lastrowid or 0))
    # A message deleted by an undo: AUTOINCREMENT must not hand its id out again.
    db.execute("INSERT INTO messages (conversation_id, position, role, content, status, created_at,"
               " updated_at) VALUES ('c-tools', 9, 'user', '[]', 'complete', 'x', 'x')")  # fmt: skip
    db.execute("DELETE FROM messages WHERE position = 9")
    db.execute("COMMIT")
    db.close()
    return ids


def schema_of(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()


def raw_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def test_a_release_0_1_0_store_opens_intact_and_searchable(tmp_path: Path, harness: Any) -> None:
    path = tmp_path / "old.db"
    ids = write_release_0_1_0_store(path)
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 2 and store.journal_mode == "wal"
        assert [c.id for c in store.list_conversations()] == ["c-unicode", "c-tools", "c-interrupted"]
        for cid, conv in CONVERSATIONS.items():
            saved = store.load(cid)
            info = saved.info
            assert (info.title, info.system, info.model, info.updated_at, info.messages, info.settings) == (
                conv["title"], conv["system"], conv["model"], conv["updated"], len(conv["messages"]), {})
            assert [(m.role, m.content, m.status, m.usage, int(m.pinned), m.id) for m in saved.messages] == [
                (*row, message_id) for row, message_id in zip(conv["messages"], ids[cid], strict=True)]
        # Every conversation is found by its words: text, title, thinking, tool input and tool result.
        queries = ("dragon Ember", "storyteller", "Drag", "fivefold", "sum", "größe CAFE", "東京", "naive",
                   "perhaps")  # fmt: skip
        found = {q: [h.conversation_id for h in store.search(q)] for q in queries}
        assert found == {
            "dragon Ember": ["c-interrupted"], "storyteller": [], "Drag": ["c-interrupted"],
            "fivefold": ["c-tools"], "sum": ["c-tools"], "größe CAFE": ["c-unicode"],
            "東京": ["c-unicode"], "naive": ["c-unicode"], "perhaps": ["c-interrupted"],
        }  # fmt: skip
        # The new schema holds what the old one could not, and ids keep growing past the deleted one.
        system = ChatMessage("system", [{"type": "text", "text": "Be exact."}])
        new_id = store.add_message("c-tools", 4, system)
        assert new_id > max(ids["c-tools"]) + 1
        store.update_conversation("c-tools", settings={"thinking": True})
        assert store.get_conversation("c-tools").settings == {"thinking": True}  # type: ignore[union-attr]
    # The interrupted reply is still interrupted, and the conversation goes on from it.
    h = harness(script("Fine."))
    with Store(path) as store:
        conv = Conversation.resume(h.client, store, "c-interrupted")
        assert conv.messages[-1].status == "interrupted"
        partial = "Once upon a time a dragon named Ember"  # sent without its trailing space
        assert conv.api_messages()[-1]["content"] == [{"type": "text", "text": partial}]


def test_a_second_open_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    write_release_0_1_0_store(path)
    Store(path).close()
    before = schema_of(path)
    watcher = sqlite3.connect(path)
    version = watcher.execute("PRAGMA data_version").fetchone()[0]
    with Store(path) as store:
        assert store.schema_version == 2
    assert watcher.execute("PRAGMA data_version").fetchone()[0] == version  # nobody committed anything
    watcher.close()
    assert schema_of(path) == before


def test_a_migration_failing_halfway_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.db"
    write_release_0_1_0_store(path)
    before = schema_of(path)
    last_step = store_module.MIGRATIONS[-1]

    def fails_at_its_end(db: sqlite3.Connection) -> None:
        last_step(db)  # all of the step's work done...
        db.execute("SELECT * FROM no_such_table")  # ...then a failure

    monkeypatch.setattr(store_module, "MIGRATIONS", (*store_module.MIGRATIONS[:-1], fails_at_its_end))
    with pytest.raises(SchemaError, match="from schema 1 to 2 failed, nothing was changed"):
        Store(path)
    assert raw_version(path) == 1 and schema_of(path) == before  # the ALTERs and triggers were rolled back
    monkeypatch.undo()
    with Store(path) as store:
        assert store.schema_version == 2 and len(store.load("c-tools").messages) == 4


def test_a_newer_schema_is_refused_and_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    home = tmp_path / "home"
    home.mkdir()
    path = home / "streamchat.db"
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 3")
    before = path.read_bytes()
    with pytest.raises(SchemaError, match=r"newer streamchat \(store schema 3; this one reads up to 2\)"):
        Store(path)
    assert path.read_bytes() == before and raw_version(path) == 3
    from streamchat.cli import main

    monkeypatch.setenv("STREAMCHAT_HOME", str(home))
    assert main(["history"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "written by a newer streamchat" in err and "upgrade streamchat" in err


def test_two_processes_opening_an_old_store_at_once_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    write_release_0_1_0_store(path)
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def open_store() -> None:
        start.wait()
        try:
            Store(path).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone() == (8,)
        assert db.execute("SELECT COUNT(*) FROM message_search").fetchone() == (8,)  # indexed once
        assert db.execute("SELECT COUNT(*) FROM title_search").fetchone() == (3,)
