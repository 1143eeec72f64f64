"""Safe by default: CSP and friends on every response, foreign Host and Origin refused, the access token
exchanged for an HttpOnly SameSite=Strict cookie, /v1 untouched, no API key anywhere it could leak."""

from __future__ import annotations

import re
from typing import Any

import httpx2 as httpx
import pytest

from streamchat.web import Guard
from streamchat.web.security import COOKIE


def test_every_page_and_asset_has_a_strict_csp(web: Any) -> None:
    server = web()
    client = server.client()
    for path in (
        "/",
        "/c/abc",
        "/static/app.js",
        "/static/style.css",
        "/static/highlight.css",
        "/api/config",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        csp = response.headers["content-security-policy"]
        for rule in ("default-src 'self'", "script-src 'self'", "img-src 'self' data:", "connect-src 'self'",
                     "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"):  # fmt: skip
            assert rule in csp, (path, rule)
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
    assert client.get("/static/app.js").headers["content-type"].split(";")[0] in (
        "text/javascript", "application/javascript")  # fmt: skip


def test_the_page_has_no_inline_script_and_loads_nothing_from_elsewhere(web: Any) -> None:
    server = web()
    html = server.client().get("/").text
    assert "<script>" not in html and "<script " in html and 'src="/static/app.js"' in html
    assert " on" not in html.replace(" one", "").split("<body", 1)[1].split(">", 1)[0]
    assert "http://" not in html and "https://" not in html  # no CDN, no font service


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.nip.io", "localhost.evil"])
def test_a_foreign_host_is_refused(web: Any, host: str) -> None:
    server = web()
    client = server.client()
    for method, path in (("GET", "/"), ("GET", "/api/conversations"), ("POST", "/api/conversations")):
        response = client.request(method, path, headers={"host": host, "origin": f"http://{host}"},
                                  json={"text": "hi"} if method == "POST" else None)  # fmt: skip
        assert response.status_code == 403, (method, path)
        assert response.json()["error"]["type"] == "permission_error"
    assert server.store.list_conversations() == []


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]:9000", "LOCALHOST:80"])
def test_own_host_names_are_accepted(web: Any, host: str) -> None:
    server = web()
    assert server.client().get("/api/config", headers={"host": host}).status_code == 200


@pytest.mark.parametrize("origin", [None, "http://evil.example", "null", "http://127.0.0.1:1"])
def test_state_changes_from_another_origin_are_refused(web: Any, origin: str | None) -> None:
    server = web()
    client = httpx.Client(base_url=server.url, headers={"origin": origin} if origin else {})
    server.clients.append(client)
    response = client.post("/api/conversations", json={"text": "hi"})
    assert response.status_code == 403 and "Origin" in response.json()["error"]["message"]
    assert client.get("/api/conversations").status_code == 200  # reading is same-origin by CORS already
    assert server.store.list_conversations() == [] and server.engine.runs == []


def test_v1_keeps_its_own_rules(web: Any) -> None:
    server = web(guard=Guard("0.0.0.0", token="t0ken"))
    client = httpx.Client(base_url=server.url)  # no Origin, no cookie: an SDK client
    server.clients.append(client)
    models = client.get("/v1/models")
    assert models.status_code == 200 and models.json()["data"][0]["id"] == "streamchat-script"
    assert "content-security-policy" not in models.headers


def test_the_access_token_flow(web: Any) -> None:
    server = web(guard=Guard("0.0.0.0", token="s3cret-token"))
    client = httpx.Client(base_url=server.url, headers={"origin": server.url}, follow_redirects=False)
    server.clients.append(client)
    for path in ("/", "/api/config", "/static/app.js", "/api/conversations"):
        missing = client.get(path)
        assert missing.status_code == 401, path
        assert missing.json()["error"]["type"] == "authentication_error"
    wrong = client.get("/?token=nope")
    assert wrong.status_code == 401 and COOKIE not in wrong.headers.get("set-cookie", "")
    right = client.get("/c/abc?token=s3cret-token&x=1")
    assert right.status_code == 303
    assert right.headers["location"] == "/c/abc?x=1"  # the token leaves the URL
    cookie = right.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "s3cret-token" not in cookie  # the cookie is derived, not the token itself
    session = cookie.split(";", 1)[0].split("=", 1)[1]
    client.cookies.set(COOKIE, session)
    assert client.get("/c/abc?x=1").status_code == 200
    assert client.get("/api/config").status_code == 200
    forged = httpx.Client(base_url=server.url, cookies={COOKIE: "forged"})
    server.clients.append(forged)
    assert forged.get("/api/config").status_code == 401


def test_a_loopback_guard_needs_no_token(web: Any) -> None:
    server = web()
    assert server.web.guard.token is None
    assert Guard.for_bind("127.0.0.1").token is None and Guard.for_bind("::1").token is None
    assert Guard.for_bind("0.0.0.0").token is not None
    response = server.client(follow_redirects=False).get("/?token=anything")
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_the_api_key_never_reaches_the_page(web: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-ant-never-show-this"
    monkeypatch.setenv("ANTHROPIC_API_KEY", secret)
    server = web("A reply.")
    client = server.client()
    started = client.post("/api/conversations", json={"text": "hi"}).json()
    from web_harness import read_events

    read_events(client, started["run_id"])
    seen = [
        client.get(p).text
        for p in (
            "/",
            "/api/config",
            "/api/models",
            "/api/conversations",
            f"/api/conversations/{started['conversation_id']}",
            f"/api/conversations/{started['conversation_id']}/export?format=json",
        )
    ]
    assert not any(secret in text for text in seen)
    assert secret.encode() not in server.store.path.read_bytes()


def test_every_module_the_page_imports_is_served_and_the_imports_form_no_cycle(web: Any) -> None:
    client = web().client()
    imports: dict[str, list[str]] = {}
    waiting = ["app.js"]
    while waiting:
        name = waiting.pop()
        if name in imports:
            continue
        response = client.get(f"/static/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"].split(";")[0] in ("text/javascript", "application/javascript")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        imports[name] = re.findall(r'^import\s[^;]*?from\s+"\./([\w-]+\.js)";', response.text, re.M | re.S)
        waiting.extend(imports[name])
    assert {"stream.js", "transcript.js", "conversation.js"} <= set(imports)

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        for target in imports[name]:
            visit(target, (*path, name))

    visit("app.js", ())
