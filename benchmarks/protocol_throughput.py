"""Protocol throughput of `streamchat serve`, against a bare uvicorn replay of the same bytes, in one run.

1. Events/s of one stream from the script engine at full speed (`--script-chunk 1`: one delta per
   character), counted at the client. The server runs in its own process, pinned to one core, the
   client on the other. Target: >= 20,000 events/s with a lean client (raw bytes, counting
   `event:` lines). The official SDK's rate is reported separately (it parses every event).
   Baseline: a minimal raw ASGI app on uvicorn replaying the very same pre-encoded SSE bytes, one
   send per event and (upper bound) 512 events per send. Printed as ours/baseline ratios.
2. 200 slow streams held open at once (5 deltas/s, ~6 s each): confirms all 200 were open together
   (200 `message_start`s before any stream finished) and reports the server's peak RSS and
   memory per stream.

Exits non-zero when a target is missed. Run: `.venv/bin/python benchmarks/protocol_throughput.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2 as httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
TARGET_EVENTS_PER_S = 20_000
STREAMS = 200
SLOW_RATE = 5.0  # deltas per second per slow stream
SLOW_DELTAS = 30  # so each slow stream lasts ~6 s
BODY = {"model": "any", "max_tokens": 10**7, "stream": True, "messages": [{"role": "user", "content": "Go"}]}
HEADERS = {"x-api-key": "bench", "anthropic-version": "2023-06-01"}


# -- the baseline: a bare ASGI app replaying pre-encoded SSE ---------------------------------------


def replay_app(events: list[bytes], batch: int) -> Callable[..., Any]:
    """A raw ASGI app that answers every request with `events`, `batch` events per send."""
    chunks = [b"".join(events[i : i + batch]) for i in range(0, len(events), batch)]
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def run_replay_server(path: str, port: int, batch: int) -> None:
    import uvicorn

    raw = Path(path).read_bytes()
    events = [frame + b"\n\n" for frame in raw.split(b"\n\n") if frame]
    uvicorn.run(
        replay_app(events, batch),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


# -- processes -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A server in its own process, pinned to one core when there are two."""

    def __init__(self, args: list[str], port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        self.proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        self.ps = psutil.Process(self.proc.pid)
        cores = os.sched_getaffinity(0)
        if len(cores) >= 2:
            server_core, *client_cores = sorted(cores)
            self.ps.cpu_affinity([server_core])
            os.sched_setaffinity(0, client_cores)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {args}")
            try:
                httpx.get(f"{self.url}/v1/models", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start") from None
                time.sleep(0.05)  # polling a process we just started for its socket

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def streamchat_server(script: Path, port: int, *extra: str) -> ServerProcess:
    args = ["-m", "streamchat.cli", "serve", "--engine", f"script:{script}", "--port", str(port), *extra]
    return ServerProcess(args, port)


# -- clients ---------------------------------------------------------------------------------------


def lean_count(url: str, http: httpx.Client) -> tuple[int, float, bytes]:
    """Events in one stream, counted on raw bytes; returns (events, seconds, body)."""
    marker = b"event: "
    count = 0
    tail = b""
    parts: list[bytes] = []
    started = time.perf_counter()
    with http.stream("POST", f"{url}/v1/messages", json=BODY, headers=HEADERS) as response:
        for chunk in response.iter_raw():
            joined = tail + chunk
            count += joined.count(b"\n" + marker) + (1 if not parts and joined.startswith(marker) else 0)
            tail = joined[-len(marker) :]
            parts.append(chunk)
    return count, time.perf_counter() - started, b"".join(parts)


def best_rate(runs: Iterator[tuple[int, float]]) -> tuple[float, int]:
    rates = []
    events = 0
    for events, seconds in runs:
        rates.append(events / seconds)
    return statistics.median(rates), events


def measure_lean(url: str, repeats: int = 5) -> tuple[float, int, bytes]:
    body = b""
    with httpx.Client(timeout=120) as http:
        lean_count(url, http)  # warm-up

        def runs() -> Iterator[tuple[int, float]]:
            nonlocal body
            for _ in range(repeats):
                events, seconds, body = lean_count(url, http)
                yield events, seconds

        rate, events = best_rate(runs())
    return rate, events, body


def measure_sdk(url: str) -> tuple[float, float]:
    """(raw events/s with messages.create(stream=True), text deltas/s with messages.stream().text_stream)."""
    client = anthropic.Anthropic(base_url=url, api_key="bench", max_retries=0)
    request: dict[str, Any] = {k: v for k, v in BODY.items() if k != "stream"}
    started = time.perf_counter()
    raw = sum(1 for _ in client.messages.create(**request, stream=True))
    raw_rate = raw / (time.perf_counter() - started)
    started = time.perf_counter()
    with client.messages.stream(**request) as stream:
        texts = sum(1 for _ in stream.text_stream)
    return raw_rate, texts / (time.perf_counter() - started)


async def hold_slow_streams(server: ServerProcess) -> dict[str, Any]:
    """Open STREAMS slow streams at once; sample the server's RSS while all are open."""
    opened = 0
    finished = 0
    finished_when_all_open = -1
    all_open = asyncio.Event()
    complete = 0
    peak_rss = 0
    peak_threads = 0
    idle_rss = server.rss()
    limits = httpx.Limits(max_connections=STREAMS + 10, max_keepalive_connections=STREAMS + 10)

    async with httpx.AsyncClient(limits=limits, timeout=60) as http:

        async def one() -> None:
            nonlocal opened, finished, finished_when_all_open, complete
            async with http.stream(
                "POST", f"{server.url}/v1/messages", json=BODY, headers=HEADERS
            ) as response:
                counted = False
                async for line in response.aiter_lines():
                    if not counted and line == "event: message_start":
                        counted = True
                        opened += 1
                        if opened == STREAMS:
                            finished_when_all_open = finished
                            all_open.set()
                    elif line == "event: message_stop":
                        complete += 1
            finished += 1

        async def sample() -> None:
            nonlocal peak_rss, peak_threads
            await all_open.wait()
            while finished == 0:
                peak_rss = max(peak_rss, server.rss())
                peak_threads = max(peak_threads, server.ps.num_threads())
                await asyncio.sleep(0.1)  # sampling period

        started = time.monotonic()
        tasks = [asyncio.create_task(one()) for _ in range(STREAMS)]
        sampler = asyncio.create_task(sample())
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)
        sampler.cancel()
        elapsed = time.monotonic() - started
    return {
        "opened": opened,
        "finished_when_all_open": finished_when_all_open,
        "complete": complete,
        "idle_rss": idle_rss,
        "peak_rss": peak_rss,
        "peak_threads": peak_threads,
        "seconds": elapsed,
    }


# -- main ------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--chars", type=int, default=200_000, help="script length (= text deltas) for events/s"
    )
    parser.add_argument("--replay", nargs=3, metavar=("SSE_FILE", "PORT", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replay:
        run_replay_server(args.replay[0], int(args.replay[1]), int(args.replay[2]))
        return 0

    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "long.md"
        script.write_text(("Streaming is just many small events. " * (args.chars // 37 + 1))[: args.chars])
        slow_script = Path(tmp) / "slow.md"
        slow_script.write_text("x" * (4 * SLOW_DELTAS))

        print(f"== one stream, script engine at full speed, {args.chars:,} one-character deltas")
        with streamchat_server(script, free_port(), "--script-chunk", "1") as server:
            ours, events, body = measure_lean(server.url)
            sdk_raw, sdk_text = measure_sdk(server.url)
        sse = Path(tmp) / "events.sse"
        sse.write_bytes(body)
        baselines = {}
        for label, batch in (
            ("baseline replay, one send per event", 1),
            ("ceiling: replay, 512 per send", 512),
        ):
            port = free_port()
            replay = [str(Path(__file__).resolve()), "--replay", str(sse), str(port), str(batch)]
            with ServerProcess(replay, port) as baseline:
                baselines[label], replayed, _ = measure_lean(baseline.url)
            assert replayed == events, (replayed, events)
        print(f"streamchat (lean client)           {ours:>10,.0f} events/s   ({events:,} events per stream)")
        for label, rate in baselines.items():
            kind = label.split(":")[0].split(" ")[0]
            print(f"{label:<35}{rate:>10,.0f} events/s   ours/{kind} = {ours / rate:.2f}")
        print(f"SDK messages.create(stream=True)   {sdk_raw:>10,.0f} events/s   (pydantic per event)")
        print(f"SDK messages.stream().text_stream  {sdk_text:>10,.0f} deltas/s")
        if ours < TARGET_EVENTS_PER_S:
            failures.append(f"events/s {ours:,.0f} < target {TARGET_EVENTS_PER_S:,}")

        print(f"\n== {STREAMS} concurrent slow streams ({SLOW_RATE:g} deltas/s, {SLOW_DELTAS} deltas each)")
        with streamchat_server(slow_script, free_port(), "--script-rate", str(SLOW_RATE)) as server:
            held = asyncio.run(hold_slow_streams(server))
        mib = 2**20
        per_stream = (held["peak_rss"] - held["idle_rss"]) / STREAMS
        print(
            f"open at once: {held['opened']} "
            f"(finished before the last opened: {held['finished_when_all_open']}); "
            f"completed: {held['complete']} in {held['seconds']:.1f}s"
        )
        print(
            f"server RSS idle {held['idle_rss'] / mib:.1f} MiB, peak {held['peak_rss'] / mib:.1f} MiB "
            f"with {held['peak_threads']} threads: {per_stream / 1024:.0f} KiB per stream"
        )
        if held["opened"] != STREAMS or held["finished_when_all_open"] != 0:
            failures.append(f"only {held['opened']} streams open at once")
        if held["complete"] != STREAMS:
            failures.append(f"only {held['complete']} of {STREAMS} streams completed")

    for failure in failures:
        print(f"MISSED: {failure}")
    print("all targets met" if not failures else f"{len(failures)} target(s) missed")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
