"""Shared by the serving benchmarks: start a Messages API server, stream replies, time every token.

The client is deliberately lean (raw SSE over httpx2, one asyncio loop) so that on two cores it
takes as little as possible from the server it measures; every server under test speaks the same
`/v1/messages` streaming format (streamchat and llama.cpp's own `llama-server` both do).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
CACHE = Path(os.environ.get("STREAMCHAT_CACHE", Path.home() / ".cache" / "streamchat"))
BASELINE_REF = "b910152"  # main before batching: the one-at-a-time engine ("today's engine")

# An exported tree's engine loads the model as this tree's does (on an AMX build llama.cpp's own
# defaults crash at the first prompt: streamchat.engines.llama_model.model_params): a sitecustomize
# beside its `streamchat` runs before it, whether it loads through `Llama` or the C API.
EXPORT_SITECUSTOMIZE = """\
import importlib.util
import llama_cpp
import llama_cpp.llama_cpp as bindings
spec = importlib.util.spec_from_file_location("_current_model", {path!r})
current = importlib.util.module_from_spec(spec)
spec.loader.exec_module(current)
bindings.llama_model_default_params = llama_cpp.llama_model_default_params = current.model_params
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A server process under test."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_ready(name: str, proc: subprocess.Popen[bytes], url: str, timeout: float = 180) -> Server:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
            raise SystemExit(f"{name} exited: {err}")
        try:
            with urllib.request.urlopen(f"{url}/v1/models", timeout=1) as response:
                json.load(response)
                return Server(name, proc, url)
        except (OSError, ValueError):
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{name} did not start in {timeout:.0f} s")


def start_streamchat(name: str, args: Sequence[str], src: Path = SRC) -> Server:
    """`python -m streamchat.cli serve ARGS` with `src` first on the path (this tree, or an export)."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")])),
    }
    cmd = [sys.executable, "-m", "streamchat.cli", "serve", "--port", str(port), *args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return wait_ready(name, proc, f"http://127.0.0.1:{port}")


def llama_server_binary(version: str) -> Path | None:
    """The cached `llama-server` built by benchmarks/build_llama_server.sh, if any."""
    path = CACHE / f"llama-server-{version}" / "llama-server"
    return path if path.is_file() else None


def start_llama_server(name: str, binary: Path, model: Path, args: Sequence[str]) -> Server:
    from streamchat.engines.llama_model import amx_build  # the users put this tree's src/ on the path

    port = free_port()
    cmd = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "--no-webui", *args]
    if amx_build():  # the engine's setting (model_params): on an AMX build the defaults crash
        cmd.append("--no-repack")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return wait_ready(name, proc, f"http://127.0.0.1:{port}")


def export_baseline(ref: str = BASELINE_REF) -> tuple[Path, tempfile.TemporaryDirectory[str]]:
    """`src/` of the repository at `ref`, exported to a temporary directory (git archive)."""
    if shutil.which("git") is None:
        raise SystemExit("git is needed to export the baseline engine")
    tmp = tempfile.TemporaryDirectory(prefix="streamchat-baseline-")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "src"], capture_output=True, check=False
    )
    if archive.returncode != 0:
        raise SystemExit(f"git archive {ref} failed: {archive.stderr.decode(errors='replace')}")
    subprocess.run(["tar", "-x", "-C", tmp.name], input=archive.stdout, check=True)
    site = EXPORT_SITECUSTOMIZE.format(path=str(SRC / "streamchat" / "engines" / "llama_model.py"))
    (Path(tmp.name) / "src" / "sitecustomize.py").write_text(site)
    return Path(tmp.name) / "src", tmp


@dataclass
class Stream:
    """One streamed reply, timed on the client."""

    started: float
    first: float | None = None  # first text delta
    stamps: list[float] = field(default_factory=list)  # every text delta
    output_tokens: int = 0
    stop_reason: str | None = None
    text: str = ""

    @property
    def ttft(self) -> float:
        return (self.first or float("inf")) - self.started

    @property
    def ended(self) -> float:
        return self.stamps[-1] if self.stamps else self.started

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.stamps, self.stamps[1:], strict=False)]


def body(messages: list[dict[str, Any]], max_tokens: int, **sampling: Any) -> dict[str, Any]:
    return {"model": "local", "max_tokens": max_tokens, "stream": True, "messages": messages, **sampling}


async def stream(http: httpx.AsyncClient, request: dict[str, Any], *, keep_text: bool = False,
                 into: Stream | None = None) -> Stream:  # fmt: skip
    """POST a streaming /v1/messages and time its text deltas (into `into`, to watch it as it goes)."""
    result = into or Stream(0.0)
    result.started = time.perf_counter()
    async with http.stream("POST", "/v1/messages", json=request) as response:
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {(await response.aread())[:300]!r}")
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            if '"text_delta"' in line:
                now = time.perf_counter()
                if result.first is None:
                    result.first = now
                result.stamps.append(now)
                if keep_text:
                    result.text += json.loads(line[6:])["delta"]["text"]
            elif '"message_delta"' in line:
                event = json.loads(line[6:])
                result.stop_reason = event["delta"].get("stop_reason")
                result.output_tokens = int(event.get("usage", {}).get("output_tokens", 0))
    return result


def client(url: str, timeout: float = 600) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    headers = {"x-api-key": "local", "anthropic-version": "2023-06-01"}
    return httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits, headers=headers)


async def concurrent(url: str, requests: Sequence[dict[str, Any]]) -> tuple[list[Stream], float]:
    """All `requests` at once; the streams and the wall time from the start to the last token."""
    async with client(url) as http:
        start = time.perf_counter()
        streams = await asyncio.gather(*(stream(http, r) for r in requests))
    return list(streams), max(s.ended for s in streams) - start


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"
