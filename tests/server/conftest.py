"""Fixtures for the server tests: `serve(script, ...)` starts a real server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from server_harness import Serve, Served, running_servers


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start servers over a RecordingEngine; all are stopped after the test.

    `serve(script, chunk=, rate=, max_concurrency=, engine=, **ServerSettings fields)`.
    """
    yield from running_servers()


@pytest.fixture(scope="module")
def shared_server() -> Iterator[Served]:
    """One default server for a module's stateless checks (saves a start and stop per test)."""
    for start in running_servers():
        yield start()
