"""What full-text search costs the store: streaming saves with the chunked index against the same
store without an index (and with one index row per message), and a search against a LIKE scan.

Claim: a streaming save (the whole message rewritten, every 0.25 s while a reply streams) stays short
with the index kept in step: at most 3x the save without an index even at 80 KB, because only the
reply's last chunk is indexed again, so the terminal and the web sharing the file never wait on each
other for long. A search over a few thousand conversations answers faster than scanning messages.

    .venv/bin/python benchmarks/store_writes.py     # ~1 min; --rounds N, --conversations N
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import streamchat.chat.search as search_module
import streamchat.chat.store as store_module
from streamchat.chat.messages import ChatMessage
from streamchat.chat.store import Store

REPLY_BYTES = 80_000
STEP = 1_000  # characters between saves: ~0.25 s of a fast stream
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet")


def prose(rng: random.Random, chars: int) -> str:
    out: list[str] = []
    size = 0
    while size < chars:
        word = rng.choice(WORDS) + str(rng.randrange(1000))
        out.append(word)
        size += len(word) + 1
    return " ".join(out)[:chars]


@contextlib.contextmanager
def arm(name: str) -> Iterator[None]:
    """"plain": the Store with its index call removed; "whole": one index row per message."""
    saved = (getattr(store_module, "index_message"), search_module.CHUNK)  # noqa: B009

    def no_index(*args: Any) -> None:
        return None

    if name == "plain":
        setattr(store_module, "index_message", no_index)  # noqa: B010
    elif name == "whole":
        search_module.CHUNK = 10**12
    try:
        yield
    finally:
        setattr(store_module, "index_message", saved[0])  # noqa: B010
        search_module.CHUNK = saved[1]


def stream_one_reply(store: Store, conversation: str, text: str) -> list[float]:
    """Save a growing reply as Reply does; the time of each save."""
    store.create_conversation(conversation, title="bench")
    store.add_message(conversation, 0, ChatMessage("user", [{"type": "text", "text": "go"}]))
    message_id = store.add_message(conversation, 1, ChatMessage("assistant", [], status="interrupted"))
    times = []
    for end in range(STEP, len(text) + 1, STEP):
        content = [{"type": "text", "text": text[:end]}]
        start = time.perf_counter()
        store.update_message(message_id, content=content, usage={"output_tokens": end // 4})
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--conversations", type=int, default=2000)
    args = parser.parse_args()
    rng = random.Random(7)
    text = prose(rng, REPLY_BYTES)
    with tempfile.TemporaryDirectory() as tmp:
        stores = {name: Store(Path(tmp) / f"{name}.db") for name in ("plain", "chunked", "whole")}
        saves: dict[str, list[list[float]]] = {name: [] for name in stores}
        order = list(stores)
        for n in range(args.rounds):  # the arms take turns, one reply each per round
            for name in order[n % 3 :] + order[: n % 3]:
                with arm(name):
                    saves[name].append(stream_one_reply(stores[name], f"c{n}", text))
        every = {name: statistics.median(t for reply in replies for t in reply) * 1000
                 for name, replies in saves.items()}  # fmt: skip
        late = {name: statistics.median(t for reply in replies for t in reply[-10:]) * 1000
                for name, replies in saves.items()}  # fmt: skip
        ratio = late["chunked"] / late["plain"]
        print(f"streaming save of an {REPLY_BYTES // 1000} KB reply in {STEP}-character steps, "
              f"{args.rounds} replies per arm:")  # fmt: skip
        labels = {"plain": "no index (baseline)", "chunked": "chunked index", "whole": "one row a message"}
        for name, label in labels.items():
            print(f"  {label:<20} median {every[name]:.2f} ms, at 70-80 KB {late[name]:.2f} ms"
                  f" ({late[name] / late['plain']:.2f}x)")  # fmt: skip
        print(f"  chunked / baseline at 70-80 KB: {ratio:.2f} (target <= 3)")
        indexed = stores["chunked"]

        # A store of many conversations: search against a LIKE scan of the same rows.
        for c in range(args.conversations):
            cid = f"s{c}"
            indexed.create_conversation(cid, title=prose(rng, 40))
            for position in range(10):
                body = prose(rng, 400) + (" zeppelin" if c % 500 == 7 and position == 3 else "")
                indexed.add_message(cid, position, ChatMessage("user" if position % 2 == 0 else "assistant",
                                                               [{"type": "text", "text": body}]))  # fmt: skip
        fts, scan = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            hits = indexed.search("zeppelin")
            fts.append(time.perf_counter() - start)
            start = time.perf_counter()
            with indexed.transaction() as db:
                rows = db.execute("SELECT DISTINCT conversation_id FROM messages WHERE content LIKE ?",
                                  ("%zeppelin%",)).fetchall()  # fmt: skip
            scan.append(time.perf_counter() - start)
        expected = len(range(7, args.conversations, 500))
        assert len(hits) == len(rows) == expected, (len(hits), len(rows), expected)
        search_ms, scan_ms = statistics.median(fts) * 1000, statistics.median(scan) * 1000
        print(f"search over {args.conversations} conversations x 10 messages ({expected} hits, snippets "
              f"included): {search_ms:.2f} ms; LIKE scan of the messages: {scan_ms:.2f} ms; "
              f"ratio {search_ms / scan_ms:.2f} (target < 1)")  # fmt: skip
        for store in stores.values():
            store.close()
    return 0 if ratio <= 3 and search_ms < scan_ms else 1


if __name__ == "__main__":
    sys.exit(main())
