"""Fixtures for the server tests: `serve(script, ...)` starts a real server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from server_harness import RecordingEngine, Served

from streamchat.server import ServerSettings, ServerThread, create_app

Serve = Callable[..., Served]


def _servers() -> Iterator[Serve]:
    started: list[ServerThread] = []

    def start(
        script: Any = "Hello from the script engine.",
        *,
        chunk: int = 4,
        rate: float = 0.0,
        max_concurrency: int | None = None,
        **settings: Any,
    ) -> Served:
        engine = RecordingEngine(script, chunk=chunk, rate=rate, max_concurrency=max_concurrency)
        app = create_app(engine, ServerSettings(**settings))
        thread = ServerThread(app)
        url = thread.start()
        started.append(thread)
        return Served(url, app.app.state.api, engine, thread)

    yield start
    for thread in started:
        thread.stop()


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start servers over a RecordingEngine; all are stopped after the test.

    `serve(script, chunk=, rate=, max_concurrency=, **ServerSettings fields)`.
    """
    yield from _servers()


@pytest.fixture(scope="module")
def shared_server() -> Iterator[Served]:
    """One default server for a module's stateless checks (saves a start and stop per test)."""
    for start in _servers():
        yield start()
