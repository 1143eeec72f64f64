"""Every control of the web chat page, clicked in real Chromium, checked in the real store.

The streaming itself is tested in test_e2e_web.py; here each button, menu and dialog of the page is
used once as a user would (pin, thinking, persona, system prompt, rename, edit and cancel, edit and
resend, regenerate, undo, search, export, delete), and its effect is read back from SQLite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from web_page import WebServer, browser_session, send, wait_until, web_servers

from streamchat.chat.store import Store

PIRATE = "Talk like a pirate."


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with browser_session() as browser:
        yield browser


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Callable[..., WebServer]]:
    yield from web_servers(tmp_path)


def replies_done(page: Page, count: int) -> None:
    """Until the transcript holds `count` replies, the last one complete."""
    page.wait_for_function(
        "count => { const r = document.querySelectorAll('article[data-role=assistant]');"
        " return r.length === count && r[count - 1].dataset.status === 'complete'; }",
        arg=count,
    )


def saved(store: Store, cid: str) -> Any:
    return store.load(cid)


def test_every_control_of_the_page(browser: Browser, web: Any) -> None:
    server = web({"replies": ["First answer.", "Second answer."]}, personas={"pirate": PIRATE})
    store = server.store
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(server.url)
        send(page, "hello there")
        replies_done(page, 1)
        cid = page.url.rsplit("/", 1)[1]
        user = page.locator('article[data-role="user"]').first

        user.get_by_role("button", name="Pin").click()
        page.wait_for_selector('article[data-role="user"] button[aria-pressed="true"]')
        wait_until(lambda: saved(store, cid).messages[0].pinned, what="the pin saved")

        page.get_by_role("switch", name="Thinking").check()
        wait_until(lambda: saved(store, cid).info.settings.get("thinking") is True, what="thinking saved")
        page.wait_for_function("() => document.getElementById('status').textContent.includes('thinking on')")

        page.get_by_role("combobox", name="Persona").select_option("pirate")
        wait_until(lambda: saved(store, cid).info.system == PIRATE, what="the persona saved")

        page.get_by_role("button", name="System prompt…").click()
        dialog = page.locator("#text-dialog")
        assert dialog.locator("textarea").input_value() == PIRATE
        dialog.locator("textarea").fill("Be brief.")
        dialog.get_by_role("button", name="Save").click()
        wait_until(lambda: saved(store, cid).info.system == "Be brief.", what="the system prompt saved")
        expect(page.get_by_role("combobox", name="Persona")).to_have_value("")

        page.get_by_role("button", name="Rename conversation").click()
        dialog.locator("input").fill("My renamed chat")
        dialog.get_by_role("button", name="Save").click()
        page.get_by_role("heading", name="My renamed chat", exact=True).wait_for()
        page.get_by_role("link", name="My renamed chat").wait_for()
        assert saved(store, cid).info.title == "My renamed chat"

        box = page.get_by_role("textbox", name="Message")
        user.get_by_role("button", name="Edit").click()
        assert box.input_value() == "hello there" and page.locator("#editing-note").is_visible()
        page.get_by_role("button", name="Cancel").click()
        assert box.input_value() == "" and not page.locator("#editing-note").is_visible()

        user.get_by_role("button", name="Edit").click()
        box.fill("hello again")
        box.press("Enter")
        page.wait_for_function("() => document.querySelector('article[data-role=user] .content')"
                               ".textContent === 'hello again'")  # fmt: skip
        replies_done(page, 1)
        wait_until(lambda: [m.status for m in saved(store, cid).messages] == ["complete", "complete"],
                   what="the edited exchange saved")  # fmt: skip
        assert saved(store, cid).messages[0].content[0]["text"] == "hello again"

        calls = len(server.engine.runs)
        page.get_by_role("button", name="Regenerate").click()
        wait_until(lambda: len(server.engine.runs) > calls, what="the regenerated request")
        replies_done(page, 1)

        send(page, "a second question")
        replies_done(page, 2)
        assert "Second answer." in page.locator('article[data-role="assistant"]').last.inner_text()
        page.locator('article[data-role="user"]').last.get_by_role("button", name="Undo").click()
        page.wait_for_function("() => document.querySelectorAll('article.message').length === 2")
        wait_until(lambda: len(saved(store, cid).messages) == 2, what="the undo saved")

        search = page.get_by_role("searchbox", name="Search conversations")
        search.fill("zebra-nowhere")
        page.get_by_text("No conversation matches.").wait_for()
        search.fill("")
        page.get_by_role("link", name="My renamed chat").wait_for()

        href = page.locator("#export-md").get_attribute("href")
        exported = page.request.get(server.url + str(href))
        assert exported.ok and "hello again" in exported.text()

        page.get_by_role("button", name="Delete conversation").click()
        page.locator("#confirm-dialog").get_by_role("button", name="Delete").click()
        page.get_by_role("heading", name="New chat").wait_for()
        wait_until(lambda: not any(c.id == cid for c in store.list_conversations()), what="the deletion")
        assert page.url == server.url + "/"
        assert errors == []
    finally:
        context.close()
