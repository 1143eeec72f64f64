"""The conversation store: one SQLite file shared by the terminal and the web chat.

WAL mode, so a second process reads while this one writes; every write is a transaction, so a crash
(even `kill -9`) leaves the file consistent. Schema versions live in `PRAGMA user_version`.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import data_dir
from .conversation import ChatMessage
from .events import Status

SCHEMA_VERSION = 1

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

def now() -> str:
    """A UTC timestamp as stored (ISO 8601, milliseconds; sorts as text)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _assignments(fields: dict[str, Any]) -> tuple[str, list[Any]]:
    """`a = ?, b = ?, updated_at = ?` for the fields that are not None, and their values (the caller
    adds the time); column names come from our code, never from input."""
    given = {name: value for name, value in fields.items() if value is not None}
    return ", ".join([*(f"{name} = ?" for name in given), "updated_at = ?"]), list(given.values())


@dataclass(frozen=True)
class ConversationInfo:
    """One row of `conversations`, with its message count."""

    id: str
    title: str
    system: str
    model: str
    created_at: str
    updated_at: str
    messages: int = 0


@dataclass(frozen=True)
class SavedConversation:
    """A conversation and its messages, as loaded."""

    info: ConversationInfo
    messages: list[ChatMessage]


class Store:
    """The SQLite store. Thread-safe (one connection behind a lock); open one per process."""

    def __init__(self, path: str | Path, *, timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE), never implicit.
        self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._depth = 0
        self._db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL survives a killed process
        self._db.execute("PRAGMA foreign_keys = ON")
        self._migrate()

    # -- plumbing ------------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (nested calls join the outer one); rolled back on any error."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._db
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._depth = 0

    def _migrate(self) -> None:
        with self.transaction() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path} was written by a newer streamchat (schema {version})")
            if version < 1:
                for statement in _SCHEMA_V1.split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @property
    def journal_mode(self) -> str:
        """The journal mode in effect ("wal")."""
        with self._lock:
            return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    @property
    def schema_version(self) -> int:
        """`PRAGMA user_version` of the file."""
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- conversations -------------------------------------------------------------------------------

    def create_conversation(self, conversation_id: str, *, title: str = "", system: str = "",
                            model: str = "") -> None:  # fmt: skip
        """Add a conversation row (no-op if it exists)."""
        stamp = now()
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO conversations (id, title, system, model, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (conversation_id, title, system, model, stamp, stamp),
            )

    def update_conversation(self, conversation_id: str, *, title: str | None = None,
                            system: str | None = None, model: str | None = None) -> None:  # fmt: skip
        """Change a conversation's title, persona or model (None: unchanged); bumps updated_at."""
        sets, values = _assignments({"title": title, "system": system, "model": model})
        with self.transaction() as db:
            db.execute(f"UPDATE conversations SET {sets} WHERE id = ?", (*values, now(), conversation_id))

    def _info(self, row: sqlite3.Row) -> ConversationInfo:
        return ConversationInfo(
            id=row["id"], title=row["title"], system=row["system"], model=row["model"],
            created_at=row["created_at"], updated_at=row["updated_at"], messages=int(row["n"]),
        )  # fmt: skip

    _SELECT_INFO = (
        "SELECT c.*, (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS n"
        " FROM conversations c"
    )

    def list_conversations(self, limit: int = 20) -> list[ConversationInfo]:
        """The most recently updated conversations first."""
        with self._lock:
            rows = self._db.execute(
                f"{self._SELECT_INFO} ORDER BY c.updated_at DESC, c.rowid DESC LIMIT ?", (limit,)
            ).fetchall()
        return [self._info(r) for r in rows]

    def get_conversation(self, conversation_id: str) -> ConversationInfo | None:
        """One conversation's row, or None."""
        with self._lock:
            row = self._db.execute(f"{self._SELECT_INFO} WHERE c.id = ?", (conversation_id,)).fetchone()
        return self._info(row) if row else None

    def last_conversation_id(self) -> str | None:
        """The most recently updated conversation, or None if the store is empty."""
        found = self.list_conversations(1)
        return found[0].id if found else None

    def load(self, conversation_id: str) -> SavedConversation:
        """A conversation with its messages in order; KeyError if there is none with that id."""
        with self._lock:
            info = self.get_conversation(conversation_id)
            if info is None:
                raise KeyError(conversation_id)
            rows = self._db.execute(
                "SELECT * FROM messages WHERE conversation_id = ? ORDER BY position", (conversation_id,)
            ).fetchall()
        messages = [
            ChatMessage(
                role=row["role"],
                content=json.loads(row["content"]),
                status=row["status"],
                usage=json.loads(row["usage"]) if row["usage"] else None,
                pinned=bool(row["pinned"]),
                id=int(row["id"]),
            )
            for row in rows
        ]
        return SavedConversation(info, messages)

    def delete_conversation(self, conversation_id: str) -> bool:
        """Delete a conversation and its messages; False if it did not exist."""
        with self.transaction() as db:
            db.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))
            return db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,)).rowcount > 0

    # -- messages ------------------------------------------------------------------------------------

    def add_message(self, conversation_id: str, position: int, message: ChatMessage) -> int:
        """Insert (or replace) the message at `position`; return its row id."""
        stamp = now()
        with self.transaction() as db:
            db.execute(
                "DELETE FROM messages WHERE conversation_id = ? AND position = ?", (conversation_id, position)
            )
            cursor = db.execute(
                "INSERT INTO messages (conversation_id, position, role, content, status, usage, pinned,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation_id, position, message.role, json.dumps(message.content, ensure_ascii=False),
                    message.status, json.dumps(message.usage) if message.usage else None, int(message.pinned),
                    stamp, stamp,
                ),
            )  # fmt: skip
            db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (stamp, conversation_id))
            return int(cursor.lastrowid or 0)

    def update_message(self, message_id: int, *, content: list[dict[str, Any]] | None = None,
                       status: Status | None = None, usage: dict[str, int] | None = None,
                       pinned: bool | None = None) -> None:  # fmt: skip
        """Change a message's content, status, usage or pin (None: unchanged)."""
        fields: dict[str, Any] = {
            "content": json.dumps(content, ensure_ascii=False) if content is not None else None,
            "status": status,
            "usage": json.dumps(usage) if usage is not None else None,
            "pinned": int(pinned) if pinned is not None else None,
        }
        sets, values = _assignments(fields)
        stamp = now()
        with self.transaction() as db:
            db.execute(f"UPDATE messages SET {sets} WHERE id = ?", (*values, stamp, message_id))
            db.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = "
                "(SELECT conversation_id FROM messages WHERE id = ?)",
                (stamp, message_id),
            )

    def truncate(self, conversation_id: str, position: int) -> None:
        """Delete the messages at `position` and after (undo, retry)."""
        with self.transaction() as db:
            db.execute("DELETE FROM messages WHERE conversation_id = ? AND position >= ?",
                       (conversation_id, position))  # fmt: skip
            db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now(), conversation_id))


def default_store() -> Store:
    """The user's store: `streamchat.config.data_dir() / "streamchat.db"`."""
    return Store(data_dir() / "streamchat.db")
