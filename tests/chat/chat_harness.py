"""Shared parts of the chat tests: a real server on 127.0.0.1 over the script engine, the real SDK."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import pytest

from streamchat.api.request import MessagesRequest
from streamchat.chat.conversation import Conversation, ConversationOptions
from streamchat.chat.events import Delta, ReplyEvent
from streamchat.chat.store import Store
from streamchat.engines.script import ScriptEngine, parse_script
from streamchat.server import ServerSettings, ServerThread, create_app
from streamchat.server.app import MessagesAPI


class RecordingEngine(ScriptEngine):
    """The script engine, remembering every generation request it received."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requests: list[MessagesRequest] = []
        self.running = 0
        self._lock = threading.Lock()

    def generate(self, request: MessagesRequest, cancel: threading.Event) -> Iterator[Any]:
        self.requests.append(request)
        with self._lock:
            self.running += 1
        try:
            yield from super().generate(request, cancel)
        finally:
            with self._lock:
                self.running -= 1


def script(*replies: Any) -> str:
    """A JSON script of several replies."""
    return json.dumps({"replies": list(replies)})


def make_engine(source: str, *, chunk: int = 4, rate: float = 0.0,
                max_concurrency: int | None = None) -> RecordingEngine:  # fmt: skip
    engine = RecordingEngine(parse_script(source), chunk=chunk, rate=rate)
    engine.max_concurrency = max_concurrency  # 1: one generation at a time, the others queue
    return engine


class Harness:
    """A running server and a client for it."""

    def __init__(self, engine: RecordingEngine, settings: ServerSettings | None = None) -> None:
        self.engine = engine
        app = create_app(engine, settings)
        self.api: MessagesAPI = app.app.state.api  # the server's own counters (generations, admission)
        self.server = ServerThread(app)
        self.base_url = self.server.start()
        self.client = anthropic.Anthropic(base_url=self.base_url, api_key="test", max_retries=0)

    def conversation(self, store: Store | None = None, **options: Any) -> Conversation:
        tools = options.pop("tools", None)
        confirm = options.pop("confirm", None)
        client = options.pop("client", self.client)
        opts = ConversationOptions(model=options.pop("model", "streamchat-script"), **options)
        return Conversation(client, opts, store, tools=tools, confirm=confirm)

    def idle(self) -> bool:
        """No generation running or waiting, every slot free."""
        admission = self.api.admission
        return self.api.generations_running == 0 and admission.active == 0 and admission.waiting == 0

    def sent(self, index: int = -1) -> list[dict[str, Any]]:
        """The messages of a generation request as the server received them."""
        return [{"role": m.role, "content": list(m.content)} for m in self.engine.requests[index].messages]

    def close(self) -> None:
        self.client.close()
        self.server.stop()


@pytest.fixture
def harness() -> Iterator[Callable[..., Harness]]:
    started: list[Harness] = []

    def start(source: str, *, chunk: int = 4, rate: float = 0.0, settings: ServerSettings | None = None,
              max_concurrency: int | None = None) -> Harness:  # fmt: skip
        h = Harness(make_engine(source, chunk=chunk, rate=rate, max_concurrency=max_concurrency), settings)
        started.append(h)
        return h

    yield start
    for h in started:
        h.close()


@pytest.fixture
def store(tmp_path: Any) -> Iterator[Store]:
    s = Store(tmp_path / "streamchat.db")
    yield s
    s.close()


def collect(events: Any) -> list[ReplyEvent]:
    return list(events)


def wait_until(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def interrupt_after(reply: Any, deltas: int, kind: str = "text") -> list[ReplyEvent]:
    """Iterate until `deltas` deltas of `kind`, raise KeyboardInterrupt there, then interrupt and drain."""
    seen: list[ReplyEvent] = []
    try:
        for event in reply:
            seen.append(event)
            if sum(isinstance(e, Delta) and e.kind == kind for e in seen) >= deltas:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        reply.interrupt()
        seen.extend(reply)  # drain: the TurnEnd comes next
    return seen


def text_of(message: Any) -> str:
    return "".join(b.get("text", "") for b in message.content if b.get("type") == "text")
