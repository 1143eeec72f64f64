"""The web chat's JSON API: conversations, runs, tool answers, export, config, health.

Errors have the Messages API's shape, `{"type": "error", "error": {"type", "message"}}`, with its
statuses: 400 bad input, 404 unknown id, 409 a reply already running (or nothing to continue),
413 a body over the limit. A refused request changes nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import __version__
from ..chat import export
from ..chat.conversation import Conversation, Reply
from .chats import Chats
from .runs import Run, RunConflict, Runs
from .sse import event_stream, resume_point

MAX_BODY_BYTES = 1024 * 1024
MAX_MESSAGE_CHARS = 200_000


class WebError(Exception):
    """A request the web API refuses: its status, the API's error type and one line."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message

    def response(self) -> JSONResponse:
        body = {"type": "error", "error": {"type": self.kind, "message": self.message}}
        return JSONResponse(body, status_code=self.status)


def bad_request(message: str) -> WebError:
    return WebError(400, "invalid_request_error", message)


def not_found(message: str) -> WebError:
    return WebError(404, "not_found_error", message)


def conflict(message: str) -> WebError:
    return WebError(409, "conflict_error", message)


async def read_body(request: Request) -> dict[str, Any]:
    """The request's JSON object (400 when it is not one, 413 past MAX_BODY_BYTES)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise WebError(413, "request_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise WebError(413, "request_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise bad_request("the body must be a JSON object")
    return data


def message_text(body: dict[str, Any]) -> str:
    """The `text` of a send or edit: a non-empty string."""
    text = body.get("text")
    if not isinstance(text, str):
        raise bad_request("`text` must be a string")
    if not text.strip():
        raise bad_request("the message is empty")
    if len(text) > MAX_MESSAGE_CHARS:
        raise WebError(413, "request_too_large", f"the message is over {MAX_MESSAGE_CHARS} characters")
    return text


Act = Callable[[Conversation], Reply]


@dataclass
class WebAPI:
    """The JSON routes, bound to the conversations, the runs and the server's counters."""

    chats: Chats
    runs: Runs
    counters: Callable[[], dict[str, int]]

    # -- runs ------------------------------------------------------------------------------------

    async def _start(self, conversation_id: str | None, kind: str, act: Act,
                     settings: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
        """Open the conversation, start the reply `act` makes, and return the run's id."""
        chats = self.chats
        claimed: list[Run] = []  # the run reserved for the conversation, released if starting fails

        def claim(conv_id: str) -> Run:
            run = self._reserve(conv_id, kind)
            claimed.append(run)
            return run

        def prepare() -> tuple[Run, Conversation, Reply, int, list[dict[str, Any]] | None]:
            if conversation_id is None:
                conv = chats.new(settings or {})
                run = claim(conv.id)  # a new conversation: nothing else can be running in it
                conv.confirm = run.confirm
            else:
                run = claimed[0]
                conv = chats.open(conversation_id, confirm=run.confirm)
            seed = None
            position = len(conv.messages)
            if kind == "continue":
                last = conv.messages[-1] if conv.messages else None
                if last is None or last.role != "assistant" or last.status == "complete":
                    raise conflict("there is no interrupted or failed reply to continue")
                position, seed = len(conv.messages) - 1, list(last.content)
            reply = act(conv)
            if kind != "continue":
                position = len(conv.messages)
            return run, conv, reply, position, seed

        if conversation_id is not None:
            claim(conversation_id)
        try:
            run, conv, reply, position, seed = await asyncio.to_thread(prepare)
            if reply.done:  # refused before anything was sent ("nothing to retry", ...)
                message = reply.result.error if reply.result is not None else None
                raise conflict(message or "refused")
        except BaseException as exc:
            for reserved in claimed:
                self.runs.release(reserved)
            if isinstance(exc, KeyError):
                raise not_found(f"no conversation {conversation_id}") from None
            if isinstance(exc, ValueError):
                raise bad_request(str(exc)) from None
            raise
        await self.runs.start(run, conv, reply, position=position, seed=seed)
        return {"run_id": run.id, "conversation_id": conv.id, "position": position, "kind": kind}

    def _reserve(self, conversation_id: str, kind: str) -> Run:
        try:
            return self.runs.reserve(conversation_id, kind)
        except RunConflict as exc:
            raise conflict(str(exc)) from None

    async def create(self, request: Request) -> Response:
        """POST /api/conversations {text, persona?, system?, model?, thinking?}: a new chat's first reply."""
        body = await read_body(request)
        text = message_text(body)
        keys = ("persona", "system", "model", "thinking")
        settings: dict[str, Any] = {k: body[k] for k in keys if k in body}
        started = await self._start(None, "send", lambda conv: conv.send(text), settings)
        return JSONResponse(started, status_code=201)

    async def send(self, request: Request) -> Response:
        """POST /api/conversations/{id}/messages {text}."""
        body = await read_body(request)
        text = message_text(body)
        started = await self._start(request.path_params["cid"], "send", lambda conv: conv.send(text))
        return JSONResponse(started, status_code=202)

    async def regenerate(self, request: Request) -> Response:
        """POST /api/conversations/{id}/regenerate: the last reply again (also Retry)."""
        await read_body(request)
        started = await self._start(request.path_params["cid"], "regenerate", lambda conv: conv.retry())
        return JSONResponse(started, status_code=202)

    async def continue_reply(self, request: Request) -> Response:
        """POST /api/conversations/{id}/continue: an interrupted or failed reply goes on."""
        await read_body(request)
        cid = request.path_params["cid"]
        started = await self._start(cid, "continue", lambda conv: conv.continue_reply())
        return JSONResponse(started, status_code=202)

    async def edit(self, request: Request) -> Response:
        """POST /api/conversations/{id}/edit {text}: the last user message replaced and answered again."""
        body = await read_body(request)
        text = message_text(body)
        cid = request.path_params["cid"]
        started = await self._start(cid, "edit", lambda conv: conv.edit_last(text))
        return JSONResponse(started, status_code=202)

    def _run(self, request: Request) -> Run:
        run = self.runs.get(request.path_params["rid"])
        if run is None:
            raise not_found(f"no run {request.path_params['rid']}")
        return run

    async def run_info(self, request: Request) -> Response:
        """GET /api/runs/{rid}."""
        return JSONResponse(self._run(request).describe())

    async def stop(self, request: Request) -> Response:
        """POST /api/runs/{rid}/stop: the engine stops; the partial reply is kept as interrupted."""
        await read_body(request)
        run = self._run(request)
        if run.running:
            await asyncio.to_thread(run.stop)
        return JSONResponse(run.describe(), status_code=202)

    async def answer_tool(self, request: Request) -> Response:
        """POST /api/runs/{rid}/tools/{tool_id} {allow: bool}."""
        body = await read_body(request)
        allow = body.get("allow")
        if not isinstance(allow, bool):
            raise bad_request("`allow` must be true or false")
        run = self._run(request)
        if not run.answer(request.path_params["tool_id"], allow):
            raise conflict("that tool call is not waiting for an answer")
        return JSONResponse({"id": request.path_params["tool_id"], "allow": allow})

    async def events(self, request: Request) -> Response:
        """GET /api/runs/{rid}/events: the run's events over SSE."""
        run = self._run(request)
        return await event_stream(self.runs.log, run.id, resume_point(request))

    # -- conversations ---------------------------------------------------------------------------

    async def _call(self, fn: Callable[[], Any]) -> Any:
        try:
            return await asyncio.to_thread(fn)
        except KeyError as exc:
            raise not_found(f"no conversation {exc.args[0] if exc.args else ''}") from None

    async def list(self, request: Request) -> Response:
        """GET /api/conversations?q=&limit=&offset=: newest first, or search hits."""
        params = request.query_params
        try:
            limit = max(1, min(200, int(params.get("limit", "50"))))
            offset = max(0, int(params.get("offset", "0")))
        except ValueError:
            raise bad_request("`limit` and `offset` must be integers") from None
        query = params.get("q", "").strip()
        store = self.chats.store

        def find() -> list[dict[str, Any]]:
            if query:
                hits = store.search(query, limit=limit)
                return [{"id": h.conversation_id, "title": h.title, "snippet": h.snippet,
                         "updated_at": h.updated_at} for h in hits]  # fmt: skip
            rows = store.list_conversations(limit=limit, offset=offset)
            return [self.chats.describe(info) for info in rows]

        rows = await asyncio.to_thread(find)
        for row in rows:
            row["running"] = self.runs.active(row["id"]) is not None
        return JSONResponse({"conversations": rows, "query": query})

    async def get(self, request: Request) -> Response:
        """GET /api/conversations/{id}: its articles, window and usage; and its live run, if any."""
        cid = request.path_params["cid"]
        run = self.runs.active(cid)
        before = run.position if run is not None else None
        data = await self._call(lambda: self.chats.transcript(cid, before=before))
        data["run"] = run.describe() if run is not None else None
        return JSONResponse(data)

    async def update(self, request: Request) -> Response:
        """PATCH /api/conversations/{id} {title?, system?, persona?, model?, thinking?}."""
        body = await read_body(request)
        changes: dict[str, Any] = {}
        for key in ("title", "system", "model"):
            if key in body:
                if not isinstance(body[key], str):
                    raise bad_request(f"`{key}` must be a string")
                changes[key] = body[key].strip() if key == "title" else body[key]
        if "title" in changes and not changes["title"]:
            raise bad_request("the title is empty")
        if "thinking" in body:
            if not isinstance(body["thinking"], bool):
                raise bad_request("`thinking` must be true or false")
            changes["thinking"] = body["thinking"]
        if "persona" in body:
            persona = body["persona"]
            if persona is not None and persona not in self.chats.defaults.personas:
                raise bad_request(f"unknown persona {persona!r}")
            changes["persona"] = persona
        cid = request.path_params["cid"]
        await self._call(lambda: self.chats.update(cid, changes))
        info = await self._call(lambda: self.chats.store.get_conversation(cid))
        return JSONResponse(self.chats.describe(info))

    async def delete(self, request: Request) -> Response:
        """DELETE /api/conversations/{id}: a running reply is stopped first, then everything goes."""
        await read_body(request)
        cid = request.path_params["cid"]
        run = self.runs.active(cid)
        if run is not None:
            await asyncio.to_thread(run.stop)
            await asyncio.to_thread(run.done.wait, 10.0)
        deleted = await asyncio.to_thread(self.chats.store.delete_conversation, cid)
        if not deleted:
            raise not_found(f"no conversation {cid}")
        return JSONResponse({"id": cid, "deleted": True})

    def _idle(self, cid: str) -> None:
        if self.runs.active(cid) is not None:
            raise conflict("a reply is running in this conversation: stop it or wait for it")

    async def undo(self, request: Request) -> Response:
        """POST /api/conversations/{id}/undo: the last exchange is dropped."""
        await read_body(request)
        cid = request.path_params["cid"]
        self._idle(cid)
        undone = await self._call(lambda: self.chats.open(cid).undo())
        if not undone:
            raise conflict("nothing to undo")
        return JSONResponse({"id": cid, "undone": True})

    async def pin(self, request: Request) -> Response:
        """POST /api/conversations/{id}/pin {index, pinned}: keep a message in the window (or not)."""
        body = await read_body(request)
        index, pinned = body.get("index"), body.get("pinned")
        if not isinstance(index, int) or isinstance(index, bool) or not isinstance(pinned, bool):
            raise bad_request("`index` must be an integer and `pinned` true or false")
        cid = request.path_params["cid"]

        def apply() -> None:
            conv = self.chats.open(cid)
            if not 0 <= index < len(conv.messages):
                raise IndexError(index)
            conv.pin(index, pinned)

        try:
            await self._call(apply)
        except IndexError:
            raise bad_request(f"no message {index} in this conversation") from None
        return JSONResponse({"index": index, "pinned": pinned})

    async def export(self, request: Request) -> Response:
        """GET /api/conversations/{id}/export?format=md|json: a download."""
        fmt = request.query_params.get("format", "md")
        if fmt not in ("md", "json"):
            raise bad_request("`format` is md or json")
        cid = request.path_params["cid"]
        saved = await self._call(lambda: self.chats.store.load(cid))
        name = f"streamchat-{cid}.{fmt}"
        disposition = {"content-disposition": f'attachment; filename="{name}"'}
        if fmt == "json":
            text = json.dumps(export.export_json(saved), ensure_ascii=False, indent=2)
            return Response(text, media_type="application/json", headers=disposition)
        return Response(export.export_markdown(saved), media_type="text/markdown; charset=utf-8",
                        headers=disposition)  # fmt: skip

    # -- the server ------------------------------------------------------------------------------

    async def config(self, request: Request) -> Response:
        """GET /api/config: defaults, personas, limits, tools (never a key)."""
        d = self.chats.defaults
        tools = self.chats.tools
        return JSONResponse({
            "version": __version__, "model": d.model, "system": d.system, "persona": d.persona,
            "thinking": d.thinking, "personas": d.personas, "local": d.local,
            "max_context_tokens": d.max_context_tokens, "max_turns": d.max_turns,
            "tools": list(tools.names) if tools else [],
        })  # fmt: skip

    async def models(self, request: Request) -> Response:
        """GET /api/models: what the endpoint's /v1/models lists."""
        return JSONResponse({"models": await asyncio.to_thread(self.chats.models)})

    async def health(self, request: Request) -> Response:
        """GET /api/health: runs and engine generations, running and started."""
        return JSONResponse({"runs_running": self.runs.running, "runs_started": self.runs.started,
                             **self.counters()})  # fmt: skip


Handler = Callable[[Request], Awaitable[Response]]
