"""Driving the web chat in real Chromium: the browser, a proxy that can cut connections, page helpers."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Locator, Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))

from web_harness import WebServer, start_web, wait_until, web_servers

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
EXE = str(Path(sys.executable).with_name("streamchat"))

__all__ = [
    "CHROMIUM",
    "EXE",
    "CutProxy",
    "WebServer",
    "browser_session",
    "start_web",
    "wait_until",
    "web_servers",
]


@contextlib.contextmanager
def browser_session() -> Iterator[Browser]:
    """One headless Chromium (Debian's), driven by Playwright's sync API."""
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM} is missing: `make test` installs it (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class CutProxy:
    """A TCP proxy in front of a server; `cut()` drops every connection through it, as a network blip."""

    target_port: int
    sock: socket.socket = field(default_factory=socket.socket)
    _pairs: list[tuple[socket.socket, socket.socket]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    cuts: int = 0

    def start(self) -> str:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every open connection (the page's EventSource then reconnects through the proxy)."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for s in pair:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
        self.cuts += 1

    def close(self) -> None:
        self.cut()
        self.sock.close()


# -- page helpers -----------------------------------------------------------------------------------


def send(page: Page, text: str) -> None:
    """Type a message and press Enter, as a user does."""
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def last_reply(page: Page) -> Locator:
    return page.locator('article[data-role="assistant"]').last


def wait_status(page: Page, status: str, timeout: float = 30_000) -> None:
    page.wait_for_selector(
        f'article[data-role="assistant"]:last-of-type[data-status="{status}"]', timeout=timeout
    )


def wait_reply_text(page: Page, chars: int, status: str | None = None) -> None:
    """Until the last reply shows more than `chars` characters (and has `status`, if given)."""
    page.wait_for_function(
        """([chars, status]) => {
          const reply = [...document.querySelectorAll("article[data-role=assistant]")].at(-1);
          return Boolean(reply) && (!status || reply.dataset.status === status)
            && reply.querySelector(".content").textContent.length > chars;
        }""",
        arg=[chars, status],
    )


def content_html(article: Locator) -> str:
    """The browser's serialization of a message's `.content`."""
    return str(article.locator(".content").evaluate("el => el.innerHTML"))


def as_browser_html(page: Page, html: str) -> str:
    """`html` parsed and serialized by the browser (so both sides of a comparison are the DOM's)."""
    return str(page.evaluate("html => { const t = document.createElement('template'); t.innerHTML = html; "
                             "return t.innerHTML; }", html))  # fmt: skip


WATCH_GROWTH = """() => {
  window.__shrinks = [];
  window.__committed = "";
  const messages = document.getElementById("messages");
  const committed = () => {
    const article = [...messages.querySelectorAll('article[data-role="assistant"]')].at(-1);
    if (!article) return null;
    const content = article.querySelector(".content").cloneNode(true);
    content.querySelectorAll(".tail").forEach((t) => t.remove());
    return content.textContent;
  };
  new MutationObserver(() => {
    const now = committed();
    if (now === null) return;
    if (!now.startsWith(window.__committed)) window.__shrinks.push([window.__committed.length, now.length]);
    window.__committed = now;
  }).observe(messages, {subtree: true, childList: true, characterData: true});
}"""


def watch_growth(page: Page) -> None:
    """Record whenever the finished part of the streaming reply stops being a prefix of what follows."""
    page.evaluate(WATCH_GROWTH)


def shrinks(page: Page) -> list[Any]:
    return list(page.evaluate("() => window.__shrinks"))


def start_cli(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """`streamchat web ARGS` in a subprocess; returns it and the URL it printed."""
    process = subprocess.Popen([EXE, "web", "--port", "0", *args], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if "open http" in line:
            url = line.split("open ", 1)[1].strip()
            threading.Thread(target=process.stdout.read, daemon=True).start()  # keep the pipe drained
            return process, url
    raise AssertionError(f"streamchat web did not print its URL: {''.join(lines)}")
