"""A fair (FIFO) admission queue: `capacity` generations at once, at most `max_queue` waiting."""

from __future__ import annotations

import asyncio
from collections import deque

from ..api.errors import OverloadedError


class Admission:
    """Hands out generation slots in arrival order; refuses with 529 when the queue is full."""

    def __init__(self, capacity: int | None, max_queue: int, *, retry_after: int = 1) -> None:
        if capacity is not None and capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self.max_queue = max_queue
        self.retry_after = retry_after
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def reserve(self) -> asyncio.Future[None]:
        """Join the queue now (or raise 529); await the returned future to get the slot."""
        loop = asyncio.get_running_loop()
        ticket: asyncio.Future[None] = loop.create_future()
        if self.capacity is None or (self.active < self.capacity and not self._waiters):
            self.active += 1
            ticket.set_result(None)
            return ticket
        if len(self._waiters) >= self.max_queue:
            raise OverloadedError("Overloaded", headers={"retry-after": str(self.retry_after)})
        self._waiters.append(ticket)
        return ticket

    def abandon(self, ticket: asyncio.Future[None]) -> None:
        """Leave the queue (client gone): drop the ticket, or release the slot it already holds."""
        if ticket in self._waiters:
            self._waiters.remove(ticket)
            ticket.cancel()
        elif ticket.done() and not ticket.cancelled():
            self.release()

    def release(self) -> None:
        """Give a finished generation's slot to the next waiter, if any."""
        while self._waiters:
            nxt = self._waiters.popleft()
            if not nxt.done():
                nxt.set_result(None)  # the slot passes on: active stays the same
                return
        self.active -= 1
