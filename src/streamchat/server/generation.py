"""Runs an engine in a worker thread and hands its parts to the event loop in batches."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable

from ..api.request import MessagesRequest
from ..api.stream import Part
from ..engines.base import Engine

_DONE = object()


class EngineFailure(Exception):
    """Wraps an exception raised by the engine thread."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause) or type(cause).__name__)
        self.cause = cause


class Generation:
    """One engine run in its own thread; iterate `batches()` on the loop; `cancel()` stops it."""

    def __init__(self, engine: Engine, request: MessagesRequest, on_exit: Callable[[], None]) -> None:
        self._engine = engine
        self._request = request
        self._on_exit = on_exit  # called on the loop once the thread has really stopped
        self._loop = asyncio.get_running_loop()
        self._items: deque[object] = deque()
        self._lock = threading.Lock()
        self._wake = asyncio.Event()
        self._sleeping = False
        self.cancel_event = threading.Event()
        self.finished = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="streamchat-generation", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        self.cancel_event.set()

    def _push(self, item: object) -> None:
        with self._lock:
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
            try:
                self._loop.call_soon_threadsafe(self._exited)
            except RuntimeError:  # the loop is closed: the server is shutting down
                pass

    def _exited(self) -> None:
        self.finished.set()
        self._on_exit()

    async def batches(self) -> AsyncIterator[list[Part]]:
        """Yield every part produced since the last batch; raise EngineFailure on engine errors."""
        while True:
            with self._lock:
                items = list(self._items)
                self._items.clear()
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
