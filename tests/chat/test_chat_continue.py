"""continue_reply (prefill continuation in the same message), edit_last, and settings that persist."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from chat_harness import Harness, RecordingEngine, interrupt_after, script, text_of, wait_until

from streamchat.api.request import MessagesRequest
from streamchat.api.stream import TextDelta
from streamchat.chat.continuation import Continuation, continuation_lead
from streamchat.chat.conversation import ChatMessage, Conversation, ConversationOptions
from streamchat.chat.events import BlockStart, Delta, TurnEnd
from streamchat.engines.script import parse_script

LONG = "one two six ten " * 30 + "THE-END."


def shown(events: list[Any]) -> str:
    """What a view draws for the text of a reply: a continued block's prefix, then the deltas."""
    out = ""
    for event in events:
        if isinstance(event, BlockStart) and event.kind == "text":
            out += event.prefix
        elif isinstance(event, Delta) and event.kind == "text":
            out += event.text
    return out


@pytest.mark.parametrize("chunk", [4, 3], ids=["cut-after-a-space", "cut-mid-word"])
def test_continue_appends_to_the_interrupted_message(harness: Any, store: Any, chunk: int) -> None:
    h = harness(LONG, chunk=chunk, rate=200)
    conv = h.conversation(store, local=True, thinking=True)
    interrupt_after(conv.send("count"), 6)
    partial = conv.messages[-1]
    first_text, first_usage, first_id = text_of(partial), dict(partial.usage or {}), partial.id
    assert partial.status == "interrupted" and LONG.startswith(first_text) and first_text != LONG
    wait_until(lambda: h.engine.running == 0)
    h.engine.rate = 0

    reply = conv.continue_reply()
    events = list(reply)
    end = events[-1]
    assert isinstance(end, TurnEnd) and end.status == "complete", end
    # The request: the partial text as an assistant prefill, trailing whitespace cut, no thinking.
    request = h.engine.requests[-1]
    assert request.messages[-1].role == "assistant"
    assert list(request.messages[-1].content) == [{"type": "text", "text": first_text.rstrip()}]
    assert request.thinking is None and request.max_tokens == conv.options.max_tokens
    # The same message holds the whole reply once, in history and in the store.
    assert [m.role for m in conv.messages] == ["user", "assistant"] and conv.messages[-1] is partial
    assert partial.id == first_id and partial.status == "complete" and text_of(partial) == LONG
    saved = store.load(conv.id).messages
    assert len(saved) == 2 and saved[-1].id == first_id and text_of(saved[-1]) == LONG
    assert saved[-1].status == "complete" and len(saved[-1].content) == 1
    # A view drawing the prefix and then the deltas shows exactly the saved text.
    assert shown(events) == LONG and reply.message is partial
    assert first_text.rstrip() + reply.text == LONG
    # Usage: the message adds both requests; the turn reports the continuation's own.
    assert partial.usage is not None and end.output_tokens > 0
    assert partial.usage["input_tokens"] == first_usage["input_tokens"] + end.input_tokens
    assert partial.usage["output_tokens"] == first_usage["output_tokens"] + end.output_tokens
    assert conv.api_messages()[-1]["content"] == [{"type": "text", "text": LONG}]


def test_a_continuation_interrupted_again_continues_again(harness: Any, store: Any) -> None:
    h = harness(LONG, rate=200)
    conv = h.conversation(store, local=True)
    interrupt_after(conv.send("count"), 4)
    interrupt_after(conv.continue_reply(), 5)
    once = text_of(conv.messages[-1])
    assert conv.messages[-1].status == "interrupted" and LONG.startswith(once.rstrip()) and len(once) > 30
    assert text_of(store.load(conv.id).messages[-1]) == once
    wait_until(lambda: h.engine.running == 0)
    h.engine.rate = 0
    assert conv.continue_reply().wait().status == "complete"
    assert text_of(conv.messages[-1]) == LONG and len(conv.messages) == 2


def test_continue_a_failed_reply(harness: Any, store: Any) -> None:
    h = harness(script({"blocks": [{"type": "text", "text": "The answer is"},
                                   {"type": "error", "message": "the engine broke"}]}))  # fmt: skip
    conv = h.conversation(store, local=True)
    end = conv.send("what is it?").wait()
    assert end.status == "error" and conv.messages[-1].status == "error"
    h.engine.replies = parse_script("The answer is 42.")
    assert conv.continue_reply().wait().status == "complete"
    assert text_of(conv.messages[-1]) == "The answer is 42." and conv.messages[-1].status == "complete"


class NoLeadingSpace(RecordingEngine):
    """An engine whose continuation does not start with the space the prefill lost (as a model may)."""

    def generate(self, request: MessagesRequest, cancel: threading.Event) -> Iterator[Any]:
        first = True
        for part in super().generate(request, cancel):
            if first and request.prefill and isinstance(part, TextDelta):
                part, first = TextDelta(part.text.lstrip()), False
            yield part


def test_the_whitespace_cut_from_the_prefill_comes_back_when_needed(store: Any) -> None:
    h = Harness(NoLeadingSpace(parse_script("Hello world.")))
    try:
        conv = h.conversation(store, local=True)
        cut = ChatMessage("assistant", [{"type": "text", "text": "Hello "}], status="interrupted")
        conv.messages.extend([ChatMessage("user", [{"type": "text", "text": "greet"}]), cut])
        events = list(conv.continue_reply())
        assert h.sent(-1)[-1] == {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]}
        assert "".join(e.text for e in events if isinstance(e, Delta)) == " world."  # the space came back
        assert text_of(conv.messages[-1]) == "Hello world." == shown(events)
    finally:
        h.close()


def test_continuation_lead() -> None:
    assert continuation_lead("", "world") == ""  # cut mid-word: glued back as it was
    assert continuation_lead(" ", " world") == ""  # the continuation brought its own space
    assert continuation_lead(" ", "world") == " "  # the space the API made us cut goes back
    assert continuation_lead(" ", ", then") == ""  # punctuation sticks to the word before
    assert continuation_lead("\n\n", "- item") == "\n\n"  # a paragraph break stays one
    assert continuation_lead("\n\n", ".") == "\n\n"
    assert continuation_lead(" ", "") == ""


def test_continuation_of_drops_tool_calls_and_keeps_thinking() -> None:
    message = ChatMessage("assistant", [
        {"type": "thinking", "thinking": "hmm", "signature": ""}, {"type": "text", "text": "Let me look.  "},
        {"type": "tool_use", "id": "t1", "name": "lookup", "input": {}}, {"type": "text", "text": " \n"},
    ], status="interrupted")  # fmt: skip
    continuation = Continuation.of(message)
    assert continuation is not None and continuation.prefix == "Let me look."
    assert continuation.stripped == "  "
    assert [b["type"] for b in continuation.content] == ["thinking", "text"]
    assert message.content[1]["text"] == "Let me look.  "  # nothing changes until the continuation starts
    assert Continuation.of(ChatMessage("assistant", [{"type": "thinking", "thinking": "x"}])) is None


def test_nothing_to_continue_is_refused_and_changes_nothing(harness: Any, store: Any) -> None:
    h = harness(script({"blocks": [{"type": "thinking", "thinking": "hmm " * 200},
                                   {"type": "text", "text": "Answer."}]}), rate=200)  # fmt: skip
    conv = h.conversation(store, local=True, thinking=True)
    end = conv.continue_reply().wait()
    assert end.status == "error" and end.error == "nothing to continue: the last message is not a reply"
    interrupt_after(conv.send("think"), 3, kind="thinking")  # interrupted inside thinking: no text yet
    before = [(m.role, list(m.content), m.status) for m in conv.messages]
    end = conv.continue_reply().wait()
    assert end.status == "error" and "the reply has no text yet" in (end.error or "")
    assert [(m.role, m.content, m.status) for m in conv.messages] == before
    wait_until(lambda: h.engine.running == 0)
    h.engine.rate = 0
    conv.retry().wait()
    end = conv.continue_reply().wait()
    assert end.error == "nothing to continue: the last reply is complete"
    assert len(h.engine.requests) == 2  # refusals send nothing
    assert [(m.role, m.status) for m in conv.messages] == [("user", "complete"), ("assistant", "complete")]


def test_a_failed_continuation_request_leaves_the_message_as_it_was(harness: Any, store: Any) -> None:
    h = harness(LONG, rate=200)
    conv = h.conversation(store, local=True)
    interrupt_after(conv.send("count"), 4)
    partial = conv.messages[-1]
    before = (list(partial.content), partial.status, dict(partial.usage or {}))
    wait_until(lambda: h.engine.running == 0)
    h.close()  # the server is gone: the request fails before any response
    end = conv.continue_reply().wait()
    assert end.status == "error" and end.retryable and "cannot connect" in (end.error or "")
    assert (partial.content, partial.status, partial.usage) == before
    assert store.load(conv.id).messages[-1].content == before[0]


def test_edit_last_replaces_the_last_user_message(harness: Any, store: Any) -> None:
    h = harness(script("First.", "Second."))
    conv = h.conversation(store, local=True)
    conv.send("one").wait()
    conv.send("two").wait()
    conv.pin(2)
    end = conv.edit_last("two, edited").wait()
    assert end.status == "complete"
    assert [(m.role, text_of(m)) for m in conv.messages] == [
        ("user", "one"), ("assistant", "First."), ("user", "two, edited"), ("assistant", "Second."),
    ]  # fmt: skip
    assert conv.messages[2].pinned and h.sent(-1)[-1]["content"] == [{"type": "text", "text": "two, edited"}]
    saved = store.load(conv.id)
    assert [(m.role, text_of(m), m.pinned) for m in saved.messages] == [
        (m.role, text_of(m), m.pinned) for m in conv.messages]  # fmt: skip
    assert saved.info.title == "one"  # the title came from the first message, which did not change
    with pytest.raises(ValueError):
        conv.edit_last("   ")


def test_edit_last_of_the_first_message_retitles(harness: Any, store: Any) -> None:
    h = harness("Answer.")
    conv = h.conversation(store, local=True)
    conv.send("frist question").wait()
    conv.edit_last("first question").wait()
    assert conv.title == "first question" == store.load(conv.id).info.title
    conv.rename("My chat")
    conv.edit_last("first question, again").wait()
    assert store.load(conv.id).info.title == "My chat"  # a title the user chose stays
    empty = h.conversation(store)
    end = empty.edit_last("hello").wait()
    assert end.status == "error" and end.error == "nothing to edit: there is no user message"


def test_thinking_and_persona_persist_and_resume(harness: Any, store: Any) -> None:
    h = harness("Arr.")
    conv = h.conversation(store, local=True, thinking=True, system="You are a pirate.", persona="pirate")
    conv.send("hello").wait()
    assert store.get_conversation(conv.id).settings == {"thinking": True, "persona": "pirate"}
    back = Conversation.resume(h.client, store, conv.id)
    assert (back.options.thinking, back.options.persona, back.options.system) == (
        True, "pirate", "You are a pirate.")  # fmt: skip
    back.set_thinking(False)
    back.set_system("Be terse.")  # typed, not a named persona
    again = Conversation.resume(h.client, store, conv.id)
    assert (again.options.thinking, again.options.persona, again.options.system) == (False, None, "Be terse.")
    assert store.get_conversation(conv.id).settings == {"thinking": False}
    # Options given on resume (command-line flags) win where they say something.
    flags = ConversationOptions(model="streamchat-script", thinking=True, system="Sing.", persona="bard")
    flagged = Conversation.resume(h.client, store, conv.id, flags)
    opts = flagged.options
    assert (opts.thinking, opts.persona, opts.system) == (True, "bard", "Sing.")
    assert store.get_conversation(conv.id).settings == {"thinking": True, "persona": "bard"}
    same_text = Conversation.resume(h.client, store, conv.id, ConversationOptions(model="m", system="Sing."))
    assert same_text.options.persona == "bard"  # the same persona text keeps its name
