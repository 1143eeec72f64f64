"""The store's schema: every version's DDL and the steps between them.

`MIGRATIONS[n]` takes a file from version n to n + 1; `Store` runs each step in one transaction and
records the version in `PRAGMA user_version`. A step is never edited once released: a change to the
schema is a new step (and `SCHEMA_VERSION` + 1), with a test that opens a file of the version before.

Version 2 adds conversation settings, system-role messages and the full-text index (chat/search.py),
built here for the messages a version 1 file already holds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator

from .search import index_all_messages

SCHEMA_VERSION = 2

# The schema release 0.1.0 wrote (version 1).
_SCHEMA_V1 = """
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

# Version 2: conversation settings, system-role messages, full-text search.
_SCHEMA_V2 = """
ALTER TABLE conversations ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE messages RENAME TO messages_v1;
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('complete', 'interrupted', 'error')),
    usage TEXT,
    pinned INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (conversation_id, position)
);
INSERT INTO messages (id, conversation_id, position, role, content, status, usage, pinned, created_at,
                      updated_at)
    SELECT id, conversation_id, position, role, content, status, usage, pinned, created_at, updated_at
    FROM messages_v1;
-- AUTOINCREMENT's high-water mark moves with the rows, so message ids are never reused.
DELETE FROM sqlite_sequence WHERE name = 'messages';
UPDATE sqlite_sequence SET name = 'messages' WHERE name = 'messages_v1';
DROP TABLE messages_v1;

-- Message text: rows kept by the Store (see chat/search.py); titles: kept by the triggers below.
CREATE VIRTUAL TABLE message_search USING fts5(
    body, conversation_id UNINDEXED, tokenize = 'unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE title_search USING fts5(
    title, conversation_id UNINDEXED, tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO title_search (title, conversation_id) SELECT title, id FROM conversations;
CREATE TRIGGER title_search_insert AFTER INSERT ON conversations BEGIN
    INSERT INTO title_search (title, conversation_id) VALUES (NEW.title, NEW.id);
END;
CREATE TRIGGER title_search_update AFTER UPDATE OF title ON conversations BEGIN
    UPDATE title_search SET title = NEW.title WHERE conversation_id = OLD.id;
END;
CREATE TRIGGER title_search_delete AFTER DELETE ON conversations BEGIN
    DELETE FROM title_search WHERE conversation_id = OLD.id;
END;
"""

Migration = Callable[[sqlite3.Connection], None]


def run_script(db: sqlite3.Connection, script: str) -> None:
    """Execute every statement of an SQL script (inside the caller's transaction)."""
    for statement in sql_statements(script):
        db.execute(statement)


def _to_v1(db: sqlite3.Connection) -> None:
    run_script(db, _SCHEMA_V1)


def _to_v2(db: sqlite3.Connection) -> None:
    run_script(db, _SCHEMA_V2)
    index_all_messages(db)


# MIGRATIONS[n] takes a file from version n to n + 1.
MIGRATIONS: tuple[Migration, ...] = (_to_v1, _to_v2)


class SchemaError(RuntimeError):
    """The file's schema is newer than this streamchat knows, or a migration failed."""


def sql_statements(script: str) -> Iterator[str]:
    """The complete statements of an SQL script, in order (trigger bodies hold `;` of their own)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    code = [line for line in buffer.splitlines() if line.strip() and not line.strip().startswith("--")]
    if code:
        raise ValueError(f"incomplete SQL statement: {buffer.strip()[:60]!r}")
