"""Claim: a long prompt arriving does not stall the streams already decoding: while a 1,500-token
prompt is read, their p99 inter-token gap stays within 3x their median gap.

One run, the built-in model, greedy. Three streams start a long story (400 tokens each); once all
three are decoding, a request with a ~1,500-token prompt arrives. The gaps between consecutive text
deltas of the three streams are taken from that moment until the long request's first token (the
window in which its prompt is read) and over the streams' whole decode (with small prompt steps most
of it falls inside the window, so the median gap outside it, decode-only steps, is printed too, and
the p99 against it: the stricter ratio). Arms, each its own server:
  S. streamchat serve (its default prompt budget per step while others decode);
  U. streamchat serve --prefill-chunk 512 (the whole prompt batch at once: no fairness), for contrast;
  L. llama-server -np 4 (if built; see benchmarks/build_llama_server.sh), for reference.
Each arm is measured --rounds times, alternating; medians reported. Target: S's p99 gap in the
window <= 3x its median gap over the whole decode. Exits non-zero when missed.

Usage: python benchmarks/prefill_fairness.py [--rounds 3] [--no-llama-server]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from streamchat.config import builtin_model_path
from streamchat.engines.llama import default_threads
from streams import (
    Server,
    Stream,
    body,
    client,
    llama_server_binary,
    load,
    percentile,
    start_llama_server,
    start_streamchat,
    stream,
)

LONG_PROMPT = "Summarise the following notes in one sentence.\n\n" + " ".join(
    f"Note {i}: the river rose by {i % 7} centimetres near the old mill, and the ferry ran late."
    for i in range(95)
)
STORIES = ["a dragon and a knight", "a lighthouse keeper", "a robot learning to paint"]


async def one_round(server: Server, run: int) -> tuple[list[float], list[float], list[float], float]:
    """Gaps in the prefill window, over the whole decode, outside the window; the long prompt's TTFT."""
    async with client(server.url) as http:
        progress = [Stream(0.0) for _ in STORIES]
        decoding = [asyncio.create_task(stream(http, body(
            [{"role": "user", "content": f"Story {run}: Write a long story about {s}."}], 400, temperature=0),
            into=p)) for s, p in zip(STORIES, progress, strict=True)]  # fmt: skip
        while not all(len(p.stamps) >= 5 for p in progress):  # all three decode
            await asyncio.sleep(0.01)
            if any(t.done() for t in decoding):
                raise SystemExit("a story ended before the long prompt was sent")
        arrived = time.perf_counter()
        long = await stream(
            http, body([{"role": "user", "content": f"{run} {LONG_PROMPT}"}], 8, temperature=0)
        )
        streams = [await t for t in decoding]
    assert long.first is not None
    pairs = [(a, b) for s in streams for a, b in zip(s.stamps, s.stamps[1:], strict=False)]
    inside = [b > arrived and a < long.first for a, b in pairs]  # the gap overlaps the window
    window = [b - a for (a, b), i in zip(pairs, inside, strict=True) if i]
    outside = [b - a for (a, b), i in zip(pairs, inside, strict=True) if not i]
    return window, [b - a for a, b in pairs], outside, long.first - arrived


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-llama-server", action="store_true")
    args = parser.parse_args()
    threads = default_threads()[0]
    common = ["--n-ctx", "8192", "--threads", str(threads)]
    binary = (
        None if args.no_llama_server else llama_server_binary(importlib.metadata.version("llama-cpp-python"))
    )
    print(f"{load()}; {threads} threads", flush=True)
    servers: list[Server] = []
    results: dict[str, list[tuple[float, float, float, float, float]]] = {}
    try:
        servers.append(start_streamchat("S streamchat (default budget)", common))
        servers.append(
            start_streamchat("U streamchat --prefill-chunk 512", [*common, "--prefill-chunk", "512"])
        )
        if binary is not None:
            # -c is split between its 4 slots: 16384 gives each 4096, room for the ~2,200-token prompt
            flags = ["-t", str(threads), "-tb", str(threads), "-fa", "on", "-c", "16384", "-np", "4"]
            servers.append(start_llama_server("L llama-server -np 4", binary, builtin_model_path(), flags))
        run = 0
        for server in servers:
            run += 1
            asyncio.run(one_round(server, run))  # warm-up
        for r in range(args.rounds):
            for server in servers[r % len(servers) :] + servers[: r % len(servers)]:
                time.sleep(0.5)
                run += 1
                window, whole, outside, ttft = asyncio.run(one_round(server, run))
                med = statistics.median(whole)
                p99 = percentile(window, 0.99)
                row = (med, p99, max(window), ttft, statistics.median(outside))
                results.setdefault(server.name, []).append(row)
                print(f"round {r + 1} {server.name:34} median gap {med * 1000:5.1f} ms, in the window: p99 "
                      f"{p99 * 1000:6.1f} ms ({p99 / med:4.1f}x), max {max(window) * 1000:6.1f} ms, "
                      f"{len(window)} gaps; long prompt TTFT {ttft * 1000:5.0f} ms; "
                      f"median gap outside the window {row[4] * 1000:5.1f} ms (p99 {p99 / row[4]:4.1f}x it)",
                      flush=True)  # fmt: skip
    finally:
        for server in servers:
            server.stop()
    print(f"\n{load()}; medians of {args.rounds} rounds")
    print(
        "| server | median gap | p99 gap while the long prompt is read | ratio | max gap | long prompt TTFT "
        "| median gap outside the window | p99 / that |"
    )
    print("|---|---|---|---|---|---|---|---|")
    ratios = {}
    for name, rows in results.items():
        med, p99, worst, ttft, quiet = (statistics.median(x[i] for x in rows) for i in range(5))
        ratios[name] = p99 / med
        print(f"| {name} | {med * 1000:.1f} ms | {p99 * 1000:.1f} ms | {p99 / med:.1f}x "
              f"| {worst * 1000:.0f} ms | {ttft * 1000:.0f} ms | {quiet * 1000:.1f} ms "
              f"| {p99 / quiet:.1f}x |")  # fmt: skip
    ours = ratios[servers[0].name]
    print(f"\nS: p99 gap while the long prompt is read = {ours:.2f}x the median gap (target <= 3)")
    print("OK" if ours <= 3 else "FAIL: target missed")
    return 0 if ours <= 3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
