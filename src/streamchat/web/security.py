"""The web chat's guard: Host and Origin checks, the access token, and the security headers.

- DNS rebinding: a request whose `Host` names anything but this server (loopback names, the bind
  address, the machine's own names, `--allowed-host`s) is refused. An IP literal is always
  accepted: a rebinding attack needs a DNS name the attacker controls.
- CSRF: a state-changing request (anything but GET/HEAD/OPTIONS) must carry an `Origin` equal to
  the request's own scheme and Host.
- Bound to anything but loopback, every request needs the access token: the URL printed once
  carries `?token=...`, exchanged for an HttpOnly, SameSite=Strict cookie, then a redirect drops
  it from the URL. Wrong or missing: 401.
- Every response carries a strict CSP (no inline script, no other origin), nosniff, no referrer,
  no framing.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "streamchat_session"
TOKEN_PARAM = "token"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A fresh access token (printed once, in the page's URL)."""
    return secrets.token_urlsafe(24)


def _host_name(host_header: str) -> str:
    """The name part of a Host header ("[::1]:8080" -> "::1", "Example:80" -> "example")."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


@dataclass
class Guard:
    """Who may use the web chat: host names, and the access token (None: none needed)."""

    bind_host: str = "127.0.0.1"
    token: str | None = None
    allowed_hosts: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        names = {name.lower() for name in self.allowed_hosts} | _LOOPBACK_NAMES | {self.bind_host.lower()}
        if not is_loopback(self.bind_host):
            names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        self.allowed_hosts = names

    @classmethod
    def for_bind(cls, host: str, allowed_hosts: Iterable[str] = ()) -> Guard:
        """The guard for a server bound to `host`: a token unless it is loopback only."""
        return cls(host, None if is_loopback(host) else new_token(), set(allowed_hosts))

    @property
    def session(self) -> str | None:
        """The cookie value the token is exchanged for (derived, so the URL's token is not the cookie)."""
        if self.token is None:
            return None
        return hmac.new(self.token.encode(), b"streamchat web session", hashlib.sha256).hexdigest()

    def host_allowed(self, host_header: str) -> bool:
        """Whether a Host header names this server."""
        name = _host_name(host_header)
        return bool(name) and (_is_ip(name) or name in self.allowed_hosts)


Reply = tuple[int, list[tuple[bytes, bytes]], bytes]  # status, headers, body of a refusal or redirect


def _json(status: int, kind: str, message: str) -> Reply:
    body = json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()
    return status, [(b"content-type", b"application/json")], body


def _cookies(scope: Scope) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header is no session
                continue
    return {name: morsel.value for name, morsel in jar.items()}


class GuardMiddleware:
    """Applies a `Guard` to every request of the web chat and adds the security headers."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._check(scope, headers)
        if refusal is not None:
            await _respond(send, *refusal)
            return
        token_redirect = self._exchange_token(scope)
        if token_redirect is not None:
            await _respond(send, *token_redirect)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _check(self, scope: Scope, headers: dict[str, str]) -> Reply | None:
        guard = self.guard
        host = headers.get("host", "")
        if not guard.host_allowed(host):
            return _json(403, "permission_error", f"this server does not answer to the host {host!r}")
        if scope["method"] not in _SAFE_METHODS:
            origin = headers.get("origin")
            expected = f"{scope.get('scheme', 'http')}://{host.lower()}"
            if origin is None or origin.lower() != expected:
                return _json(403, "permission_error", "cross-origin request refused (wrong Origin)")
        if guard.session is not None and not self._token_in_query(scope):
            given = _cookies(scope).get(COOKIE, "")
            if not hmac.compare_digest(given, guard.session):
                return _json(401, "authentication_error", "this server needs its access token: open the URL "
                             "it printed when it started")  # fmt: skip
        return None

    def _token_in_query(self, scope: Scope) -> bool:
        query = scope.get("query_string", b"").decode("latin-1")
        return any(key == TOKEN_PARAM for key, _ in parse_qsl(query))

    def _exchange_token(self, scope: Scope) -> Reply | None:
        """`?token=...`: a right token becomes the session cookie and leaves the URL; a wrong one is 401."""
        pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = [value for key, value in pairs if key == TOKEN_PARAM]
        if not given:
            return None
        guard = self.guard
        if guard.token is None or guard.session is None:  # no token needed here: just drop it from the URL
            cookie = None
        elif hmac.compare_digest(given[-1], guard.token):
            cookie = f"{COOKIE}={guard.session}; Path=/; HttpOnly; SameSite=Strict"
        else:
            return _json(401, "authentication_error", "wrong access token")
        rest = urlencode([(k, v) for k, v in pairs if k != TOKEN_PARAM])
        location = scope.get("path", "/") + (f"?{rest}" if rest else "")
        headers = [(b"location", location.encode()), (b"cache-control", b"no-store"), *SECURITY_HEADERS]
        if cookie is not None:
            headers.append((b"set-cookie", cookie.encode()))
        return 303, headers, b""


async def _respond(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    names = {k for k, _ in headers}
    headers = [*headers, *((k, v) for k, v in SECURITY_HEADERS if k not in names)]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
