"""The Vercel AI SDK (`ai` + `@ai-sdk/anthropic`, from clients/vercel_ai's lock file, on Node),
unchanged, against a streamchat server on 127.0.0.1: `streamText`."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from client_harness import HERE, RequestLog, npm_ci, quiet_env
from server_harness import API_KEY

PROJECT = HERE / "vercel_ai"
TEXT = "Hello from streamchat, streamed to the AI SDK."


def test_stream_text(serve: Any) -> None:
    npm_ci(PROJECT)
    node = shutil.which("node")
    assert node, "node is needed for the AI SDK check"
    engine = RequestLog(TEXT, chunk=5)
    served = serve(engine=engine)
    done = subprocess.run([node, "check.mjs", "Greet me."], cwd=PROJECT, env=quiet_env(served.url, API_KEY),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["errors"] == []
    assert len(report["deltas"]) > 3 and "".join(report["deltas"]) == TEXT == report["text"]
    assert report["finishReason"] == "stop"
    usage = report["usage"]
    assert usage["outputTokens"] == -(-len(TEXT) // 5)  # one token per scripted delta
    assert usage["inputTokens"] == usage["raw"]["input_tokens"] > 0
    request = engine.requests[-1]
    assert request.system == "You are terse." and request.stream
    assert request.messages[-1].text == "Greet me."
