"""`streamchat web` and `streamchat serve` as a user runs them: the printed URL opens the page; bound to
a wider address, only the printed token lets anyone in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx

EXE = str(Path(sys.executable).with_name("streamchat"))
SCRIPT = Path(__file__).resolve().parents[1] / "e2e" / "scripts" / "rich.md"


def run_until_url(args: list[str], home: Path, marker: str) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "STREAMCHAT_"))}
    env["STREAMCHAT_HOME"] = str(home)
    process = subprocess.Popen(
        [EXE, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if marker in line:
            return process, line.split(marker, 1)[1].strip().split()[0]
    raise AssertionError("".join(seen))


def test_web_on_a_wide_address_prints_a_token_url_once(tmp_path: Path) -> None:
    args = ["web", "--host", "0.0.0.0", "--port", "0", "--engine", f"script:{SCRIPT}"]
    process, url = run_until_url(args, tmp_path, "open ")
    try:
        assert "?token=" in url
        base, token = url.split("/?token=")
        with httpx.Client(base_url=base, follow_redirects=False) as client:
            assert client.get("/").status_code == 401
            exchanged = client.get(f"/?token={token}")
            assert exchanged.status_code == 303 and exchanged.headers["location"] == "/"
            assert client.get("/api/config").status_code == 200  # the cookie now
            assert client.get("/v1/models").status_code == 200  # /v1 keeps its own (no) key
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_serve_also_serves_the_page(tmp_path: Path) -> None:
    args = ["serve", "--port", "0", "--engine", f"script:{SCRIPT}"]
    process, url = run_until_url(args, tmp_path, "web chat: ")
    try:
        with httpx.Client(base_url=url) as client:
            page = client.get("/")
            assert page.status_code == 200 and 'aria-label="Message"' in page.text
            assert client.get("/v1/models").json()["data"][0]["id"] == "streamchat-script"
    finally:
        process.terminate()
        process.wait(timeout=15)
