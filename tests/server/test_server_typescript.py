"""The official TypeScript SDK (`@anthropic-ai/sdk`, locked in ts/package-lock.json) against a real server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from server_harness import API_KEY, npm_ci

TS = Path(__file__).resolve().parent / "ts"
SCRIPT = [
    {"type": "thinking", "thinking": "They said hi."},
    {"type": "text", "text": "Hello from streamchat, via TypeScript."},
    {"type": "tool_use", "id": "toolu_01TsCheck", "name": "get_weather", "input": {"city": "Oslo"}},
]


def test_typescript_sdk_stream_and_final_message(serve: Any) -> None:
    npm_ci(TS)
    node = shutil.which("node")
    assert node, "node is needed for the TypeScript SDK check"
    served = serve(SCRIPT, chunk=6)
    env = {**os.environ, "ANTHROPIC_BASE_URL": served.url, "ANTHROPIC_API_KEY": API_KEY}
    env.pop("ANTHROPIC_AUTH_TOKEN", None)
    result = subprocess.run([node, "check.mjs"], cwd=TS, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)

    assert "".join(report["texts"]) == SCRIPT[1]["text"]
    assert report["snapshotSeen"]
    kinds = report["kinds"]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert {"thinking_delta", "signature_delta", "text_delta", "input_json_delta"} <= set(kinds)
    final = report["final"]
    assert final["model"] == "streamchat-script" and final["stop_reason"] == "tool_use"
    assert [b["type"] for b in final["content"]] == ["thinking", "text", "tool_use"]
    assert final["content"][0]["thinking"] == SCRIPT[0]["thinking"] and final["content"][0]["signature"]
    assert final["content"][2]["input"] == {"city": "Oslo"}
    assert report["raw"][0] == "message_start" and report["raw"][-1] == "message_stop"
    assert "ping" not in report["raw"]  # the SDK drops pings, as it does from the real API
    created = report["created"]
    assert created["content"] == final["content"] and created["usage"] == final["usage"]
    assert report["counted"]["input_tokens"] > 0
    assert report["models"] == ["streamchat-script"]
    missing = report["notFound"]
    assert (
        missing["name"] == "NotFoundError"
        and missing["status"] == 404
        and missing["type"] == "not_found_error"
    )
    assert missing["requestID"] and missing["requestID"] == missing["header"]
