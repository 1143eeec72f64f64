"""A run's events over Server-Sent Events: `id: <seq>`, resume after `Last-Event-ID`, heartbeats.

The stream starts after the seq the page already has (`Last-Event-ID`, which EventSource sends by
itself when it reconnects, or `?after=N` on the first connection) and ends after the run's `end`
event. A log that lost the events after that seq sends `event: gone` instead of skipping them: the
page then reloads the message from the store. Within one batch a part's `tail` that a later event
of the batch replaces is not sent (a page that fell behind catches up with one tail, not all).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from .eventlog import EventLog, LoggedEvent, LogGone, LogRead

HEARTBEAT = 10.0  # seconds between comments on an idle stream (proxies drop silent ones)
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no", "connection": "keep-alive"}
RETRY_MS = 1000


def resume_point(request: Request) -> int:
    """The last seq the page has: `Last-Event-ID` when it reconnects, else `?after=`, else 0."""
    for raw in (request.headers.get("last-event-id"), request.query_params.get("after")):
        if raw is not None and raw.strip().isdigit():
            return int(raw.strip())
    return 0


def _part(event: LoggedEvent) -> int | None:
    if event.type not in ("tail", "part_end"):
        return None
    part = event.payload().get("part")
    return part if isinstance(part, int) else None


def live_events(events: list[LoggedEvent]) -> list[LoggedEvent]:
    """The batch less the tails that a later tail or end of the same part replaces."""
    replaced: set[int] = set()
    kept: list[LoggedEvent] = []
    for event in reversed(events):
        part = _part(event)
        if event.type == "tail" and part in replaced:
            continue
        if part is not None:
            replaced.add(part)
        kept.append(event)
    kept.reverse()
    return kept


def encode_events(events: list[LoggedEvent]) -> bytes:
    """SSE frames for a batch of logged events."""
    return "".join(f"id: {e.seq}\nevent: {e.type}\ndata: {e.data}\n\n" for e in live_events(events)).encode()


def gone_frame(reason: str) -> bytes:
    """The frame that tells the page to reload the message from the store."""
    return f"event: gone\ndata: {json.dumps({'reason': reason})}\n\n".encode()


async def event_stream(log: EventLog, log_id: str, after: int) -> Response:
    """The SSE response for one reader of a log, from the event after `after`."""
    first: LogRead | None = None
    gone = ""
    try:
        first = await log.read(log_id, after, 0)
    except LogGone as exc:
        gone = str(exc)
    if first is not None and not first.events and first.closed:
        return Response(status_code=204)  # nothing more will come: EventSource stops reconnecting

    async def frames(read: LogRead | None) -> AsyncIterator[bytes]:
        yield f"retry: {RETRY_MS}\n\n".encode()
        if read is None:
            yield gone_frame(gone)
            return
        cursor = after
        while True:
            if read.events:
                cursor = read.events[-1].seq
                yield encode_events(read.events)
            elif not read.closed:
                yield b": ping\n\n"
            if read.closed:
                return
            try:
                read = await log.read(log_id, cursor, HEARTBEAT)
            except LogGone as exc:
                yield gone_frame(str(exc))
                return

    return StreamingResponse(frames(first), media_type="text/event-stream", headers=SSE_HEADERS)
