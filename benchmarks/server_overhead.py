"""Claim: serving the built-in model through streamchat is as fast as llama-cpp-python in-process.

One run, same machine, same model file, same prompt, greedy, same number of generated tokens:
  A. baseline: llama-cpp-python's high-level API in this process, `Llama.create_completion(stream=True)`
     on the prompt rendered by llama-cpp-python's own chat formatter, loaded as llama-cpp-python ships
     it (only n_ctx and the threads set, as the engine's);
  B. server: `streamchat serve` in a subprocess (its own GIL and event loop, as in real use), driven
     over loopback by the official `anthropic` SDK, `messages.stream(...)`, temperature 0;
  R. reference: A with the engine's context settings (flash attention on, as llama.cpp's own
     default): B / R is the cost of the serving path alone (server + SDK client on the same cores).
Runs alternate (A, B, R, A, B, R, ...) after one warm-up each, so that drift hits every arm, and
each starts after a collect-and-settle pause (else the run after another one pays for its garbage
and its still-spinning OpenMP workers); each arm reuses its KV cache for the repeated prompt, as a
chat does. Decode rate = (tokens - 1) /
(last text delta - first text delta); TTFT = call to first text delta. Only one arm generates at a
time (2 cores). Targets: median B rate >= 0.95 x median A rate; median TTFT(B) - TTFT(A) <= 15 ms.
B / R is printed for reference. Exits non-zero if a target is missed.

Usage: python benchmarks/server_overhead.py [--runs 9] [--max-tokens 256] [--n-ctx 2048]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import anthropic
import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from streamchat.config import builtin_model_path
from streamchat.engines.llama import default_threads
from streamchat.engines.llama_model import high_level_llama

SRC = Path(__file__).resolve().parents[1] / "src"
PROMPT = "Write a long story about a dragon and a knight."
TARGET_RATIO = 0.95
TARGET_TTFT_MS = 15.0
SETTLE_S = 0.3  # between runs, untimed (a chat's turns are seconds apart, too)


@dataclass(frozen=True)
class Run:
    tokens: int
    deltas: int
    ttft: float  # seconds
    rate: float  # tokens/s between the first and the last text delta


def measure(start: float, stamps: list[float], tokens: int) -> Run:
    if len(stamps) < 2:
        raise SystemExit(f"a run produced {len(stamps)} text deltas: pick a prompt that does not stop early")
    return Run(tokens, len(stamps), stamps[0] - start, (tokens - 1) / (stamps[-1] - stamps[0]))


def direct(llm: llama_cpp.Llama, prompt: str, max_tokens: int) -> Run:
    stamps: list[float] = []
    finish = None
    start = time.perf_counter()
    chunks = llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0, stream=True)
    assert isinstance(chunks, Iterator)
    for chunk in chunks:
        choice = chunk["choices"][0]
        if choice["text"]:
            stamps.append(time.perf_counter())
        finish = choice["finish_reason"] or finish
    if finish != "length":
        raise SystemExit(f"direct run stopped early ({finish}): pick a prompt that does not")
    return measure(start, stamps, max_tokens)


def served(client: anthropic.Anthropic, model: str, max_tokens: int) -> Run:
    stamps: list[float] = []
    start = time.perf_counter()
    with client.messages.stream(model=model, max_tokens=max_tokens, extra_body={"temperature": 0},
                                messages=[{"role": "user", "content": PROMPT}]) as stream:  # fmt: skip
        for event in stream:
            if event.type == "text" and event.text:
                stamps.append(time.perf_counter())
        message = stream.get_final_message()
    if message.stop_reason != "max_tokens":
        raise SystemExit(f"server run stopped early ({message.stop_reason}): pick a prompt that does not")
    return measure(start, stamps, message.usage.output_tokens)


def settle() -> None:
    """Start every run alike: no garbage from the last one pending, no OpenMP worker still spinning."""
    gc.collect()
    time.sleep(SETTLE_S)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, n_ctx: int) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
    }
    cmd = [sys.executable, "-m", "streamchat.cli", "serve", "--port", str(port), "--n-ctx", str(n_ctx)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(f"{url}/v1/models", timeout=1) as response:
                return proc, str(json.load(response)["data"][0]["id"])
        except (OSError, KeyError, ValueError):
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start in 120 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--n-ctx", type=int, default=2048)
    args = parser.parse_args()

    path = str(builtin_model_path())
    threads, batch_threads = default_threads()
    port = free_port()
    server, model = start_server(port, args.n_ctx)
    try:
        # high_level_llama: as the engine loads it (on an AMX build llama.cpp's defaults crash)
        stock = high_level_llama(path, n_ctx=args.n_ctx, n_threads=threads, n_threads_batch=batch_threads,
                                 verbose=False)  # fmt: skip
        same = high_level_llama(path, n_ctx=args.n_ctx, n_threads=threads, n_threads_batch=batch_threads,
                                flash_attn=True, verbose=False)  # fmt: skip
        meta = stock.metadata
        formatter = Jinja2ChatFormatter(
            meta["tokenizer.chat_template"], eos_token="<|im_end|>", bos_token="<|im_start|>"
        )
        prompt = formatter(messages=[{"role": "user", "content": PROMPT}]).prompt
        client = anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}", api_key="local", max_retries=0)
        arms: dict[str, Callable[[], Run]] = {
            "A llama-cpp-python high-level API": lambda: direct(stock, prompt, args.max_tokens),
            "B streamchat server + SDK": lambda: served(client, model, args.max_tokens),
            "R A with the engine's settings": lambda: direct(same, prompt, args.max_tokens),
        }
        results: dict[str, list[Run]] = {name: [] for name in arms}
        for arm in arms.values():  # warm-up: caches, connections, first-call costs
            settle()
            arm()
        for i in range(args.runs):
            for name, arm in arms.items():
                settle()
                run = arm()
                results[name].append(run)
                print(f"run {i + 1} {name:34} {run.rate:7.1f} tok/s  ttft {run.ttft * 1000:6.1f} ms  "
                      f"({run.tokens} tokens, {run.deltas} deltas)", flush=True)  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=10)

    print(f"\nmodel {Path(path).name}, {args.max_tokens} tokens, greedy, {threads} threads, "
          f"medians of {args.runs} alternating runs:")  # fmt: skip
    medians = {}
    for name, runs in results.items():
        rate = statistics.median(r.rate for r in runs)
        ttft = statistics.median(r.ttft for r in runs) * 1000
        medians[name] = (rate, ttft)
        print(f"  {name:34} {rate:7.1f} tok/s   ttft {ttft:6.1f} ms")
    (rate_a, ttft_a), (rate_b, ttft_b), (rate_r, ttft_r) = medians.values()
    ratio = rate_b / rate_a
    overhead = ttft_b - ttft_a
    print(f"\nserver / high-level API: {ratio:.3f}x tokens/s   (target >= {TARGET_RATIO})")
    print(f"server TTFT overhead:    {overhead:+.1f} ms        (target <= {TARGET_TTFT_MS:g} ms)")
    alone = f"{rate_b / rate_r:.3f}x tokens/s, TTFT {ttft_b - ttft_r:+.1f} ms"
    print(f"reference, the serving path alone (B / R): {alone}")
    missed = ratio < TARGET_RATIO or overhead > TARGET_TTFT_MS
    print("FAIL: a target was missed" if missed else "OK: both targets met")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
