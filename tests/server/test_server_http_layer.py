"""Below the JSON: malformed HTTP on raw sockets to a real server on 127.0.0.1. Nothing gets a 5xx;
what the HTTP parser cannot read gets uvicorn's `400` and a closed connection (the app never sees
it); everything it can read reaches the app and gets the API's answer; the server stays up."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from server_harness import USER, Served, wait_until

CHUNKED = "Transfer-Encoding: chunked\r\n"
BODY = json.dumps({"model": "any", "max_tokens": 8, "messages": USER}).encode()


def exchange(served: Served, data: bytes, *, timeout: float = 10) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    port = int(served.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def request(path: str, body: bytes = b"", *, headers: str = "", method: str = "POST") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}"
    if body and "Content-Length" not in headers and "Transfer-Encoding" not in headers:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def api_error(response: bytes) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(response.split(b"\r\n\r\n", 1)[1])
    assert error["type"] == "error" and error["request_id"].startswith("req_")
    return error


UNPARSABLE = {
    "not HTTP": b"HELLO THERE\r\n\r\n",
    "bad chunk size": request("/v1/messages", b"zz\r\nabc\r\n0\r\n\r\n", headers=CHUNKED),
    "content-length not a number": request("/v1/messages", headers="Content-Length: abc\r\n"),
    "two content-lengths": request("/v1/messages", b"123456", headers="Content-Length: 5\r\n" * 2),
    "NUL in the path": b"GET /v1/mo\x00dels HTTP/1.1\r\nHost: x\r\n\r\n",
}


@pytest.mark.parametrize("raw", list(UNPARSABLE.values()), ids=list(UNPARSABLE))
def test_http_the_parser_refuses_is_a_400_and_a_close(shared_server: Served, raw: bytes) -> None:
    response = exchange(shared_server, raw)
    assert status(response) == 400
    assert shared_server.client().models.list().data  # still up


READABLE: dict[str, tuple[bytes, int, str]] = {
    "body shorter than its content-length says": (
        request("/v1/messages", BODY, headers="Content-Length: 10\r\n"), 400, "JSON body"),
    "JSON sent as text/plain": (
        request("/v1/messages", BODY, headers="Content-Type: text/plain\r\n"), 200, ""),
    "a form body": (
        request("/v1/messages", b"a=b&c=d", headers="Content-Type: application/x-www-form-urlencoded\r\n"),
        400, "JSON body"),
    "invalid UTF-8": (request("/v1/messages", b'{"model": "\xff\xfe"}'), 400, "not valid UTF-8"),
    "no body at all": (request("/v1/messages"), 400, "JSON body"),
    "a 200 kB header": (request("/v1/messages", BODY, headers="X-Big: " + "a" * 200_000 + "\r\n"), 200, ""),
    "5000 headers": (request("/v1/messages", BODY, headers="".join(f"X-{i}: 1\r\n" for i in range(5000))),
                     200, ""),
    "non-ASCII header bytes": (
        request("/v1/models", method="GET").replace(b"Host", b"X-A: \xff\r\nHost"), 200, ""),
    "Expect: 100-continue": (request("/v1/messages", BODY, headers="Expect: 100-continue\r\n"), 200, ""),
    "chunked body": (request("/v1/messages", b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY),
                             headers=CHUNKED), 200, ""),
}  # fmt: skip


@pytest.mark.parametrize(("raw", "code", "fragment"), list(READABLE.values()), ids=list(READABLE))
def test_http_the_parser_reads_gets_the_apis_answer(shared_server: Served, raw: bytes, code: int,
                                                   fragment: str) -> None:  # fmt: skip
    response = exchange(shared_server, raw)
    if response.startswith(b"HTTP/1.1 100 Continue"):
        response = response.split(b"\r\n\r\n", 1)[1]
    assert status(response) == code, response[:300]
    if code == 400:
        assert fragment in api_error(response)["error"]["message"]


def test_pipelined_requests_on_one_connection(shared_server: Served) -> None:
    one = request("/v1/messages/count_tokens", BODY).replace(b"Connection: close\r\n", b"")
    response = exchange(shared_server, one + one + request("/v1/models", method="GET"))
    assert response.count(b"HTTP/1.1 200 OK") == 3 and response.count(b'"input_tokens"') == 2


def test_clients_that_leave_mid_request(shared_server: Served) -> None:
    """A body cut off by a closed socket, and a connection closed before its headers end."""
    port = int(shared_server.url.rsplit(":", 1)[1])
    partial = b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + BODY[:20]
    for data in (partial, b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Le"):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(data)
    wait_until(shared_server.idle, what="the server to be idle")
    reply = shared_server.client().messages.create(model="any", max_tokens=8, messages=USER)
    assert reply.content and shared_server.idle()
