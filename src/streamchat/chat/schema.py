"""The store's schema: every version's DDL and the steps between them.

`MIGRATIONS[n]` takes a file from version n to n + 1; `Store` runs each step in one transaction and
records the version in `PRAGMA user_version`. A step is never edited once released: a change to the
schema is a new step (and `SCHEMA_VERSION` + 1), with a test that opens a file of the version before.

Version 2 indexes message text for full-text search in SQL triggers, so the index follows every write
to the file, whichever process or code path makes it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

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

def _searchable(content: str) -> str:
    """SQL for the indexed text of a message's JSON content (`content` is a column of ours)."""
    blocks = f"json_each(CASE WHEN json_valid({content}) THEN {content} ELSE '[]' END)"
    part = """CASE json_extract(b.value, '$.type')
        WHEN 'text' THEN json_extract(b.value, '$.text')
        WHEN 'thinking' THEN json_extract(b.value, '$.thinking')
        WHEN 'tool_use' THEN json_extract(b.value, '$.input')
        WHEN 'tool_result' THEN CASE json_type(b.value, '$.content')
            WHEN 'text' THEN json_extract(b.value, '$.content')
            WHEN 'array' THEN (SELECT group_concat(json_extract(r.value, '$.text'), char(10))
                               FROM json_each(b.value, '$.content') AS r
                               WHERE json_extract(r.value, '$.type') = 'text')
        END
    END"""
    joined = f"(SELECT group_concat({part}, char(10)) FROM {blocks} AS b)"
    return f"replace(replace(coalesce({joined}, ''), char(2), ''), char(3), '')"


# Version 2: conversation settings, system-role messages, full-text search.
_SCHEMA_V2 = f"""
ALTER TABLE conversations ADD COLUMN settings TEXT NOT NULL DEFAULT '{{}}';
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

CREATE VIRTUAL TABLE message_search USING fts5(
    body, conversation_id UNINDEXED, tokenize = 'unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE title_search USING fts5(
    title, conversation_id UNINDEXED, tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO message_search (rowid, body, conversation_id)
    SELECT id, {_searchable("content")}, conversation_id FROM messages;
INSERT INTO title_search (title, conversation_id) SELECT title, id FROM conversations;

CREATE TRIGGER message_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO message_search (rowid, body, conversation_id)
        VALUES (NEW.id, {_searchable("NEW.content")}, NEW.conversation_id);
END;
CREATE TRIGGER message_search_update AFTER UPDATE OF content ON messages BEGIN
    UPDATE message_search SET body = {_searchable("NEW.content")} WHERE rowid = NEW.id;
END;
CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN
    DELETE FROM message_search WHERE rowid = OLD.id;
END;
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

# MIGRATIONS[n] takes a file from version n to n + 1.
MIGRATIONS: tuple[str, ...] = (_SCHEMA_V1, _SCHEMA_V2)


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
