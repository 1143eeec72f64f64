"""Full-text search: every write path keeps the index in step, and any text is a valid query."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from streamchat.chat.conversation import ChatMessage
from streamchat.chat.store import MATCH_END, MATCH_START, SearchHit, Store, fts_query
from streamchat.engines.script import parse_script


def text(words: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": words}]


def found(store: Store, query: str) -> list[str]:
    return [hit.conversation_id for hit in store.search(query)]


def test_every_write_path_keeps_the_index_in_step(store: Store) -> None:
    store.create_conversation("a", title="Sourdough starter")
    first = store.add_message("a", 0, ChatMessage("user", text("how do I feed my levain")))
    assert found(store, "levain") == ["a"] and found(store, "sourdough") == ["a"]
    store.update_message(first, content=text("how do I feed my poolish"))  # an edited message
    assert found(store, "levain") == [] and found(store, "poolish") == ["a"]
    store.update_message(first, pinned=True)  # not a content change: still indexed
    assert found(store, "poolish") == ["a"]
    store.add_message("a", 0, ChatMessage("user", text("replaced at position zero")))  # add_message replaces
    assert found(store, "poolish") == [] and found(store, "replaced") == ["a"]
    store.add_message("a", 1, ChatMessage("assistant", text("flour and water")))
    store.truncate("a", 1)
    assert found(store, "flour") == [] and found(store, "replaced") == ["a"]
    store.update_conversation("a", title="Baking bread")
    assert found(store, "sourdough") == [] and found(store, "baking") == ["a"]
    store.update_conversation("a", system="You bake.")  # a title-less update leaves the title indexed
    assert found(store, "baking") == ["a"]
    assert store.delete_conversation("a")
    assert found(store, "replaced") == [] and found(store, "baking") == []
    with sqlite3.connect(store.path) as db:  # nothing left behind in the index
        assert db.execute("SELECT COUNT(*) FROM message_search").fetchone() == (0,)
        assert db.execute("SELECT COUNT(*) FROM title_search").fetchone() == (0,)


def test_a_streaming_reply_is_searchable_as_it_is_saved(harness: Any, store: Store) -> None:
    h = harness("The quokka smiles.")
    conv = h.conversation(store, local=True)
    list(conv.send("tell me about Rottnest"))
    assert found(store, "quokka") == [conv.id] and found(store, "rottnest") == [conv.id]
    h.engine.replies = parse_script("Marsupials everywhere.")
    list(conv.retry())  # the regenerated reply replaces the old one in the index too
    assert found(store, "quokka") == [] and found(store, "marsupials") == [conv.id]
    conv.undo()
    assert found(store, "marsupials") == [] and found(store, "rottnest") == [conv.id]  # the title stays


@pytest.mark.parametrize("query", [
    '"', '""', "*", "-", "-foo", "foo -bar", "NEAR(a b)", "NEAR", "AND", "OR", "NOT x", "a AND", "(", ")",
    "((a)", "a:b", "title:x", "^a", "a'b", "\\", "{x}", "[x]", "a + b", "💥", "_", "__init__", "", "   ",
    "x" * 2000, "\x00", "\x02", "col*umn", '"unbalanced', "a\nb\tc",
])  # fmt: skip
def test_any_user_text_is_a_valid_query(store: Store, query: str) -> None:
    store.create_conversation("a", title="init and NEAR")
    store.add_message("a", 0, ChatMessage("user", text('foo bar __init__ "quoted" a:b')))
    hits = store.search(query)
    assert all(isinstance(h, SearchHit) for h in hits)


def test_query_terms_are_anded_and_the_last_one_is_a_prefix(store: Store) -> None:
    store.create_conversation("stream", title="one")
    store.add_message("stream", 0, ChatMessage("user", text("streaming replies token by token")))
    store.create_conversation("other", title="two")
    store.add_message("other", 0, ChatMessage("user", text("a stream of consciousness")))
    assert sorted(found(store, "strea")) == ["other", "stream"]
    assert found(store, "streaming tok") == ["stream"]
    assert found(store, "tok streaming") == []  # only the last term is a prefix
    assert found(store, '"streaming" -token') == ["stream"]  # "-" is no operator: both words must match
    assert fts_query('say "hi" NEAR(x)') == '"say" """hi""" "NEAR(x)"*'


def test_hits_are_newest_first_with_a_highlighted_snippet(store: Store) -> None:
    for n, cid in enumerate(["old", "mid", "new"]):
        store.create_conversation(cid, title=f"chat {cid}")
        filler = " ".join(f"w{i}" for i in range(40))
        store.add_message(cid, 0, ChatMessage("user", text(f"{filler} the pelican number {n} {filler}")))
    hits = store.search("pelican")
    assert [h.conversation_id for h in hits] == ["new", "mid", "old"]
    assert all(h.message_id is not None for h in hits)
    best = hits[0]
    assert f"{MATCH_START}pelican{MATCH_END} number 2" in best.snippet and "…" in best.snippet
    assert len(best.snippet) < 200  # a window around the match, not the whole message
    assert ("pelican", True) in best.parts() and all(MATCH_START not in p for p, _ in best.parts())
    assert [h.conversation_id for h in store.search("pelican", limit=2)] == ["new", "mid"]
    title_only = store.search("chat mid")[0]
    assert title_only.message_id is None and title_only.title == "chat mid"
    assert title_only.snippet == f"{MATCH_START}chat{MATCH_END} {MATCH_START}mid{MATCH_END}"
    assert title_only.updated_at == store.get_conversation("mid").updated_at  # type: ignore[union-attr]


def test_list_conversations_pages(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        for n in range(5):
            store.create_conversation(f"c{n}")
            store.add_message(f"c{n}", 0, ChatMessage("user", text(str(n))))
        assert [c.id for c in store.list_conversations(2)] == ["c4", "c3"]
        assert [c.id for c in store.list_conversations(2, offset=2)] == ["c2", "c1"]
        assert [c.id for c in store.list_conversations(10, offset=4)] == ["c0"]
        assert store.list_conversations(10, offset=5) == []


def test_settings_merge_and_message_status(store: Store) -> None:
    store.create_conversation("a", settings={"thinking": True, "persona": "pirate"})
    store.update_conversation("a", settings={"persona": None, "theme": "dark"})
    assert store.get_conversation("a").settings == {"thinking": True, "theme": "dark"}  # type: ignore[union-attr]
    mid = store.add_message("a", 0, ChatMessage("assistant", text("x"), status="interrupted"))
    assert store.message_status(mid) == "interrupted"
    store.update_message(mid, status="complete")
    assert store.message_status(mid) == "complete" and store.message_status(mid + 100) is None


def test_chunks_cut_between_words_and_keep_their_cuts_as_text_grows() -> None:
    from streamchat.chat.search import CHUNK, chunks

    words = " ".join(f"word{i:05d}" for i in range(2000))  # ~20 KB
    pieces = chunks(words)
    assert "".join(pieces) == words and len(pieces) > 5
    assert all(len(p) >= CHUNK for p in pieces[:-1])
    assert all(p.split()[0].startswith("word") and len(p.split()[0]) == 9 for p in pieces)  # no word is cut
    for end in range(1000, len(words), 997):  # as a streamed reply grows, only its last pieces change
        now, later = chunks(words[:end]), chunks(words[: end + 997])
        assert later[: len(now) - 1] == now[:-1]
    assert chunks("") == [] and chunks("short") == ["short"]


def test_a_long_message_is_found_anywhere_and_its_saves_rewrite_only_the_end(store: Store) -> None:
    from streamchat.chat.search import CHUNK

    store.create_conversation("long", title="a long reply")
    body = " ".join(f"filler{i}" for i in range(3 * CHUNK // 7)) + " platypus"
    message_id = store.add_message("long", 0, ChatMessage("assistant", text("aardvark " + body)))
    assert found(store, "aardvark") == ["long"] and found(store, "platypus") == ["long"]
    assert store.search("platypus")[0].message_id == message_id

    def rows() -> dict[int, str]:
        with sqlite3.connect(store.path) as db:
            return dict(db.execute("SELECT rowid, body FROM message_search").fetchall())

    before = rows()
    assert len(before) >= 3
    store.update_message(message_id, content=text("aardvark " + body + " and then a wombat"))
    after = rows()
    assert found(store, "wombat") == ["long"]
    changed = {rowid for rowid in after if before.get(rowid) != after[rowid]}
    assert changed == {max(after)}  # a reply that grew was indexed again at its end only
    store.update_message(message_id, content=text("short now"))
    assert len(rows()) == 1 and found(store, "platypus") == [] and found(store, "short") == ["long"]
