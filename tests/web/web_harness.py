"""A real web chat server on 127.0.0.1: the composed app (web chat + /v1) over a recording script
engine, a real SQLite store, the real SDK between them; and a small SSE reader for the tests."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx2 as httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "render"))

from html_pieces import assemble
from server_harness import RecordingEngine, wait_until

from streamchat.chat.store import Store
from streamchat.server import ServerSettings, ServerThread, create_app
from streamchat.server.app import MessagesAPI
from streamchat.web import ChatDefaults, Chats, Guard, WebChat, compose
from streamchat.web.app import api_counters

__all__ = ["Event", "RecordingEngine", "WebServer", "assemble", "page_html", "read_events", "wait_until"]


@dataclass
class Event:
    """One SSE event as the page receives it."""

    seq: int | None
    type: str
    data: dict[str, Any]


def page_html(events: list[Event], part: int | None = None) -> str:
    """The finished HTML a page builds from a reply's `blocks`, `fence` and `lines` events (of one part)."""
    wanted = [e for e in events if e.type in ("blocks", "fence", "lines") and part in (None, e.data["part"])]
    pieces = [(e.type, str(e.data["html"]), bool(e.data.get("end"))) for e in wanted]
    return assemble(pieces)


def parse_sse(lines: Iterator[str]) -> Iterator[Event | str]:
    """Events from SSE lines; comments come out as the string after the colon."""
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "event" in fields or "data" in fields:
                seq = int(fields["id"]) if fields.get("id", "").isdigit() else None
                data = json.loads(fields["data"]) if fields.get("data") else {}
                yield Event(seq, fields.get("event", "message"), data)
            fields = {}
        elif line.startswith(":"):
            yield line[1:].strip()
        else:
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value


def read_events(
    client: httpx.Client,
    run_id: str,
    *,
    after: int | None = None,
    last_event_id: int | None = None,
    stop: Callable[[Event], bool] | None = None,
) -> list[Event]:
    """Read a run's SSE stream until it ends (or `stop(event)` is true); comments are skipped."""
    headers = {"last-event-id": str(last_event_id)} if last_event_id is not None else {}
    params = {"after": str(after)} if after is not None else {}
    events: list[Event] = []
    with client.stream(
        "GET", f"/api/runs/{run_id}/events", headers=headers, params=params, timeout=30
    ) as resp:
        assert resp.status_code == 200, resp.status_code
        for item in parse_sse(resp.iter_lines()):
            if isinstance(item, Event):
                events.append(item)
                if stop is not None and stop(item):
                    break
    return events


@dataclass
class WebServer:
    """A running web chat and everything a test looks at."""

    url: str
    engine: RecordingEngine
    api: MessagesAPI
    web: WebChat
    store: Store
    thread: ServerThread
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, **options: Any) -> httpx.Client:
        """An HTTP client that behaves like the page: same-origin requests with an Origin header."""
        options.setdefault("headers", {"origin": self.url})
        client = httpx.Client(base_url=self.url, timeout=30, **options)
        self.clients.append(client)
        return client

    def logged(self, run_id: str) -> list[Any]:
        """Every event the run's log holds (a read that finds events returns without waiting)."""
        with ThreadPoolExecutor(1) as pool:
            read = pool.submit(asyncio.run, self.web.log.read(run_id, 0, 0)).result()
        return list(read.events)

    def engine_idle(self) -> bool:
        """No generation running in the engine (the server's own counter)."""
        return self.api.generations_running == 0

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.web.runs.stop_all()
        self.thread.stop()
        self.store.close()


def start_web(script: Any, home: Path, *, chunk: int = 4, rate: float = 0.0, guard: Guard | None = None,
              tools: Any | None = None, **defaults: Any) -> WebServer:  # fmt: skip
    """A web chat server over a RecordingEngine replaying `script`, its store in `home`."""
    engine = RecordingEngine(script, chunk=chunk, rate=rate)
    api_app = create_app(engine, ServerSettings())
    store = Store(home / "streamchat.db")
    defaults.setdefault("max_tokens", 16384)  # the script engine counts a token per delta: 1-char deltas
    chats = Chats(store, ChatDefaults(model=engine.model_id, local=True, **defaults), None, tools=tools)
    web = WebChat(chats, guard or Guard(), counters=api_counters(api_app))
    thread = ServerThread(compose(web, api_app))
    url = thread.start()
    chats.bind(anthropic.Anthropic(api_key="local", base_url=url, max_retries=0))
    return WebServer(url, engine, api_app.app.state.api, web, store, thread)


def web_servers(tmp_path: Path) -> Iterator[Callable[..., WebServer]]:
    """A `start(script, **options)` that starts servers in their own homes; all stop at the end."""
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
