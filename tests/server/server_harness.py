"""Real servers for the server tests: a ServerThread on 127.0.0.1 over a recording script engine."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic

from streamchat.api.request import MessagesRequest
from streamchat.api.stream import Part
from streamchat.engines.script import ScriptEngine, parse_script
from streamchat.server import ServerSettings, ServerThread, create_app
from streamchat.server.app import MessagesAPI

API_KEY = "sk-test-local"
USER = [{"role": "user", "content": "Hello"}]


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Wait for a condition another thread makes true (polled; fails after `timeout`)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        pause.wait(0.002)


@dataclass
class Run:
    """One call of `generate`, as the engine saw it."""

    prompt: str
    started: float
    part_times: list[float] = field(default_factory=list)
    exited: float | None = None
    cancelled: bool = False
    done: threading.Event = field(default_factory=threading.Event)

    def parts_after(self, moment: float) -> int:
        return sum(1 for t in self.part_times if t > moment)


def _last_user_text(request: MessagesRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            return "".join(str(b.get("text", "")) for b in message.content if b.get("type") == "text")
    return ""


class RecordingEngine(ScriptEngine):
    """A ScriptEngine that records every generation and can hold one at a gate until released.

    A request whose last user text is in `hold` waits (before its first part) until `release(text)`.
    """

    def __init__(
        self,
        script: str | list[Any] | dict[str, Any],
        *,
        chunk: int = 4,
        rate: float = 0.0,
        max_concurrency: int | None = None,
        seed: int = 0,
    ) -> None:
        source = script if isinstance(script, str) else json.dumps(script)
        super().__init__(
            parse_script(source, as_json=not isinstance(script, str)), chunk=chunk, rate=rate, seed=seed
        )
        self.max_concurrency = max_concurrency
        self.runs: list[Run] = []
        self.changed = threading.Condition()
        self.hold: set[str] = set()
        self.record_parts = True  # off for soak tests, where the timestamps would be the growth
        self._gates: dict[str, threading.Event] = {}

    def release(self, prompt: str) -> None:
        with self.changed:
            self._gates.setdefault(prompt, threading.Event()).set()

    def wait_runs(self, count: int, timeout: float = 5.0) -> list[Run]:
        """Wait until `count` generations have started; return them in start order."""
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.runs) >= count, timeout):
                raise AssertionError(f"only {len(self.runs)} of {count} generations started")
            return list(self.runs)

    def generate(self, request: MessagesRequest, cancel: threading.Event) -> Iterator[Part]:
        run = Run(_last_user_text(request), time.monotonic())
        with self.changed:
            self.runs.append(run)
            gate = self._gates.setdefault(run.prompt, threading.Event()) if run.prompt in self.hold else None
            self.changed.notify_all()
        try:
            while gate is not None and not gate.wait(0.005):
                if cancel.is_set():
                    return
            for part in super().generate(request, cancel):
                if self.record_parts:
                    run.part_times.append(time.monotonic())
                yield part
        finally:
            run.exited = time.monotonic()
            run.cancelled = cancel.is_set()
            run.done.set()
            with self.changed:
                self.changed.notify_all()


@dataclass
class Served:
    """A running server and what the tests look at."""

    url: str
    api: MessagesAPI
    engine: RecordingEngine
    thread: ServerThread

    def client(self, **options: Any) -> anthropic.Anthropic:
        """The real SDK, strict: every response is validated against its types."""
        options.setdefault("api_key", API_KEY)
        options.setdefault("max_retries", 0)
        return anthropic.Anthropic(base_url=self.url, _strict_response_validation=True, **options)

    def async_client(self, **options: Any) -> anthropic.AsyncAnthropic:
        options.setdefault("api_key", API_KEY)
        options.setdefault("max_retries", 0)
        return anthropic.AsyncAnthropic(base_url=self.url, _strict_response_validation=True, **options)

    def idle(self) -> bool:
        """No generation running or waiting, every slot free."""
        admission = self.api.admission
        return self.api.generations_running == 0 and admission.active == 0 and admission.waiting == 0


Serve = Callable[..., Served]


def running_servers() -> Iterator[Serve]:
    """Yield `serve(script, chunk=, rate=, max_concurrency=, engine=, **ServerSettings fields)`, which
    starts a real server (over a RecordingEngine unless `engine` is given); stops them all after."""
    started: list[ServerThread] = []

    def start(
        script: Any = "Hello from the script engine.",
        *,
        chunk: int = 4,
        rate: float = 0.0,
        max_concurrency: int | None = None,
        engine: Any = None,
        **settings: Any,
    ) -> Served:
        engine = engine or RecordingEngine(script, chunk=chunk, rate=rate, max_concurrency=max_concurrency)
        app = create_app(engine, ServerSettings(**settings))
        thread = ServerThread(app)
        url = thread.start()
        started.append(thread)
        return Served(url, app.app.state.api, engine, thread)

    yield start
    for thread in started:
        thread.stop()


def npm_ci(project: Path) -> None:
    """Install an npm project from its committed lock file, unless this exact lock is installed already
    (`make test` runs the same `npm ci` first; this covers a test run on its own)."""
    digest = hashlib.sha256((project / "package-lock.json").read_bytes()).hexdigest()
    stamp = project / "node_modules" / ".streamchat-lock"
    if stamp.exists() and stamp.read_text() == digest:
        return
    npm = shutil.which("npm")
    assert npm, "npm (Node.js 20 or newer) is needed for this test"
    result = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=project, capture_output=True,
                            text=True, timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    stamp.write_text(digest)
