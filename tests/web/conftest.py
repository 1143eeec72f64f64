"""Fixtures of the web tests: `web(script, ...)` starts a real web chat server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from web_harness import WebServer, start_web


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Callable[..., WebServer]]:
    """Start web chat servers: `web(script, chunk=, rate=, guard=, tools=, **ChatDefaults)`."""
    started: list[WebServer] = []

    def start(script: Any = "Hello from the web chat.", **options: Any) -> WebServer:
        home = tmp_path / f"home{len(started)}"
        home.mkdir()
        server = start_web(script, home, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()
