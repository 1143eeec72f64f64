"""Ctrl-C and interrupt(): the partial reply is kept as "interrupted" and the next request is valid."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

from chat_harness import Harness, RecordingEngine, interrupt_after, script, text_of, wait_until

from streamchat.api.request import MessagesRequest
from streamchat.chat.events import Delta, ReplyEvent, ToolCall, TurnEnd
from streamchat.engines.script import parse_script

LONG = "one two six ten " * 40  # chunks of 4 end in spaces: partial text ends in whitespace


def test_ctrl_c_keeps_partial_and_next_request_is_valid(harness: Any, store: Any) -> None:
    h = harness(script(LONG, "Fine."), rate=50)
    conv = h.conversation(store, local=True)
    reply = conv.send("tell me a long story")
    events = interrupt_after(reply, 5)
    end = events[-1]
    assert isinstance(end, TurnEnd) and end.status == "interrupted"
    assert sum(isinstance(e, TurnEnd) for e in events) == 1
    partial = conv.messages[-1]
    assert partial.role == "assistant" and partial.status == "interrupted"
    assert text_of(partial) == reply.text and len(reply.text) >= 20 and LONG.startswith(reply.text)
    saved = store.load(conv.id).messages[-1]
    assert saved.status == "interrupted" and saved.content == partial.content
    wait_until(lambda: h.engine.running == 0)  # the server stopped generating
    # The window ending with the partial reply is valid for the API (no trailing whitespace).
    api = conv.api_messages()
    assert api[-1]["content"][-1]["text"] == reply.text.rstrip() != reply.text
    assert h.client.messages.count_tokens(model="streamchat-script", messages=api).input_tokens > 0  # type: ignore[arg-type]
    end2 = list(conv.send("go on"))[-1]
    assert isinstance(end2, TurnEnd) and end2.status == "complete"
    assert h.sent(-1)[1]["content"] == [{"type": "text", "text": reply.text.rstrip()}]


def test_sigint_during_a_blocking_read(harness: Any) -> None:
    h = harness(LONG, rate=20)
    conv = h.conversation()
    reply = conv.send("story")
    timer = threading.Timer(0.4, lambda: os.kill(os.getpid(), signal.SIGINT))
    seen: list[ReplyEvent] = []
    timer.start()
    try:
        for event in reply:
            seen.append(event)
    except KeyboardInterrupt:
        reply.interrupt()
        seen.extend(reply)
    finally:
        timer.cancel()
    end = seen[-1]
    assert isinstance(end, TurnEnd) and end.status == "interrupted"
    assert conv.messages[-1].status == "interrupted" and text_of(conv.messages[-1]) == reply.text
    wait_until(lambda: h.engine.running == 0)
    h.engine.rate = 0
    assert isinstance(list(conv.send("next"))[-1], TurnEnd)
    assert h.engine.requests[-1].messages[-1].content[0]["text"] == "next"


class FirstDeltaThenSilence(RecordingEngine):
    """Sends its first delta, then nothing until the server cancels it (the client left)."""

    def generate(self, request: MessagesRequest, cancel: threading.Event) -> Iterator[Any]:
        for n, part in enumerate(super().generate(request, cancel)):
            yield part
            if n == 0:
                cancel.wait()


def test_interrupt_from_another_thread_wakes_the_reader(store: Any) -> None:
    h = Harness(FirstDeltaThenSilence(parse_script(LONG)))  # no second delta ever: only a wake-up ends this
    try:
        conv = h.conversation(store)
        reply = conv.send("story")

        def stop() -> None:
            # The first delta is in, and the reader is back inside next(), blocked on the socket.
            wait_until(lambda: len(reply.text) >= 4 and reply._step.locked())
            reply.interrupt()

        events: list[ReplyEvent] = []
        reader = threading.Thread(target=lambda: events.extend(reply))
        reader.start()
        stop()
        reader.join(10)
        assert not reader.is_alive(), "the reader was not woken"
        end = events[-1]
        assert isinstance(end, TurnEnd) and end.status == "interrupted"
        assert sum(isinstance(e, Delta) for e in events) == 1
        assert conv.messages[-1].status == "interrupted" and text_of(conv.messages[-1]) == LONG[:4]
        assert store.load(conv.id).messages[-1].status == "interrupted"
        wait_until(lambda: h.engine.running == 0)  # the server saw the client leave and cancelled
    finally:
        h.close()


def test_interrupt_inside_thinking_drops_unsigned_thinking(harness: Any) -> None:
    h = harness(script(
        {"blocks": [{"type": "thinking", "thinking": "hmm " * 100}, {"type": "text", "text": "Answer."}]},
    ), rate=50)  # fmt: skip
    conv = h.conversation(thinking=True)
    events = interrupt_after(conv.send("think"), 3, kind="thinking")
    assert isinstance(events[-1], TurnEnd) and events[-1].status == "interrupted"
    partial = conv.messages[-1]
    assert partial.content[0]["type"] == "thinking" and partial.content[0]["signature"] == ""
    assert partial.content[0]["thinking"].startswith("hmm hmm")
    assert conv.api_messages() == [{"role": "user", "content": [{"type": "text", "text": "think"}]}]
    h.engine.rate = 0
    end = list(conv.send("again"))[-1]
    assert isinstance(end, TurnEnd) and end.status == "complete", end
    sent = h.sent(-1)
    assert [m["role"] for m in sent] == ["user"] and len(sent[0]["content"]) == 2  # clean alternation


def test_interrupt_inside_tool_input_drops_the_tool_use(harness: Any) -> None:
    from streamchat.chat.tools import ToolSet

    def lookup(query: str) -> str:
        """Look something up."""
        return "found"

    h = harness(script(
        {"blocks": [{"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "name": "lookup", "input": {"query": "x" * 400}}]},
        "Done.",
    ), rate=50)  # fmt: skip
    calls: list[str] = []
    conv = h.conversation(
        tools=ToolSet.from_functions([lookup]), confirm=lambda n, d: calls.append(n) or True
    )
    events = interrupt_after(conv.send("look it up"), 3, kind="tool_use")
    assert isinstance(events[-1], TurnEnd) and events[-1].status == "interrupted"
    assert not any(isinstance(e, ToolCall) for e in events) and calls == []
    partial = conv.messages[-1]
    assert [b["type"] for b in partial.content] == ["text", "tool_use"]
    assert conv.api_messages()[-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "Let me look."}],
    }
    h.engine.rate = 0
    # The server refuses a tool_use without its tool_result: this request passing proves it was dropped.
    end = list(conv.send("never mind"))[-1]
    assert isinstance(end, TurnEnd) and end.status == "complete", end
    assert h.sent(-1)[1]["content"] == [{"type": "text", "text": "Let me look."}]


def test_interrupt_before_iterating_and_wait(harness: Any) -> None:
    h = harness("Hello there.")
    conv = h.conversation()
    reply = conv.send("hi")
    reply.interrupt()
    events = list(reply)
    assert len(events) == 1 and isinstance(events[0], TurnEnd) and events[0].status == "interrupted"
    assert [m.role for m in conv.messages] == ["user"] and h.engine.requests == []
    end = conv.send("hi again").wait()
    assert end.status == "complete" and h.sent(-1) == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "hi again"}]}
    ]
    reply = conv.send("third")
    assert reply.wait() is reply.result and reply.done and reply.text == "Hello there."
    reply.interrupt()  # after the end: nothing happens
    assert list(reply) == [] and conv.messages[-1].status == "complete"


def test_interrupt_while_queued_behind_another_generation_leaves_the_queue(harness: Any, store: Any) -> None:
    """One generation at a time: B waits for its slot (no response headers yet on today's API) and is
    stopped there; the server's own counters show it gone, and A never noticed."""
    h = harness(LONG, rate=20, max_concurrency=1)
    first = h.conversation(store)
    a = first.send("A")
    assert any(isinstance(e, Delta) for e in a)  # A holds the only slot
    second = h.conversation(store)
    b = second.send("B")
    seen: list[ReplyEvent] = []
    reader = threading.Thread(target=lambda: seen.extend(b))
    reader.start()
    wait_until(lambda: h.api.admission.waiting == 1)  # B is queued
    b.interrupt()  # from another thread than the one iterating B
    reader.join(5)
    assert not reader.is_alive() and [type(e) for e in seen] == [TurnEnd] and seen[0].status == "interrupted"
    wait_until(lambda: h.api.admission.waiting == 0)  # the server dropped B from its queue
    assert h.api.generations_started == 1 and h.api.generations_running == 1 and h.engine.running == 1
    assert [m.role for m in second.messages] == ["user"] and len(store.load(second.id).messages) == 1
    a.interrupt()
    assert isinstance(list(a)[-1], TurnEnd)
    wait_until(h.idle)
    assert [r.messages[-1].content[0]["text"] for r in h.engine.requests] == ["A"]  # B never ran


def test_interrupt_during_the_sdks_retries_ends_the_reply_at_once(harness: Any) -> None:
    import anthropic
    import httpx2 as httpx

    from streamchat.server import ServerSettings

    h = harness(LONG, rate=20, max_concurrency=1, settings=ServerSettings(max_queue=0))
    a = h.conversation().send("A")
    assert any(isinstance(e, Delta) for e in a)
    overloaded: list[int] = []
    first_529 = threading.Event()

    def on_response(response: httpx.Response) -> None:
        if response.status_code == 529:
            overloaded.append(529)
            first_529.set()

    http = anthropic.DefaultHttpxClient(event_hooks={"response": [on_response]})
    retrying = anthropic.Anthropic(base_url=h.base_url, api_key="test", max_retries=2, http_client=http)
    b = h.conversation(client=retrying).send("B")
    seen: list[ReplyEvent] = []
    reader = threading.Thread(target=lambda: seen.extend(b))
    reader.start()
    assert first_529.wait(5)  # the SDK now waits retry-after (1 s) before trying again
    b.interrupt()
    reader.join(5)
    assert [type(e) for e in seen] == [TurnEnd] and seen[0].status == "interrupted"
    assert overloaded == [529]  # the reply ended before the SDK's next attempt
    a.interrupt()
    list(a)
    retrying.close()
