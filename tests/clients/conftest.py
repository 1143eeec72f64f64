"""Fixtures for the client tests: real third-party clients, installed from their lock files, against
a real streamchat server on 127.0.0.1 (the server tests' harness: RecordingEngine, Served)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_SERVER_TESTS = str(Path(__file__).resolve().parents[1] / "server")
if _SERVER_TESTS not in sys.path:
    sys.path.insert(0, _SERVER_TESTS)

from server_harness import Serve, running_servers  # noqa: E402


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start servers (see `server_harness.running_servers`); all are stopped after the test."""
    yield from running_servers()
