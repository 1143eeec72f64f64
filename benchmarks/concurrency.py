"""Claim: with continuous batching, `streamchat serve` serves 1, 4 and 8 concurrent streams of the
built-in model at least as fast as llama.cpp's own `llama-server`, and one stream as fast as before.

One run, four servers side by side on the same machine, same GGUF (the built-in SmolLM2-135M Q4_1),
same threads, flash attention on, n_ctx 8192, greedy, 200 tokens per stream:
  S. streamchat serve (this tree, continuous batching, its default --parallel);
  T. today's engine: streamchat serve from commit BASELINE_REF (one generation at a time), exported
     with `git archive` into a temporary directory;
  L4 / L8. llama-server -np 4 / -np 8, built from the llama.cpp vendored in the installed
     llama-cpp-python's sdist (benchmarks/build_llama_server.sh caches it outside the repo).
Each measurement starts c streams at once (c = 1, 4, 8) with c different prompts, each made unique
by a run number so no server answers from a cache of an earlier run; the client reads raw SSE from
`/v1/messages` (both servers speak it). Aggregate tok/s = all output tokens / (first request sent to
last token received); TTFT = request sent to first text delta. Arms alternate within each round, the
medians over rounds are reported. Targets: aggregate S >= L8 at 4 and 8 streams; worst TTFT S <= L8
at 4 and 8; one stream S >= 0.95 x T. Exits non-zero when a target is missed. Also prints each
server's peak resident memory (its KV cache is most of it).

Usage: python benchmarks/concurrency.py [--rounds 3] [--tokens 200] [--parallel N[,M...]] [--no-llama-server]
       [--also-ref REF]   (one more streamchat arm: the tree at REF, e.g. the unified-KV engine 70fd66a)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from streamchat.config import builtin_model_path
from streamchat.engines.llama import default_threads
from streams import (
    BASELINE_REF,
    Server,
    body,
    concurrent,
    export_baseline,
    llama_server_binary,
    load,
    start_llama_server,
    start_streamchat,
)

SUBJECTS = ["a dragon and a knight", "a lighthouse keeper", "a robot learning to paint", "two rival chefs",
            "a lost city under the sea", "a clockmaker's apprentice", "a journey across the desert",
            "a girl who could talk to birds"]  # fmt: skip
LEVELS = (1, 4, 8)


@dataclass(frozen=True)
class Measure:
    aggregate: float  # tok/s
    worst_ttft: float  # s
    median_ttft: float  # s
    stream_rate: float  # median per-stream tok/s between its first and last token
    short: int  # streams that stopped before the token count


def prompts(count: int, run: int) -> list[str]:
    return [f"Story {run}-{i}: Write a long story about {SUBJECTS[i % len(SUBJECTS)]}." for i in range(count)]


def measure(server: Server, count: int, run: int, tokens: int) -> Measure:
    requests = [body([{"role": "user", "content": p}], tokens, temperature=0) for p in prompts(count, run)]
    streams, wall = asyncio.run(concurrent(server.url, requests))
    total = sum(s.output_tokens for s in streams)
    rates = [(len(s.stamps) - 1) / (s.stamps[-1] - s.stamps[0]) for s in streams if len(s.stamps) > 1]
    return Measure(
        aggregate=total / wall,
        worst_ttft=max(s.ttft for s in streams),
        median_ttft=statistics.median(s.ttft for s in streams),
        stream_rate=statistics.median(rates) if rates else 0.0,
        short=sum(s.output_tokens < tokens for s in streams),
    )


def peak_rss(server: Server) -> int:
    """The server process's peak resident memory in bytes (Linux), 0 if it cannot be read."""
    try:
        status = Path(f"/proc/{server.proc.pid}/status").read_text()
    except OSError:
        return 0
    line = next((x for x in status.splitlines() if x.startswith("VmHWM:")), "VmHWM: 0 kB")
    return int(line.split()[1]) * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--parallel", default="", metavar="N[,M...]",
                        help="streamchat's --parallel (default: its own); several: one arm each, "
                             "the targets checked on the first")  # fmt: skip
    parser.add_argument("--baseline-ref", default=BASELINE_REF)
    parser.add_argument("--also-ref", action="append", default=[], metavar="REF",
                        help="one more streamchat arm: the tree at REF (git archive), e.g. an earlier "
                             "engine design")  # fmt: skip
    parser.add_argument("--no-llama-server", action="store_true", help="only streamchat vs today's engine")
    args = parser.parse_args()

    version = importlib.metadata.version("llama-cpp-python")
    binary = None if args.no_llama_server else llama_server_binary(version)
    if binary is None and not args.no_llama_server:
        print(f"llama-server for llama-cpp-python {version} is not built. Build it (~10 minutes on 2 cores,\n"
              f"cached in ~/.cache/streamchat/llama-server-{version}/, nothing in the repository):\n"
              f"  sh benchmarks/build_llama_server.sh\n"
              f"or run with --no-llama-server.", file=sys.stderr)  # fmt: skip
        return 2
    threads = default_threads()[0]
    model = builtin_model_path()
    common = ["--n-ctx", "8192", "--threads", str(threads)]
    parallels = [int(n) for n in args.parallel.split(",") if n.strip()] or [0]
    baseline_src, keep = export_baseline(args.baseline_ref)
    extra = [(ref, *export_baseline(ref)) for ref in args.also_ref]
    print(
        f"{load()}; {threads} threads; model {model.name}; {args.tokens} greedy tokens per stream", flush=True
    )
    servers: list[Server] = []
    try:
        for i, n in enumerate(parallels):
            name = f"S{'' if i == 0 else i + 1} streamchat{f' --parallel {n}' if n else ''}"
            servers.append(start_streamchat(name, [*common, *(["--parallel", str(n)] if n else [])]))
        servers.insert(1, start_streamchat(f"T today's engine ({args.baseline_ref})", common, baseline_src))
        for i, (ref, src, _) in enumerate(extra):
            servers.insert(2 + i, start_streamchat(f"R{i + 1} streamchat at {ref}", common, src))
        if binary is not None:
            flags = ["-t", str(threads), "-tb", str(threads), "-fa", "on", "-c", "8192"]
            servers.append(start_llama_server("L4 llama-server -np 4", binary, model, [*flags, "-np", "4"]))
            servers.append(start_llama_server("L8 llama-server -np 8", binary, model, [*flags, "-np", "8"]))
        results: dict[tuple[str, int], list[Measure]] = {}
        run = 0
        for server in servers:  # warm-up: first-call costs, connections
            run += 1
            measure(server, 1, run, 16)
        for r in range(args.rounds):
            order = servers[r % len(servers) :] + servers[: r % len(servers)]
            for server in order:
                for count in LEVELS:
                    time.sleep(0.5)  # the last run's threads settle
                    run += 1
                    m = measure(server, count, run, args.tokens)
                    results.setdefault((server.name, count), []).append(m)
                    print(
                        f"round {r + 1} {server.name:34} x{count}: {m.aggregate:6.1f} tok/s, worst TTFT "
                        f"{m.worst_ttft * 1000:7.0f} ms, median {m.median_ttft * 1000:6.0f} ms, per stream "
                        f"{m.stream_rate:5.1f} tok/s{f', {m.short} short' if m.short else ''}",
                        flush=True,
                    )
        print("\npeak memory (VmHWM): " + ", ".join(f"{s.name.split()[0]} {peak_rss(s) / 2**20:.0f} MiB"
                                                  for s in servers))  # fmt: skip
    finally:
        for server in servers:
            server.stop()
        keep.cleanup()
        for _, _, tmp in extra:
            tmp.cleanup()

    def med(name: str, count: int, attr: str) -> float:
        return statistics.median(getattr(m, attr) for m in results[(name, count)])

    names = [s.name for s in servers]
    print(f"\n{load()}; medians of {args.rounds} rounds")
    print("| streams | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for count in LEVELS:
        cells = [f"{med(n, count, 'aggregate'):.0f} tok/s, worst TTFT {med(n, count, 'worst_ttft'):.2f} s"
                 for n in names]  # fmt: skip
        print(f"| {count} | " + " | ".join(cells) + " |")
    s_name, t_name = names[0], names[1]
    missed = []
    single = med(s_name, 1, "stream_rate") / med(t_name, 1, "stream_rate")
    print(f"\none stream, S / T decode rate: {single:.3f}x (target >= 0.95)")
    if single < 0.95:
        missed.append("one stream")
    if binary is not None:
        l8 = next(n for n in names if n.startswith("L8"))
        for count in (4, 8):
            ratio = med(s_name, count, "aggregate") / med(l8, count, "aggregate")
            ttft_s, ttft_l = med(s_name, count, "worst_ttft"), med(l8, count, "worst_ttft")
            print(f"{count} streams: aggregate S / L8 {ratio:.3f}x (target >= 1.0); "
                  f"worst TTFT S {ttft_s * 1000:.0f} ms vs L8 {ttft_l * 1000:.0f} ms (target: S <= L8)")
            if ratio < 1.0:
                missed.append(f"aggregate at {count}")
            if ttft_s > ttft_l:
                missed.append(f"worst TTFT at {count}")
    short = sum(m.short for ms in results.values() for m in ms)
    if short:
        print(f"note: {short} streams stopped before {args.tokens} tokens (counted as they were)")
    print("FAIL: " + ", ".join(missed) if missed else "OK: all targets met")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
