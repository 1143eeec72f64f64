"""The event log, the reply encoder's frame pacing and the SSE batch rules, as pure parts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from web_harness import assemble

from streamchat.chat.events import BlockEnd, BlockStart, Delta, ToolCall, TurnEnd
from streamchat.render import render_html
from streamchat.web.eventlog import LoggedEvent, LogGone, MemoryEventLog
from streamchat.web.protocol import ReplyEncoder
from streamchat.web.sse import encode_events, live_events


def run(coro: Coroutine[Any, Any, None]) -> None:
    """Run a scenario on its own loop, in its own thread (a browser test's loop may own this one)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


def test_seqs_are_consecutive_and_reads_resume_anywhere() -> None:
    async def scenario() -> None:
        log = MemoryEventLog()
        await log.create("r")
        seqs = [await log.append("r", "tail", {"n": n}) for n in range(5)]
        assert seqs == [1, 2, 3, 4, 5]
        read = await log.read("r", 2, 0)
        assert [e.seq for e in read.events] == [3, 4, 5] and not read.closed
        assert (await log.read("r", 5, 0.01)).events == []  # nothing new: an empty read on timeout
        waiter = asyncio.ensure_future(log.read("r", 5, 5))
        await asyncio.sleep(0)
        await log.append("r", "end", {})
        assert [e.type for e in (await waiter).events] == ["end"]
        await log.close("r")
        final = await log.read("r", 6, 5)  # closed: returns at once
        assert final.events == [] and final.closed
        assert json.loads((await log.read("r", 0, 0)).events[0].data) == {"n": 0}

    run(scenario())


def test_a_trimmed_or_unknown_log_is_gone() -> None:
    async def scenario() -> None:
        log = MemoryEventLog(max_bytes=40)
        await log.create("r")
        for n in range(10):
            await log.append("r", "blocks", {"html": f"<p>{n}</p>"})
        with pytest.raises(LogGone):
            await log.read("r", 0, 0)  # the first events were trimmed: never skip them
        assert (await log.read("r", 9, 0)).events[0].seq == 10
        with pytest.raises(LogGone):
            await log.read("r", 99, 0)  # a seq the log never had
        with pytest.raises(LogGone):
            await log.read("other", 0, 0)
        with pytest.raises(TypeError):
            await log.append("r", "x", {"not json": object()})

    run(scenario())


def test_closed_logs_expire() -> None:
    async def scenario() -> None:
        log = MemoryEventLog(ttl=0.0)
        await log.create("old")
        await log.close("old")
        await asyncio.sleep(0.01)
        await log.create("new")
        with pytest.raises(LogGone):
            await log.read("old", 0, 0)

    run(scenario())


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_tails_are_held_to_the_frame_rate_and_flushed_when_due() -> None:
    clock = Clock()
    encoder = ReplyEncoder("m", max_fps=10, clock=clock)
    events = encoder.encode(BlockStart("text"))
    events += encoder.encode(Delta("text", "Hel"))  # the first frame goes at once
    assert [k for k, _ in events] == ["part", "tail"]
    clock.now = 0.05
    assert encoder.encode(Delta("text", "lo")) == []  # within the frame: held back
    assert encoder.next_due() == pytest.approx(0.1)
    assert encoder.flush() == []
    clock.now = 0.1
    flushed = encoder.flush()
    assert flushed == [("tail", {"part": 0, "html": "<p>Hello</p>\n", "chars": 5})]
    assert encoder.next_due() is None
    clock.now = 0.2
    more = encoder.encode(Delta("text", "\n\nNext\n"))
    assert [k for k, _ in more] == ["blocks", "tail"] and more[0][1]["html"] == "<p>Hello</p>\n"
    end = encoder.encode(BlockEnd("text"))
    assert end == [
        ("blocks", {"part": 0, "html": "<p>Next</p>\n", "chars": 12}),
        ("part_end", {"part": 0, "kind": "text"}),
    ]


def test_a_code_fence_is_sent_once_and_its_lines_appended() -> None:
    encoder = ReplyEncoder("m", max_fps=0)
    events = encoder.encode(BlockStart("text"))
    text = "```python\n" + "x = 1\n" * 50 + "```\nDone.\n"
    for start in range(0, len(text), 4):
        events += encoder.encode(Delta("text", text[start : start + 4]))
    events += encoder.encode(BlockEnd("text"))
    kinds = [k for k, _ in events]
    assert kinds.count("fence") == 1 and kinds.index("fence") < kinds.index("lines")
    assert [d["end"] for k, d in events if k == "lines"].count(True) == 1
    pieces = [(k, d["html"], bool(d.get("end"))) for k, d in events if k in ("blocks", "fence", "lines")]
    assert assemble(pieces) == render_html(text)
    assert all(d["chars"] <= len(text) for k, d in events if k in ("fence", "lines", "tail"))


def test_tool_parts_and_the_end() -> None:
    encoder = ReplyEncoder("claude-sonnet-4-5")
    events = encoder.encode(BlockStart("tool_use", "add"))
    events += encoder.encode(Delta("tool_use", '{"a": 1'))
    events += encoder.encode(Delta("tool_use", "}"))
    events += encoder.encode(BlockEnd("tool_use", {"a": 1}))
    events += encoder.encode(ToolCall("toolu_1", "add", {"a": 1}))
    kinds = [k for k, _ in events]
    assert kinds == ["part", "input", "input", "part_end", "tool_call"]
    assert "".join(d["text"] for k, d in events if k == "input") == '{"a": 1}'
    assert events[-1][1] == {"part": 0, "id": "toolu_1", "name": "add"}
    end = encoder.encode(TurnEnd("complete", "end_turn", 10, 5, cost=0.001))
    assert end[-1][0] == "end" and end[-1][1]["usage"]["output_tokens"] == 5 and end[-1][1]["cost"] == 0.001


def test_continue_seeds_the_message_and_appends_to_its_text() -> None:
    encoder = ReplyEncoder("m", max_fps=0)
    events = encoder.seed([{"type": "text", "text": "# Title\n\nHalf a sen"}])
    events += encoder.encode(BlockStart("text"))  # the continuation streams into the same part
    events += encoder.encode(Delta("text", "tence.\n"))
    events += encoder.encode(BlockEnd("text"))
    assert [d["part"] for k, d in events if k == "part"] == [0]
    html = "".join(d["html"] for k, d in events if k == "blocks")
    assert html == render_html("# Title\n\nHalf a sentence.\n")


def test_a_batch_drops_tails_that_a_later_event_replaces() -> None:
    def event(seq: int, kind: str, part: int) -> LoggedEvent:
        return LoggedEvent(seq, kind, json.dumps({"part": part, "html": f"<p>{seq}</p>"}))

    batch = [event(1, "tail", 0), event(2, "blocks", 0), event(3, "tail", 0), event(4, "tail", 0),
             event(5, "part_end", 0), event(6, "tail", 1), event(7, "tail", 2)]  # fmt: skip
    assert [e.seq for e in live_events(batch)] == [2, 5, 6, 7]
    frames = encode_events(batch).decode()
    assert frames.startswith("id: 2\nevent: blocks\ndata: ") and frames.endswith("\n\n")
