"""The ASGI app speaking the Anthropic Messages API over a local engine."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from ..api.errors import (
    APIError,
    AuthenticationError,
    InternalServerError,
    InvalidRequestError,
    NotFoundError,
    RequestTooLargeError,
    error_body,
    new_id,
)
from ..api.request import MessagesRequest, load_request_shapes, parse_json_body, parse_messages_request
from ..api.stream import Finish, Part, StreamState, apply_event, encode_sse, start, step
from ..engines.base import Engine
from ..engines.grammar import unsupported_schema_feature
from .admission import Admission
from .generation import EngineFailure, Generation

SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no"}


@dataclass(frozen=True)
class ServerSettings:
    """What `create_app` needs besides the engine."""

    api_key: str | None = None
    max_queue: int = 16
    max_body_bytes: int = 32 * 1024 * 1024
    created_at: str = "2024-11-01T00:00:00Z"
    # a stream that has sent nothing for this long gets a `ping` (the API's streams "may include any
    # number of ping events"): a long prompt on a slow CPU must not trip a client's idle watchdog
    keepalive_seconds: float = 10.0


class ClientGone(APIError):
    """The client closed the connection mid-request (nginx's 499): answered, to no one, quietly."""

    status = 499
    error_type = "invalid_request_error"


class RequestIdMiddleware:
    """Gives every request a `request-id`, sent as a header on every response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_id("req_")
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"request-id"]
                headers.append((b"request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


def _request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", "req_unknown"))


def error_response(exc: APIError, request_id: str) -> JSONResponse:
    """The API's error body with its status and headers."""
    return JSONResponse(exc.body(request_id), status_code=exc.status, headers=exc.headers)


class MessagesAPI:
    """The endpoints, bound to one engine and its admission queue."""

    def __init__(self, engine: Engine, settings: ServerSettings) -> None:
        self.engine = engine
        self.settings = settings
        self.admission = Admission(engine.max_concurrency, settings.max_queue)
        self.generations_started = 0
        self.generations_running = 0

    # -- helpers ---------------------------------------------------------------------------------

    def check_auth(self, request: Request) -> None:
        key = self.settings.api_key
        if not key:
            return
        given = request.headers.get("x-api-key")
        if given is None:
            auth = request.headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                given = auth[7:].strip()
        if given != key:
            raise AuthenticationError("invalid x-api-key")

    async def read_json(self, request: Request) -> Any:
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise RequestTooLargeError("Request exceeds the maximum allowed number of bytes.")
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise RequestTooLargeError("Request exceeds the maximum allowed number of bytes.")
                chunks.append(chunk)
        except ClientDisconnect:  # gone before its body arrived: nobody reads the answer
            raise ClientGone("the client disconnected before sending the whole body") from None
        return parse_json_body(b"".join(chunks))

    async def parse(self, request: Request, *, count_only: bool) -> MessagesRequest:
        """The request's body, validated (against the SDK's beta types when the request is a beta one:
        `?beta=true`, or an `anthropic-beta` header) and supported here."""
        beta = request.query_params.get("beta") == "true" or "anthropic-beta" in request.headers
        parsed = parse_messages_request(await self.read_json(request), count_only=count_only, beta=beta)
        if parsed.media_path is not None and not self.engine.accepts_media:
            raise InvalidRequestError(
                f"{parsed.media_path}: {self.engine.model_id} is a text-only model: "
                "image and document content blocks are not supported"
            )
        if parsed.output_format is not None and (problem := unsupported_schema_feature(parsed.output_format)):
            raise InvalidRequestError(problem)
        return parsed

    def model_info(self) -> dict[str, Any]:
        window = getattr(self.engine, "context_window", None)
        return {
            "type": "model",
            "id": self.engine.model_id,
            "display_name": self.engine.display_name,
            "created_at": self.settings.created_at,
            "lifecycle": "active",
            "deprecated_at": None,
            "retires_at": None,
            "max_input_tokens": window,
            "max_tokens": window,
        }

    # -- endpoints ---------------------------------------------------------------------------------

    async def messages(self, request: Request) -> Response:
        request_id = _request_id(request)
        self.check_auth(request)
        parsed = await self.parse(request, count_only=False)
        input_tokens = self.engine.count_tokens(parsed)
        window = getattr(self.engine, "context_window", None)
        if window and input_tokens >= window:
            raise InvalidRequestError(f"prompt is too long: {input_tokens} tokens > {window - 1} maximum")
        ticket = self.admission.reserve()  # raises 529 before anything is sent
        state = StreamState(new_id("msg_"), self.engine.model_id, input_tokens)
        if parsed.stream:
            return StreamingMessage(self, parsed, state, ticket, request_id)
        return await self._complete(request, parsed, state, ticket, request_id)

    def start_generation(self, parsed: MessagesRequest) -> Generation:
        self.generations_started += 1
        self.generations_running += 1

        def on_exit() -> None:
            self.generations_running -= 1
            self.admission.release()

        gen = Generation(self.engine if parsed.max_tokens else _NO_OUTPUT, parsed, on_exit)
        gen.start()
        return gen

    async def _complete(
        self, request: Request, parsed: MessagesRequest, state: StreamState, ticket: asyncio.Future[None],
        request_id: str,
    ) -> Response:  # fmt: skip
        gen: Generation | None = None

        async def produce() -> dict[str, Any]:
            nonlocal gen, state
            await ticket
            gen = self.start_generation(parsed)
            message = apply_event({}, start(state))
            async for parts in gen.batches():
                for part in parts:
                    state, events = step(state, part)
                    for event in events:
                        message = apply_event(message, event)
            message.pop("_json", None)
            return message

        task = asyncio.ensure_future(produce())
        watcher = asyncio.ensure_future(_wait_disconnect(request.receive))
        try:
            await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():  # the client went away
                task.cancel()
                if gen is not None:
                    gen.cancel()
                else:
                    self.admission.abandon(ticket)
                return Response(status_code=499)
            try:
                return JSONResponse(task.result())
            except EngineFailure as exc:
                raise InternalServerError(f"the engine failed: {exc}") from None
        finally:
            watcher.cancel()
            if gen is not None:
                gen.cancel()  # a no-op once it finished; stops it if the fold itself failed

    async def count_tokens(self, request: Request) -> Response:
        self.check_auth(request)
        parsed = await self.parse(request, count_only=True)
        return JSONResponse({"input_tokens": self.engine.count_tokens(parsed)})

    async def list_models(self, request: Request) -> Response:
        self.check_auth(request)
        info = self.model_info()
        page = {"data": [info], "has_more": False, "first_id": info["id"], "last_id": info["id"]}
        return JSONResponse(page)

    async def get_model(self, request: Request) -> Response:
        self.check_auth(request)
        model_id = request.path_params["model_id"]
        if model_id != self.engine.model_id:
            raise NotFoundError(f"model: {model_id} (this server serves {self.engine.model_id})")
        return JSONResponse(self.model_info())


class _NoOutput:
    """`max_tokens: 0` (the API's way to warm a prompt cache): the reply stops before its first token."""

    def generate(self, request: MessagesRequest, cancel: Any) -> Any:
        parts: list[Part] = [Finish("max_tokens", 0)]
        return iter(parts)


_NO_OUTPUT: Any = _NoOutput()


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class StreamingMessage(Response):
    """An SSE reply that waits for its slot, streams, and stops the engine when the client leaves."""

    def __init__(
        self, api: MessagesAPI, parsed: MessagesRequest, state: StreamState, ticket: asyncio.Future[None],
        request_id: str,
    ) -> None:  # fmt: skip
        self.status_code = 200
        self.background = None
        self.raw_headers = [(k.encode(), v.encode()) for k, v in SSE_HEADERS.items()]
        self.api = api
        self.parsed = parsed
        self.state = state
        self.ticket = ticket
        self.request_id = request_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.generation: Generation | None = None
        body = asyncio.ensure_future(self._stream(send))
        watcher = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            await asyncio.wait({body, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
            if not body.done():  # the client disconnected: stop generating now
                body.cancel()
            if self.generation is not None:
                self.generation.cancel()  # its slot is released when the engine thread exits
            else:
                self.api.admission.abandon(self.ticket)
        if not body.cancelled() and body.done():
            exc = body.exception()
            if exc is not None and not isinstance(exc, OSError):
                raise exc

    async def _stream(self, send: Send) -> None:
        # Headers before the wait for a slot: a queued client holds a response it can close to leave
        # the queue (a 529 was decided before this response existed).
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await self.ticket
        # message_start goes out before the engine starts, so the first byte never waits on it
        state = self.state
        await send({"type": "http.response.body", "body": encode_sse(start(state)), "more_body": True})
        gen = self.generation = self.api.start_generation(self.parsed)
        batches = gen.batches()
        waiting: asyncio.Future[list[Part]] | None = None
        try:
            while True:
                waiting = waiting or asyncio.ensure_future(anext(batches))
                done, _ = await asyncio.wait({waiting}, timeout=self.api.settings.keepalive_seconds)
                if not done:
                    await send({"type": "http.response.body", "body": PING, "more_body": True})
                    continue
                try:
                    parts = waiting.result()
                except StopAsyncIteration:
                    break
                waiting = None
                chunk: list[bytes] = []
                for part in parts:
                    state, events = step(state, part)
                    chunk.extend(encode_sse(e) for e in events)
                if chunk:
                    await send({"type": "http.response.body", "body": b"".join(chunk), "more_body": True})
        except EngineFailure as exc:
            failure = error_body("api_error", f"the engine failed: {exc}", self.request_id)
            data = json.dumps(failure, separators=(",", ":"))
            await send({"type": "http.response.body", "body": f"event: error\ndata: {data}\n\n".encode(),
                        "more_body": True})  # fmt: skip
        finally:
            if waiting is not None and not waiting.done():
                waiting.cancel()
            elif waiting is not None and not waiting.cancelled():
                waiting.exception()  # cancelled just as the engine ended: its end is retrieved, not logged
        await send({"type": "http.response.body", "body": b"", "more_body": False})


PING = encode_sse({"type": "ping"})


def create_app(engine: Engine, settings: ServerSettings | None = None) -> Any:
    """The ASGI app: the Messages API (`/v1/...`) over `engine`."""
    settings = settings or ServerSettings()
    load_request_shapes()
    api = MessagesAPI(engine, settings)

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, APIError)
        return error_response(exc, _request_id(request))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        kind = {404: NotFoundError, 405: InvalidRequestError}.get(exc.status_code, InvalidRequestError)
        err = kind(str(exc.detail) if exc.status_code != 404 else f"Not found: {request.url.path}")
        return JSONResponse(err.body(_request_id(request)), status_code=exc.status_code)

    async def on_crash(request: Request, exc: Exception) -> Response:
        crash = InternalServerError(f"internal error: {type(exc).__name__}")
        return error_response(crash, _request_id(request))

    routes = [
        Route("/v1/messages", api.messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", api.count_tokens, methods=["POST"]),
        Route("/v1/models", api.list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", api.get_model, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={APIError: on_api_error, HTTPException: on_http_error, Exception: on_crash},
    )
    app.state.api = api
    return RequestIdMiddleware(app)


def model_created_at(path: str | None) -> str:
    """An RFC 3339 time for /v1/models: the model file's mtime."""
    import os

    if not path or not os.path.exists(path):
        return ServerSettings.created_at
    stamp = dt.datetime.fromtimestamp(os.path.getmtime(path), tz=dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
