"""The conversation store: one SQLite file shared by the terminal and the web chat.

WAL mode, so a second process reads while this one writes; every write is a short transaction, so a
crash (even `kill -9`) leaves the file consistent. The schema version lives in `PRAGMA user_version`
and moves up one step at a time through `MIGRATIONS`, each step in one transaction: a step that fails
halfway leaves the file at the version before it, and a file from a newer streamchat is refused.

Full-text search (FTS5, `chat/search.py`) covers conversation titles and message text (text,
thinking, tool input and tool results); every write below keeps the index in step in its own
transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import data_dir
from .events import Status
from .messages import ChatMessage
from .schema import MIGRATIONS, SCHEMA_VERSION, SchemaError
from .search import MATCH_END, MATCH_START, SearchHit, fts_query, index_message, search, unindex_messages

__all__ = ["MATCH_END", "MATCH_START", "SCHEMA_VERSION", "ConversationInfo", "SavedConversation",
           "SchemaError", "SearchHit", "Store", "default_store", "fts_query"]  # fmt: skip

def now() -> str:
    """A UTC timestamp as stored (ISO 8601, milliseconds; sorts as text)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _assignments(fields: dict[str, Any], expressions: dict[str, str] | None = None) -> tuple[str, list[Any]]:
    """`a = ?, b = ?, updated_at = ?` for the fields that are not None, and their values (the caller
    adds the time); column names and `expressions` (column -> SQL using one `?`) come from our code."""
    given = {name: value for name, value in fields.items() if value is not None}
    sql = (expressions or {}).get
    sets = [*(f"{name} = {sql(name, '?')}" for name in given), "updated_at = ?"]
    return ", ".join(sets), list(given.values())


def _settings(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:  # a hand-edited file: the defaults rather than a failure
        return {}
    return value if isinstance(value, dict) else {}


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
    settings: dict[str, Any] = field(default_factory=dict)  # thinking, persona, ... (see Conversation)


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
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL survives a killed process
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    # -- plumbing ------------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (nested calls join the outer one); rolled back on any error."""
        with self._begin("BEGIN IMMEDIATE") as db:
            yield db

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: several SELECTs see the same state of the file."""
        with self._begin("BEGIN DEFERRED") as db:
            yield db

    @contextmanager
    def _begin(self, begin: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._db
                finally:
                    self._depth -= 1
                return
            self._db.execute(begin)
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
        """Bring the file up to SCHEMA_VERSION, one step per transaction; opening a current file writes
        nothing. Another process may be migrating too: the version is read again under the write lock."""
        while (version := self.schema_version) != SCHEMA_VERSION:
            self._check_version(version)
            with self.transaction() as db:
                version = self.schema_version
                if version == SCHEMA_VERSION:
                    return
                self._check_version(version)
                try:
                    MIGRATIONS[version](db)
                except sqlite3.Error as exc:
                    step = f"from schema {version} to {version + 1}"
                    raise SchemaError(f"{self.path}: migrating the store {step} failed, nothing was changed: "
                                      f"{exc}") from exc  # fmt: skip
                db.execute(f"PRAGMA user_version = {version + 1}")

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            known = f"store schema {version}; this one reads up to {SCHEMA_VERSION}"
            raise SchemaError(f"{self.path} was written by a newer streamchat ({known}): upgrade streamchat")
        if version < 0 or version >= len(MIGRATIONS):
            raise SchemaError(f"{self.path}: unknown store schema {version}")

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
                            model: str = "", settings: dict[str, Any] | None = None) -> None:  # fmt: skip
        """Add a conversation row (no-op if it exists)."""
        stamp = now()
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO conversations (id, title, system, model, settings, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, title, system, model, json.dumps(settings or {}, ensure_ascii=False),
                 stamp, stamp),
            )  # fmt: skip

    def update_conversation(self, conversation_id: str, *, title: str | None = None,
                            system: str | None = None, model: str | None = None,
                            settings: dict[str, Any] | None = None) -> None:  # fmt: skip
        """Change a conversation's title, persona, model or settings (None: unchanged); bumps updated_at.

        `settings` is merged into the saved ones (JSON merge patch: a key set to None is removed), so
        the terminal and the web changing different settings of one conversation keep both.
        """
        patch = json.dumps(settings, ensure_ascii=False) if settings is not None else None
        fields = {"title": title, "system": system, "model": model, "settings": patch}
        sets, values = _assignments(fields, {"settings": "json_patch(settings, ?)"})
        with self.transaction() as db:
            db.execute(f"UPDATE conversations SET {sets} WHERE id = ?", (*values, now(), conversation_id))

    def _info(self, row: sqlite3.Row) -> ConversationInfo:
        return ConversationInfo(
            id=row["id"], title=row["title"], system=row["system"], model=row["model"],
            created_at=row["created_at"], updated_at=row["updated_at"], messages=int(row["n"]),
            settings=_settings(row["settings"]),
        )  # fmt: skip

    _SELECT_INFO = (
        "SELECT c.*, (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS n"
        " FROM conversations c"
    )
    _NEWEST_FIRST = "ORDER BY c.updated_at DESC, c.rowid DESC"

    def list_conversations(self, limit: int = 20, offset: int = 0) -> list[ConversationInfo]:
        """The most recently updated conversations first; `offset` skips that many (paging)."""
        with self._lock:
            rows = self._db.execute(
                f"{self._SELECT_INFO} {self._NEWEST_FIRST} LIMIT ? OFFSET ?", (limit, max(0, offset))
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
        with self._reading() as db:
            info = self.get_conversation(conversation_id)
            if info is None:
                raise KeyError(conversation_id)
            rows = db.execute(
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
            self._delete_messages(db, "conversation_id = ?", (conversation_id,))
            return db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,)).rowcount > 0

    # -- search --------------------------------------------------------------------------------------

    def search(self, query: str, limit: int = 20) -> list[SearchHit]:
        """Conversations whose title or messages match `query` (any text: see `fts_query`), newest
        first, each with a snippet of its best-matching message (or of its title)."""
        with self._reading() as db:
            return search(db, query, limit, self._NEWEST_FIRST)

    # -- messages ------------------------------------------------------------------------------------

    def add_message(self, conversation_id: str, position: int, message: ChatMessage) -> int:
        """Insert (or replace) the message at `position`; return its row id."""
        stamp = now()
        with self.transaction() as db:
            self._delete_messages(db, "conversation_id = ? AND position = ?", (conversation_id, position))
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
            message_id = int(cursor.lastrowid or 0)
            index_message(db, message_id, conversation_id, message.content)
            return message_id

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
            row = db.execute("SELECT conversation_id FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                return
            db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (stamp, row[0]))
            if content is not None:
                index_message(db, message_id, row[0], content)

    def message_status(self, message_id: int) -> Status | None:
        """A message's status as saved ("complete", "interrupted", "error"), or None if it is gone."""
        with self._lock:
            row = self._db.execute("SELECT status FROM messages WHERE id = ?", (message_id,)).fetchone()
        return row[0] if row else None

    def truncate(self, conversation_id: str, position: int) -> None:
        """Delete the messages at `position` and after (undo, retry)."""
        with self.transaction() as db:
            self._delete_messages(db, "conversation_id = ? AND position >= ?", (conversation_id, position))
            db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now(), conversation_id))

    @staticmethod
    def _delete_messages(db: sqlite3.Connection, where: str, values: tuple[Any, ...]) -> None:
        """Delete the messages `where` (SQL of ours) selects, and their rows in the search index."""
        ids = [int(r[0]) for r in db.execute(f"SELECT id FROM messages WHERE {where}", values).fetchall()]
        unindex_messages(db, ids)
        db.execute(f"DELETE FROM messages WHERE {where}", values)


def default_store() -> Store:
    """The user's store: `streamchat.config.data_dir() / "streamchat.db"`."""
    return Store(data_dir() / "streamchat.db")
