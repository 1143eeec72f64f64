"""`streamchat serve` as a user runs it: a real process, a real port, the SDK, then Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anthropic
import httpx2 as httpx
from server_harness import wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_serve_prints_how_to_use_it_serves_and_stops_on_sigint(free_port: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONUNBUFFERED": "1"}
    env.pop("STREAMCHAT_SERVER_API_KEY", None)
    command = [
        sys.executable,
        "-m",
        "streamchat.cli",
        "serve",
        "--engine",
        "script:tests/fixtures/hello.md",
        "--port",
        str(free_port),
        "--script-chunk",
        "5",
    ]
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        example = proc.stdout.readline()
        url = f"http://127.0.0.1:{free_port}"
        assert url in banner and "streamchat-script" in banner
        assert f"ANTHROPIC_BASE_URL={url}" in example and "anthropic.Anthropic()" in example

        def listening() -> bool:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                return httpx.get(f"{url}/v1/models", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(listening, timeout=20, what="the server to listen")
        client = anthropic.Anthropic(
            base_url=url, api_key="local", max_retries=0, _strict_response_validation=True
        )
        with client.messages.stream(
            model="any", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
        ) as s:
            pieces = list(s.text_stream)
        expected = (ROOT / "tests/fixtures/hello.md").read_text()
        assert "".join(pieces) == expected and len(pieces) == -(-len(expected) // 5)

        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=15)
        assert proc.returncode == 0, stderr
        assert "Traceback" not in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
