"""Full-text search over the store (SQLite FTS5): what is indexed, how it keeps up, how a query reads.

Message text (text, thinking, tool input, tool results) is indexed in chunks of about `CHUNK`
characters cut between words, one FTS5 row each, whose rowid is the message id * 2**16 + the chunk's
number. A reply saved as it streams only grows at its end, so a save re-indexes its last chunk or
two however long the reply is (one row per message would be tokenized again, twice, on every save).
The Store calls `index_message` / `unindex_messages` in the transaction of each of its writes; titles
are indexed by SQL triggers (schema v2). The words of a query must all be in one chunk of one
message, or in the title.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

CHUNK = 2000  # characters of indexed text per FTS row, at least (cut at the next non-word character)
_ROWS = 1 << 16  # rowids reserved per message: message id * _ROWS + chunk number
# Snippet markers around matched words: control characters never kept in indexed text, so a view can
# escape the snippet and then turn them into highlighting (see `SearchHit.parts`).
MATCH_START, MATCH_END = "\x02", "\x03"
_WORD = re.compile(r"[^\W_]")  # a letter or digit: what the tokenizer keeps
_SEPARATOR = re.compile(r"[\W_]")  # where a chunk may end without cutting a word


@dataclass(frozen=True)
class SearchHit:
    """A conversation that matches a search: its best-matching message (or its title) as a snippet.

    Matched words are wrapped in `MATCH_START` / `MATCH_END`; `parts()` splits them out.
    """

    conversation_id: str
    title: str
    snippet: str
    updated_at: str
    message_id: int | None = None  # the message the snippet comes from (None: the title matched)

    def parts(self) -> list[tuple[str, bool]]:
        """The snippet as (text, matched) pieces, in order."""
        pieces: list[tuple[str, bool]] = []
        for i, chunk in enumerate(self.snippet.split(MATCH_START)):
            inside, _, after = chunk.partition(MATCH_END) if i else ("", "", chunk)
            pieces.extend(p for p in ((inside, True), (after, False)) if p[0])
        return pieces


def fts_query(text: str) -> str:
    """An FTS5 query from any user text: each word a quoted term, the last one a prefix ("" if no word).

    Quotes, `*`, `-`, `NEAR`, `AND`, parentheses are only characters here, never query syntax.
    """
    terms = [chunk for chunk in text.split() if _WORD.search(chunk)]
    quoted = ['"' + term.replace('"', '""') + '"' for term in terms]
    if quoted:
        quoted[-1] += "*"
    return " ".join(quoted)


def searchable_text(content: list[dict[str, Any]]) -> str:
    """What is indexed of a message: its text, thinking, tool input and tool results, in order."""
    parts: list[str] = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            parts.append(str(block.get("text", "")))
        elif kind == "thinking":
            parts.append(str(block.get("thinking", "")))
        elif kind == "tool_use":
            parts.append(json.dumps(block.get("input") or {}, ensure_ascii=False))
        elif kind == "tool_result":
            result = block.get("content")
            if isinstance(result, list):
                texts = [b.get("text", "") for b in result if isinstance(b, dict) and b.get("type") == "text"]
                parts.extend(str(t) for t in texts)
            elif result is not None:
                parts.append(str(result))
    return "\n".join(parts).replace(MATCH_START, "").replace(MATCH_END, "")


def chunks(text: str) -> list[str]:
    """`text` cut into pieces of at least CHUNK characters at non-word characters. A cut depends only
    on the text before the first separator after it, so text that grows at its end keeps its cuts."""
    pieces: list[str] = []
    start = 0
    while len(pieces) < _ROWS - 1:
        cut = _SEPARATOR.search(text, start + CHUNK)
        if cut is None:
            break
        pieces.append(text[start : cut.start()])
        start = cut.start()
    pieces.append(text[start:])
    return pieces if text else []


def index_message(db: sqlite3.Connection, message_id: int, conversation_id: str,
                  content: list[dict[str, Any]]) -> None:  # fmt: skip
    """Bring a message's rows in the index in step with its content: only changed chunks are written."""
    base = message_id * _ROWS
    old = dict(db.execute("SELECT rowid, body FROM message_search WHERE rowid >= ? AND rowid < ?",
                          (base, base + _ROWS)).fetchall())  # fmt: skip
    for number, piece in enumerate(chunks(searchable_text(content))):
        rowid = base + number
        if rowid in old and old.pop(rowid) == piece:
            continue
        db.execute("DELETE FROM message_search WHERE rowid = ?", (rowid,))
        db.execute("INSERT INTO message_search (rowid, body, conversation_id) VALUES (?, ?, ?)",
                   (rowid, piece, conversation_id))  # fmt: skip
    for rowid in old:  # the message got shorter
        db.execute("DELETE FROM message_search WHERE rowid = ?", (rowid,))


def unindex_messages(db: sqlite3.Connection, message_ids: Iterable[int]) -> None:
    """Remove messages (about to be deleted) from the index."""
    for message_id in message_ids:
        base = message_id * _ROWS
        db.execute("DELETE FROM message_search WHERE rowid >= ? AND rowid < ?", (base, base + _ROWS))


def index_all_messages(db: sqlite3.Connection) -> None:
    """Index every message of the file (the migration that creates the index)."""
    for message_id, conversation_id, content in db.execute(
        "SELECT id, conversation_id, content FROM messages"
    ).fetchall():
        try:
            blocks = json.loads(content)
        except ValueError:  # a hand-edited row: searchable by nothing rather than a failed migration
            blocks = []
        index_message(db, int(message_id), str(conversation_id), blocks if isinstance(blocks, list) else [])


_SNIPPETS = (
    "SELECT rowid, snippet(message_search, 0, ?, ?, '…', 16) FROM message_search"
    " WHERE message_search MATCH ? AND conversation_id = ? ORDER BY rank LIMIT 1",
    "SELECT NULL, highlight(title_search, 0, ?, ?) FROM title_search"
    " WHERE title_search MATCH ? AND conversation_id = ? LIMIT 1",
)


def search(db: sqlite3.Connection, query: str, limit: int, order: str) -> list[SearchHit]:
    """Conversations (`order`: an ORDER BY over `conversations c`) whose title or messages match
    `query`, each with a snippet of its best-matching message chunk, else of its title."""
    match = fts_query(query)
    if not match:
        return []
    rows = db.execute(
        "SELECT c.id, c.title, c.updated_at FROM conversations c"
        " WHERE c.id IN (SELECT conversation_id FROM message_search WHERE message_search MATCH ?)"
        " OR c.id IN (SELECT conversation_id FROM title_search WHERE title_search MATCH ?)"
        f" {order} LIMIT ?",
        (match, match, limit),
    ).fetchall()
    hits = []
    for cid, title, updated_at in rows:
        found = (db.execute(sql, (MATCH_START, MATCH_END, match, cid)).fetchone() for sql in _SNIPPETS)
        rowid, snippet = next((f for f in found if f is not None), (None, title))
        message_id = None if rowid is None else int(rowid) // _ROWS
        hits.append(SearchHit(cid, title, " ".join(str(snippet).split()), updated_at, message_id))
    return hits
