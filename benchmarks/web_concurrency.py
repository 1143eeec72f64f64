"""Claim: one web server process holds 100 page streams at once; all complete, without an error.

The real server (`streamchat web`'s app on the script engine, as in web_streaming.py) in its own
process; 100 clients in this process (httpx2, async, one connection each) act as 100 pages: each
starts a new conversation (`POST /api/conversations`, with the page's Origin) and reads its run's
events over SSE to the end. Each reply is the first 1,000 characters of the benchmark reply
(`web_reply.make_reply`) in 4-character deltas at 10 deltas/s (25 s on schedule), so all 100 are
open together; the server pays for 1,000 deltas/s in all, through the /v1 API, the SDK, the store
and the web view. Checked: every stream ends with `end` status complete, its blocks, fences and
lines build exactly `render_html` of the reply, and all 100 had started before the first ended.
Reported: the server's RSS (idle, peak as VmHWM, after), its CPU, and how long the streams took.

Exits non-zero when a stream fails. Run: `.venv/bin/python benchmarks/web_concurrency.py [--streams N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psutil

from web_reply import ROOT, cpu_seconds, load_average, make_reply, start_streamchat

sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "render"))

from html_pieces import assemble

from streamchat.render import render_html


@dataclass
class Stream:
    """One page's view of its reply."""

    started: float = 0.0
    ended: float = 0.0
    status: str = ""
    error: str = ""
    pieces: list[tuple[str, str, bool]] = field(default_factory=list)
    events: int = 0


async def one_page(client: httpx.AsyncClient, stream: Stream, first_end: asyncio.Event) -> None:
    """Start a conversation and read its events until `end`, as the page's EventSource does."""
    try:
        response = await client.post("/api/conversations", json={"text": "Explain the pipeline."})
        if response.status_code != 201:
            stream.error = f"POST {response.status_code}: {response.text[:200]}"
            return
        run_id = response.json()["run_id"]
        async with client.stream("GET", f"/api/runs/{run_id}/events") as events:
            if events.status_code != 200:
                stream.error = f"GET events {events.status_code}"
                return
            fields: dict[str, str] = {}
            async for line in events.aiter_lines():
                if line:
                    name, _, value = line.partition(":")
                    fields[name] = value[1:] if value.startswith(" ") else value
                    continue
                kind, data = fields.get("event"), fields.get("data")
                fields = {}
                if kind is None or data is None:
                    continue
                payload: dict[str, Any] = json.loads(data)
                stream.events += 1
                if kind == "start":
                    stream.started = time.perf_counter()
                elif kind in ("blocks", "fence", "lines"):
                    stream.pieces.append((kind, payload["html"], bool(payload.get("end"))))
                elif kind == "end":
                    stream.status = payload["status"]
                    stream.error = payload.get("error") or ""
                    stream.ended = time.perf_counter()
                    first_end.set()
                    return
        stream.error = stream.error or "the stream ended without `end`"
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        stream.error = f"{type(exc).__name__}: {exc}"


async def watch_memory(pid: int, samples: list[int], stop: asyncio.Event) -> None:
    process = psutil.Process(pid)
    while not stop.is_set():
        samples.append(process.memory_info().rss)
        await asyncio.sleep(0.1)


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


async def run(url: str, pid: int, count: int) -> tuple[list[Stream], int, list[int], float]:
    """All `count` pages at once; returns them, how many had started before the first ended, RSS, wall s."""
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    streams = [Stream() for _ in range(count)]
    first_end = asyncio.Event()
    samples: list[int] = []
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=url, headers={"origin": url}, timeout=600, limits=limits) as client:
        memory = asyncio.create_task(watch_memory(pid, samples, stop))
        began = time.perf_counter()
        pages = [asyncio.create_task(one_page(client, s, first_end)) for s in streams]
        await first_end.wait()
        open_together = sum(1 for s in streams if s.started)
        await asyncio.gather(*pages)
        wall = time.perf_counter() - began
        stop.set()
        await memory
    return streams, open_together, samples, wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--chars", type=int, default=1_000, help="characters in each reply")
    parser.add_argument("--rate", type=float, default=10.0, help="deltas a second in each stream")
    args = parser.parse_args(argv)
    reply = make_reply(80_000)[: args.chars]
    expected = render_html(reply)
    schedule = (len(reply) / 4 - 1) / args.rate
    print(f"load average: {load_average()}")
    print(f"{args.streams} streams of {len(reply):,} chars in 4-char deltas at {args.rate:g}/s "
          f"({schedule:.1f} s each on schedule)")  # fmt: skip
    with start_streamchat(reply, rate=args.rate) as server:
        with httpx.Client(base_url=server.url, timeout=30) as probe:  # the server is up and idle
            probe.get("/api/health").raise_for_status()
        idle = psutil.Process(server.pid).memory_info().rss
        cpu_before = cpu_seconds(server.pid)
        streams, together, samples, wall = asyncio.run(run(server.url, server.pid, args.streams))
        cpu = cpu_seconds(server.pid) - cpu_before
        peak = max(peak_rss(server.pid), *samples)
        after = psutil.Process(server.pid).memory_info().rss
        threads = psutil.Process(server.pid).num_threads()
    failed = [s for s in streams if s.status != "complete" or s.error]
    wrong = [s for s in streams if not s.error and assemble(s.pieces) != expected]
    durations = sorted(s.ended - s.started for s in streams if s.ended)
    print(f"  open at once: {together} of {args.streams} had started before the first ended")
    print(f"  completed: {args.streams - len(failed)} of {args.streams}; errors: {len(failed)}; "
          f"final HTML equal to render_html: {args.streams - len(failed) - len(wrong)}")  # fmt: skip
    for s in failed[:5]:
        print(f"    failed: status {s.status!r}, {s.error}")
    if durations:
        print(f"  stream time: median {durations[len(durations) // 2]:.1f} s, max {durations[-1]:.1f} s "
              f"(schedule {schedule:.1f} s); all done in {wall:.1f} s")  # fmt: skip
    print(f"  events read: {sum(s.events for s in streams):,}")
    mib = 1024 * 1024
    per_stream = (peak - idle) / args.streams / 1024
    print(f"  server RSS: idle {idle / mib:.1f} MiB, peak {peak / mib:.1f} MiB, after {after / mib:.1f} MiB; "
          f"{per_stream:.0f} KiB a stream at the peak; {threads} threads after")  # fmt: skip
    print(f"  server CPU: {cpu:.1f} s for {args.streams} replies ({cpu / args.streams * 1e3:.0f} ms a reply)")
    print(f"load average: {load_average()}")
    ok = not failed and not wrong and together == args.streams
    print("all streams complete, no errors" if ok else "MISSED: not every stream completed correctly")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
