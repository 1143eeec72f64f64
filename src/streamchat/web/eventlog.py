"""The event log of a run: consecutive sequence numbers, read from any of them, wait for more.

A run appends its events here; every page that watches the reply reads them over SSE, each with
`id: <seq>`, and resumes after a dropped connection from the last seq it saw. The interface holds
nothing that only works in one process: it is async, events are JSON, and the seq is the only
cursor, so a Redis Streams log (XADD with id `<seq>-0`, XREAD BLOCK, XTRIM, EXPIRE) fits it as is.

A log that no longer holds the events after a reader's seq (trimmed, expired, or unknown) raises
`LogGone` rather than skip the gap: the page then reloads the message from the store.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol


class LogGone(Exception):
    """The log does not hold what was asked for any more (or never existed)."""


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One event as stored: its seq, its type and its data as a JSON object text."""

    seq: int
    type: str
    data: str  # JSON object text, encoded once at append time

    def payload(self) -> dict[str, Any]:
        """The data, decoded."""
        value = json.loads(self.data)
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class LogRead:
    """What one read returned: events in seq order, and whether the log has ended after them."""

    events: list[LoggedEvent]
    closed: bool  # the log is closed and nothing follows these events


class EventLog(Protocol):
    """Append-only logs of run events, by log id. Every method may be called from any connection."""

    async def create(self, log_id: str) -> None:
        """Start an empty log (its first event gets seq 1)."""

    async def append(self, log_id: str, type: str, data: dict[str, Any]) -> int:
        """Add one event; return its seq (one more than the previous). `data` must be JSON-serializable."""

    async def close(self, log_id: str) -> None:
        """No more events: readers that reach the end stop; the log expires some time later."""

    async def read(self, log_id: str, after: int, timeout: float) -> LogRead:
        """The events with seq > `after`, waiting up to `timeout` seconds for the first one.

        Returns an empty read on timeout. Raises LogGone when the events right after `after` are no
        longer held (trimmed or expired) or the log is unknown.
        """


@dataclass
class _Log:
    events: deque[LoggedEvent] = field(default_factory=deque)
    next_seq: int = 1
    size: int = 0  # bytes of event data held
    closed_at: float | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def first_seq(self) -> int:
        return self.events[0].seq if self.events else self.next_seq


class MemoryEventLog:
    """The in-process EventLog: logs in a dict, readers woken by an asyncio.Event per log.

    A log holds at most `max_bytes` of event data (the oldest events are trimmed past that) and is
    forgotten `ttl` seconds after it is closed. Use it from one event loop.
    """

    def __init__(self, *, max_bytes: int = 8 * 1024 * 1024, ttl: float = 600.0) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._logs: dict[str, _Log] = {}

    def _expire(self) -> None:
        now = time.monotonic()
        expired = [k for k, log in self._logs.items() if log.closed_at and now - log.closed_at > self.ttl]
        for log_id in expired:
            del self._logs[log_id]

    def _get(self, log_id: str) -> _Log:
        log = self._logs.get(log_id)
        if log is None:
            raise LogGone(f"no event log {log_id!r}")
        return log

    async def create(self, log_id: str) -> None:
        """Start an empty log."""
        self._expire()
        self._logs[log_id] = _Log()

    async def append(self, log_id: str, type: str, data: dict[str, Any]) -> int:
        """Add one event and wake the readers."""
        log = self._get(log_id)
        if log.closed_at is not None:
            raise RuntimeError(f"event log {log_id!r} is closed")
        event = LoggedEvent(log.next_seq, type, json.dumps(data, ensure_ascii=False, separators=(",", ":")))
        log.next_seq += 1
        log.events.append(event)
        log.size += len(event.data)
        while log.size > self.max_bytes and len(log.events) > 1:
            log.size -= len(log.events.popleft().data)
        log.changed.set()
        log.changed = asyncio.Event()
        return event.seq

    async def close(self, log_id: str) -> None:
        """Mark the log ended and wake the readers."""
        log = self._get(log_id)
        if log.closed_at is None:
            log.closed_at = time.monotonic()
            log.changed.set()
            log.changed = asyncio.Event()

    async def read(self, log_id: str, after: int, timeout: float) -> LogRead:
        """Events after `after`, waiting up to `timeout` for one."""
        log = self._get(log_id)
        if after + 1 < log.first_seq or after >= log.next_seq:
            raise LogGone(f"event log {log_id!r} does not hold the events after {after}")
        if after + 1 == log.next_seq and log.closed_at is None:
            changed = log.changed
            try:
                await asyncio.wait_for(changed.wait(), timeout)
            except TimeoutError:
                return LogRead([], False)
            log = self._get(log_id)
            if after + 1 < log.first_seq:
                raise LogGone(f"event log {log_id!r} was trimmed past {after}")
        start = after + 1 - log.first_seq
        events = [log.events[i] for i in range(start, len(log.events))]
        return LogRead(events, log.closed_at is not None)

    def __len__(self) -> int:
        return len(self._logs)
