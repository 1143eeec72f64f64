"""Fixtures of the web tests: `web(script, ...)` starts a real web chat server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from web_harness import WebServer, web_servers


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Callable[..., WebServer]]:
    """Start web chat servers: `web(script, chunk=, rate=, guard=, tools=, **ChatDefaults)`."""
    yield from web_servers(tmp_path)
