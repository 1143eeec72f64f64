"""Running the app with uvicorn: in the foreground, or in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from typing import Any

import uvicorn


def _config(app: Any, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
        h11_max_incomplete_event_size=64 * 1024,
    )


def listen(host: str, port: int) -> socket.socket:
    """Bind and listen now, so a URL printed afterwards already answers (port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def serve(app: Any, sock: socket.socket) -> None:
    """Serve on a listening socket until interrupted; Ctrl-C is the normal way to stop, so it ends quietly."""
    host, port = sock.getsockname()[:2]
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the SIGINT it handled, once stopped
        uvicorn.Server(_config(app, host, port)).run(sockets=[sock])


class ServerThread:
    """The server on a background thread (the terminal chat and the tests use it)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self._server = uvicorn.Server(_config(app, host, port))
        self._thread = threading.Thread(target=self._run, name="streamchat-server", daemon=True)
        self._error: BaseException | None = None
        self.port = port

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve())
        except BaseException as exc:  # surfaced by start()
            self._error = exc

    def start(self, timeout: float = 30.0) -> str:
        """Start serving; return the base URL once the socket is listening."""
        self._thread.start()
        ready = threading.Event()

        def poll() -> None:
            while not self._server.started and self._thread.is_alive():
                ready.wait(0.005)
            ready.set()

        poll()
        if not self._server.started:
            raise RuntimeError(f"server failed to start: {self._error!r}")
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self.base_url

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
