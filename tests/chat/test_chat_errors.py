"""Failures end a reply with a one-line TurnEnd error, keep the partial reply, and retry() recovers."""

from __future__ import annotations

import socket
from typing import Any

import anthropic
from chat_harness import Harness, make_engine, script

from streamchat.chat.conversation import Conversation, ConversationOptions
from streamchat.chat.events import Delta, TurnEnd
from streamchat.engines.script import parse_script
from streamchat.server import ServerSettings


def last_end(events: list[Any]) -> TurnEnd:
    end = events[-1]
    assert isinstance(end, TurnEnd)
    assert sum(isinstance(e, TurnEnd) for e in events) == 1
    return end


def test_mid_stream_engine_error_keeps_partial_and_retry_works(harness: Any, store: Any) -> None:
    h = harness(script({"blocks": [{"type": "text", "text": "Partial answer "},
                                   {"type": "error", "message": "the GPU caught fire"}]}))  # fmt: skip
    conv = h.conversation(store)
    events = list(conv.send("question"))
    end = last_end(events)
    assert end.status == "error" and end.retryable
    assert end.error is not None and "\n" not in end.error and "the GPU caught fire" in end.error
    assert "".join(e.text for e in events if isinstance(e, Delta)) == "Partial answer "
    partial = conv.messages[-1]
    assert partial.status == "error" and partial.content == [{"type": "text", "text": "Partial answer "}]
    assert store.load(conv.id).messages[-1].status == "error"
    h.engine.replies = parse_script("Complete answer.")
    end2 = last_end(list(conv.retry()))
    assert end2.status == "complete"
    assert [m.role for m in conv.messages] == ["user", "assistant"]
    assert conv.messages[-1].content == [{"type": "text", "text": "Complete answer."}]
    saved = store.load(conv.id).messages
    assert [(m.role, m.status) for m in saved] == [("user", "complete"), ("assistant", "complete")]


def test_error_after_partial_then_new_message_is_valid(harness: Any) -> None:
    failing = [{"type": "text", "text": "Half a thought   "}, {"type": "error", "message": "x"}]
    h = harness(script({"blocks": failing}, "Recovered."))
    conv = h.conversation()
    assert last_end(list(conv.send("one"))).status == "error"
    assert conv.api_messages()[-1]["content"] == [{"type": "text", "text": "Half a thought"}]
    h.engine.replies = parse_script("Recovered.")
    assert last_end(list(conv.send("two"))).status == "complete"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused_is_one_line_and_retry_works(harness: Any, store: Any) -> None:
    client = anthropic.Anthropic(base_url=f"http://127.0.0.1:{free_port()}", api_key="test", max_retries=0)
    conv = Conversation(client, ConversationOptions(model="streamchat-script"), store)
    end = last_end(list(conv.send("anyone there?")))
    assert end.status == "error" and end.retryable
    assert end.error is not None and "\n" not in end.error and "cannot connect" in end.error
    assert "refused" in end.error.lower()
    assert [m.role for m in conv.messages] == ["user"]
    h = harness("I am here.")
    conv.client = h.client  # the server is up now
    assert last_end(list(conv.retry())).status == "complete"
    assert [m.role for m in store.load(conv.id).messages] == ["user", "assistant"]


def test_authentication_error(harness: Any) -> None:
    h = harness("secret", settings=ServerSettings(api_key="right-key"))
    client = anthropic.Anthropic(base_url=h.base_url, api_key="wrong-key", max_retries=0)
    conv = Conversation(client, ConversationOptions(model="streamchat-script"))
    end = last_end(list(conv.send("let me in")))
    assert end.status == "error" and not end.retryable
    assert end.error == "authentication failed (401): invalid x-api-key"
    conv.client = anthropic.Anthropic(base_url=h.base_url, api_key="right-key", max_retries=0)
    assert last_end(list(conv.retry())).status == "complete"


def test_overloaded_529_is_retryable() -> None:
    engine = make_engine("slow " * 50, rate=20)
    engine.max_concurrency = 1
    h = Harness(engine, ServerSettings(max_queue=0))
    try:
        busy = h.conversation().send("first")
        next(iter(busy))  # the first reply holds the only slot
        end = last_end(list(h.conversation().send("second")))
        assert end.status == "error" and end.retryable and "(529)" in end.error  # type: ignore[operator]
        busy.interrupt()
        assert last_end(list(busy)).status == "interrupted"
    finally:
        h.close()


def test_retry_with_nothing_to_retry_ends_with_an_error(harness: Any) -> None:
    h = harness("x")
    end = last_end(list(h.conversation().retry()))
    assert end.status == "error" and end.error and "nothing to retry" in end.error
