"""Runs an engine in a worker thread and hands its parts to the event loop in batches."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable

from ..api.request import MessagesRequest
from ..api.stream import Part
from ..engines.base import Engine

_DONE = object()
# Parts an engine may run ahead of its client: bounds memory and keeps each batch (encoded on the
# event loop in one go) short, so a fast engine can't stall the loop or fill memory.
MAX_BUFFERED_PARTS = 512


class EngineFailure(Exception):
    """Wraps an exception raised by the engine thread."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause) or type(cause).__name__)
        self.cause = cause


class Generation:
    """One engine run in its own thread; iterate `batches()` on the loop; `cancel()` stops it."""

    def __init__(self, engine: Engine, request: MessagesRequest, on_exit: Callable[[], None],
                 *, max_buffered: int = MAX_BUFFERED_PARTS) -> None:  # fmt: skip
        self._engine = engine
        self._request = request
        self._on_exit = on_exit  # called on the loop once the thread has really stopped
        self._loop = asyncio.get_running_loop()
        self._items: deque[object] = deque()
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)  # the engine waits here while the buffer is full
        self._max_buffered = max_buffered
        self._wake = asyncio.Event()
        self._sleeping = False
        self.cancel_event = threading.Event()
        self.finished = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="streamchat-generation", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        with self._lock:
            self.cancel_event.set()
            self._space.notify_all()

    def _push(self, item: object) -> None:
        with self._lock:
            while len(self._items) >= self._max_buffered and not self.cancel_event.is_set():
                self._space.wait()
            self._items.append(item)
            wake = self._sleeping
            self._sleeping = False
        if wake:  # only cross threads when the consumer is actually waiting
            self._loop.call_soon_threadsafe(self._wake.set)

    def _run(self) -> None:
        try:
            for part in self._engine.generate(self._request, self.cancel_event):
                self._push(part)
                if self.cancel_event.is_set():
                    break
            self._push(_DONE)
        except BaseException as exc:  # reported to the client as a stream error
            self._push(EngineFailure(exc))
        finally:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the server is shutting down
                self._loop.call_soon_threadsafe(self._exited)

    def _exited(self) -> None:
        self.finished.set()
        self._on_exit()

    async def batches(self) -> AsyncIterator[list[Part]]:
        """Yield every part produced since the last batch; raise EngineFailure on engine errors."""
        while True:
            with self._lock:
                items = list(self._items)
                self._items.clear()
                self._space.notify()
                if not items:
                    self._sleeping = True
                    self._wake.clear()
            if not items:
                await self._wake.wait()
                continue
            parts: list[Part] = []
            for item in items:
                if item is _DONE:
                    if parts:
                        yield parts
                    return
                if isinstance(item, EngineFailure):
                    if parts:
                        yield parts
                    raise item
                parts.append(item)  # type: ignore[arg-type]
            yield parts
            # Let the loop run between batches: sends to a gone client return at once, and without
            # this a fast engine would keep the loop from ever noticing the disconnect.
            await asyncio.sleep(0)
