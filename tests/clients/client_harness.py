"""What the client tests share: npm projects installed from their committed lock files (`npm ci`),
a quiet environment for clients, and an engine that keeps the requests it answered."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from server_harness import RecordingEngine, npm_ci

__all__ = ["HERE", "RequestLog", "npm_ci", "quiet_env"]

from streamchat.api.request import MessagesRequest
from streamchat.api.stream import Part

HERE = Path(__file__).resolve().parent


def quiet_env(base_url: str, api_key: str, home: Path | None = None) -> dict[str, str]:
    """An environment that points a client at `base_url` and keeps it from reaching anything else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE", "OTEL_"))}
    env.update({
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": api_key,
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "NO_COLOR": "1",
        "HOME": str(home or Path(tempfile.mkdtemp(prefix="streamchat-client-home-"))),
    })  # fmt: skip
    return env


class RequestLog(RecordingEngine):
    """A RecordingEngine that also keeps every request it was asked to answer, as parsed."""

    def __init__(self, script: Any, *, chunk: int = 7) -> None:
        super().__init__(script, chunk=chunk)
        self.requests: list[MessagesRequest] = []
        self._lock = threading.Lock()

    def generate(self, request: MessagesRequest, cancel: threading.Event) -> Iterator[Part]:
        with self._lock:
            self.requests.append(request)
        yield from super().generate(request, cancel)
