"""The interface every engine implements."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Protocol

from ..api.request import MessagesRequest
from ..api.stream import Part


class EngineError(Exception):
    """A generation failed; after the stream started the server sends it as `event: error`."""


class Engine(Protocol):
    """Generates replies as streams of parts, up to `max_concurrency` at once.

    `generate` yields text/thinking/tool parts and ends with exactly one `Finish`, unless `cancel`
    is set, after which it stops between tokens. It runs in a worker thread, one per reply; the
    server admits at most `max_concurrency` of them at a time (the rest wait in its fair queue).
    """

    model_id: str
    display_name: str
    max_concurrency: int | None  # generations at once (llama: --parallel); None = no limit
    accepts_media: bool

    def count_tokens(self, request: MessagesRequest) -> int:
        """Exact input tokens of the request's prompt."""
        ...

    def generate(self, request: MessagesRequest, cancel: threading.Event) -> Iterator[Part]:
        """Stream the reply's parts."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...
