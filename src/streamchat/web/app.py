"""The web chat as an ASGI app, and the one server that also carries the `/v1` Messages API.

`create_web_app` builds the page, its static files and the JSON/SSE API behind the guard
(`security`). `compose` puts it beside the `/v1` app of the local engine, if there is one: `/v1/...`
goes to the API untouched (with its own `--api-key`), everything else to the web chat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from ..render.html import code_style_css
from .api import WebAPI, WebError
from .chats import Chats
from .eventlog import EventLog, MemoryEventLog
from .runs import Runs
from .security import Guard, GuardMiddleware

STATIC = Path(__file__).parent / "static"


@dataclass
class WebChat:
    """Everything the web chat's routes need."""

    chats: Chats
    guard: Guard = field(default_factory=Guard)
    log: EventLog = field(default_factory=MemoryEventLog)
    counters: Callable[[], dict[str, int]] = dict
    max_fps: float = 30.0
    runs: Runs = field(init=False)

    def __post_init__(self) -> None:
        self.runs = Runs(self.log, max_fps=self.max_fps)


def _no_cache(response: Response) -> Response:
    response.headers["cache-control"] = "no-cache"
    return response


def create_web_app(web: WebChat) -> ASGIApp:
    """The page, its assets and its API, behind the Host/Origin/token guard."""
    api = WebAPI(web.chats, web.runs, web.counters)
    css = code_style_css()

    async def page(request: Request) -> Response:
        return _no_cache(FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8"))

    async def highlight_css(request: Request) -> Response:
        return _no_cache(Response(css, media_type="text/css; charset=utf-8"))

    async def on_web_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, WebError)
        return exc.response()

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        message = f"not found: {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        return WebError(exc.status_code, kind, message).response()

    async def on_crash(request: Request, exc: Exception) -> Response:
        return WebError(500, "api_error", f"internal error: {type(exc).__name__}").response()

    routes = [
        Route("/", page, methods=["GET", "HEAD"]),
        Route("/c/{cid}", page, methods=["GET", "HEAD"]),
        Route("/static/highlight.css", highlight_css, methods=["GET", "HEAD"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Route("/api/config", api.config, methods=["GET"]),
        Route("/api/models", api.models, methods=["GET"]),
        Route("/api/health", api.health, methods=["GET"]),
        Route("/api/conversations", api.list, methods=["GET"]),
        Route("/api/conversations", api.create, methods=["POST"]),
        Route("/api/conversations/{cid}", api.get, methods=["GET"]),
        Route("/api/conversations/{cid}", api.update, methods=["PATCH"]),
        Route("/api/conversations/{cid}", api.delete, methods=["DELETE"]),
        Route("/api/conversations/{cid}/messages", api.send, methods=["POST"]),
        Route("/api/conversations/{cid}/regenerate", api.regenerate, methods=["POST"]),
        Route("/api/conversations/{cid}/continue", api.continue_reply, methods=["POST"]),
        Route("/api/conversations/{cid}/edit", api.edit, methods=["POST"]),
        Route("/api/conversations/{cid}/undo", api.undo, methods=["POST"]),
        Route("/api/conversations/{cid}/pin", api.pin, methods=["POST"]),
        Route("/api/conversations/{cid}/export", api.export, methods=["GET"]),
        Route("/api/runs/{rid}", api.run_info, methods=["GET"]),
        Route("/api/runs/{rid}/events", api.events, methods=["GET"]),
        Route("/api/runs/{rid}/stop", api.stop, methods=["POST"]),
        Route("/api/runs/{rid}/tools/{tool_id}", api.answer_tool, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={WebError: on_web_error, HTTPException: on_http_error, Exception: on_crash},
    )
    app.state.web = web
    return GuardMiddleware(app, web.guard)


class Composed:
    """`/v1/...` to the Messages API app (if any), everything else to the web chat."""

    def __init__(self, web_app: ASGIApp, api_app: ASGIApp | None) -> None:
        self.web_app = web_app
        self.api_app = api_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if self.api_app is not None and (path == "/v1" or path.startswith("/v1/")):
            await self.api_app(scope, receive, send)
        else:
            await self.web_app(scope, receive, send)


def compose(web: WebChat, api_app: Any | None) -> Composed:
    """One ASGI app: the web chat, and the local Messages API beside it."""
    return Composed(create_web_app(web), api_app)


def api_counters(api_app: Any) -> Callable[[], dict[str, int]]:
    """The local server's generation counters, for /api/health (zeros with no local engine)."""
    inner = getattr(api_app, "app", None)
    api = getattr(getattr(inner, "state", None), "api", None)

    def counters() -> dict[str, int]:
        if api is None:
            return {"generations_running": 0, "generations_started": 0}
        return {"generations_running": int(api.generations_running),
                "generations_started": int(api.generations_started)}  # fmt: skip

    return counters
