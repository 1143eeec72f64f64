"""Runs: a reply streaming on the server, detached from any HTTP connection.

Starting a run returns its id at once. A reader thread iterates the `Conversation`'s `Reply` (the
reply saves itself to the store as it streams, so the run is the only writer of its reply); an
encoder thread turns its events into page events (`protocol.ReplyEncoder`, tails paced to ~30 a
second) and hands them to the event loop, where one task appends them to the run's event log in
order. Pages read the log over SSE; closing a page changes nothing here. Stop is a command:
`Run.stop()` interrupts the reply, which closes its HTTP stream, so the engine stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..chat.conversation import Conversation, Reply
from ..chat.events import ReplyEvent, ToolCall, TurnEnd
from .eventlog import EventLog
from .protocol import ReplyEncoder, WebEvent

TOOL_ANSWER_TIMEOUT = 300.0  # seconds a tool call waits for Allow / Deny before it is denied

_END = object()
Deliver = Callable[[list[WebEvent] | None], None]  # hands encoded events to the loop (None: no more)


class RunConflict(Exception):
    """The conversation already has a reply running."""


@dataclass
class _Ask:
    """A tool call waiting for the page's answer."""

    tool_id: str
    name: str
    answered: threading.Event = field(default_factory=threading.Event)
    allow: bool = False


@dataclass
class Run:
    """One reply being generated: its id, its conversation, its state; `stop()` ends it."""

    id: str
    conversation_id: str
    kind: str  # send | regenerate | continue | edit
    position: int = 0  # store index of the reply's first message (the continued one for `continue`)
    status: str = "starting"  # starting | running | complete | interrupted | error
    started: float = field(default_factory=time.monotonic)
    reply: Reply | None = None
    end: TurnEnd | None = None
    done: threading.Event = field(default_factory=threading.Event)
    _stopped: threading.Event = field(default_factory=threading.Event)
    _asks: dict[str, _Ask] = field(default_factory=dict)
    _inbox: queue.SimpleQueue[Any] = field(default_factory=queue.SimpleQueue)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def running(self) -> bool:
        """True until the reply has ended."""
        return not self.done.is_set()

    @property
    def stopped(self) -> bool:
        """True once Stop was asked for."""
        return self._stopped.is_set()

    def stop(self) -> None:
        """Stop the reply now: the engine stops, the partial reply is kept as interrupted."""
        self._stopped.set()
        with self._lock:
            asks = list(self._asks.values())
        for ask in asks:
            ask.answered.set()  # a pending tool question counts as Deny
        reply = self.reply
        if reply is not None:
            reply.interrupt()

    def answer(self, tool_id: str, allow: bool) -> bool:
        """The page's Allow / Deny for a pending tool call; False if no such call is waiting."""
        with self._lock:
            ask = self._asks.get(tool_id)
        if ask is None or ask.answered.is_set():
            return False
        ask.allow = allow
        ask.answered.set()
        return True

    def confirm(self, name: str, data: dict[str, Any]) -> bool:
        """The conversation's tool confirmation: ask the page and wait (timeout or Stop: deny)."""
        tool_id = self._pending_call_id(name)
        ask = _Ask(tool_id, name)
        with self._lock:
            self._asks[tool_id] = ask
        self._inbox.put(("ask", ask))
        if not self._stopped.is_set():
            ask.answered.wait(TOOL_ANSWER_TIMEOUT)
        allow = ask.allow and not self._stopped.is_set()
        self._inbox.put(("answer", ask.tool_id, allow))
        with self._lock:
            self._asks.pop(tool_id, None)
        return allow

    def _pending_call_id(self, name: str) -> str:
        # The reply yields ToolCall just before it asks; the reader thread noted its id.
        return self._last_call.id if self._last_call is not None and self._last_call.name == name else name

    _last_call: ToolCall | None = None

    def describe(self) -> dict[str, Any]:
        """The run as the JSON API shows it."""
        with self._lock:
            asks = [a for a in self._asks.values() if not a.answered.is_set()]
        waiting = [{"id": a.tool_id, "name": a.name} for a in asks]
        return {
            "id": self.id, "conversation_id": self.conversation_id, "kind": self.kind,
            "position": self.position, "status": self.status, "waiting_tools": waiting,
        }  # fmt: skip


class Runs:
    """The runs of one server: at most one per conversation; their events go to `log`."""

    def __init__(self, log: EventLog, *, max_fps: float = 30.0) -> None:
        self.log = log
        self.max_fps = max_fps
        self._runs: dict[str, Run] = {}
        self._active: dict[str, Run] = {}  # conversation id -> its running run
        self.started = 0
        self._pumps: set[asyncio.Task[None]] = set()  # held, so a running pump is never collected

    def get(self, run_id: str) -> Run | None:
        """A run by id (finished runs are kept while their log is)."""
        return self._runs.get(run_id)

    def active(self, conversation_id: str) -> Run | None:
        """The conversation's running reply, if any."""
        run = self._active.get(conversation_id)
        return run if run is not None and run.running else None

    @property
    def running(self) -> int:
        """How many replies are running now."""
        return sum(1 for run in self._active.values() if run.running)

    def reserve(self, conversation_id: str, kind: str) -> Run:
        """Claim the conversation for a new run, or raise RunConflict if one is running."""
        if self.active(conversation_id) is not None:
            raise RunConflict("a reply is already running in this conversation: stop it or wait for it")
        run = Run(uuid.uuid4().hex, conversation_id, kind)
        self._active[conversation_id] = run
        return run

    def release(self, run: Run) -> None:
        """Give up a reserved run that never started (its request failed)."""
        run.done.set()
        if self._active.get(run.conversation_id) is run:
            del self._active[run.conversation_id]

    async def start(self, run: Run, conversation: Conversation, reply: Reply, *, position: int,
                    seed: list[dict[str, Any]] | None = None) -> None:  # fmt: skip
        """Start streaming `reply` (already created on `conversation` with `run.confirm`)."""
        loop = asyncio.get_running_loop()
        run.reply = reply
        run.position = position
        run.status = "running"
        self._runs[run.id] = run
        self.started += 1
        self._forget_finished()
        await self.log.create(run.id)
        outbox: asyncio.Queue[list[WebEvent] | None] = asyncio.Queue()
        options = conversation.options
        encoder = ReplyEncoder(options.model, options.local, self.max_fps)
        first: list[WebEvent] = [("start", {
            "run_id": run.id, "conversation_id": run.conversation_id, "kind": run.kind,
            "position": position, "model": options.model,
        })]  # fmt: skip
        if seed:
            first += encoder.seed(seed)
        outbox.put_nowait(first)

        def deliver(events: list[WebEvent] | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the server is shutting down
                loop.call_soon_threadsafe(outbox.put_nowait, events)

        threading.Thread(target=self._read, args=(run, reply), name=f"run-reader-{run.id[:8]}",
                         daemon=True).start()  # fmt: skip
        threading.Thread(target=self._encode, args=(run, encoder, deliver), name=f"run-encoder-{run.id[:8]}",
                         daemon=True).start()  # fmt: skip
        self._pumps.add(pump := loop.create_task(self._pump(run, outbox)))
        pump.add_done_callback(self._pumps.discard)

    # -- the threads and the pump -------------------------------------------------------------------

    def _read(self, run: Run, reply: Reply) -> None:
        """Iterate the reply (it saves itself as it streams); every event goes to the encoder."""
        try:
            for event in reply:
                if isinstance(event, ToolCall):
                    run._last_call = event
                run._inbox.put(("event", event))
        except BaseException as exc:  # the Reply reports failures as a TurnEnd; this is a bug
            run._inbox.put(("event", TurnEnd("error", None, 0, 0, error=f"internal error: {exc!r}")))
        finally:
            run._inbox.put(_END)

    def _encode(self, run: Run, encoder: ReplyEncoder, deliver: Deliver) -> None:
        """Encode the reply's events, sending held-back tails when their frame is due."""
        try:
            while True:
                due = encoder.next_due()
                try:
                    item = run._inbox.get(timeout=max(0.0, due - time.monotonic())) if due is not None \
                        else run._inbox.get()  # fmt: skip
                except queue.Empty:
                    deliver(encoder.flush())
                    continue
                if item is _END:
                    break
                events = self._encode_item(run, encoder, item)
                if events:
                    deliver(events)
        finally:
            deliver(encoder.close())
            deliver(None)

    @staticmethod
    def _encode_item(run: Run, encoder: ReplyEncoder, item: Any) -> list[WebEvent]:
        kind = item[0]
        if kind == "ask":
            ask: _Ask = item[1]
            return encoder.ask(ask.tool_id, ask.name)
        if kind == "answer":
            return encoder.answer(item[1], item[2])
        event: ReplyEvent = item[1]
        if isinstance(event, TurnEnd):
            run.end = event
        return encoder.encode(event)

    async def _pump(self, run: Run, outbox: asyncio.Queue[list[WebEvent] | None]) -> None:
        """Append the encoded events to the log in order; close it when the run is over."""
        try:
            while (events := await outbox.get()) is not None:
                for kind, data in events:
                    if kind == "end":  # the reply is saved: the conversation is free once pages hear it
                        self._finish(run)
                    await self.log.append(run.id, kind, data)
        finally:
            self._finish(run)
            await self.log.close(run.id)

    def _finish(self, run: Run) -> None:
        if run.done.is_set():
            return
        end = run.end
        run.status = end.status if end is not None else "error"
        run.done.set()
        if self._active.get(run.conversation_id) is run:
            del self._active[run.conversation_id]

    def _forget_finished(self, keep: int = 256) -> None:
        finished = [run_id for run_id, run in self._runs.items() if not run.running]
        for run_id in finished[: max(0, len(finished) - keep)]:
            del self._runs[run_id]

    def stop_all(self) -> None:
        """Stop every running reply (the server is shutting down)."""
        for run in list(self._active.values()):
            run.stop()
