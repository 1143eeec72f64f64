"""Claim: a follow-up turn of a conversation reuses its cached prefix, with several conversations
interleaved, so its time to first token does not grow with the conversation.

One run, the built-in model, greedy replies of up to 48 tokens. Four conversations of five turns
each are interleaved (turn 1 of A, B, C, D, then turn 2 of each, ...), one request at a time:
  S. streamchat serve (this tree): the conversations run live, each reply becomes history;
  C. the same code, cold: S's very requests replayed with a unique system prompt each, so nothing
     but the template's first tokens can come from a cache;
  T. today's engine (commit BASELINE_REF, one KV sequence): S's requests replayed in the same
     interleaved order (its one cached sequence always holds another conversation).
TTFT = request sent to first text delta, per turn, median over conversations and rounds.

Usage: python benchmarks/kv_reuse.py [--rounds 2] [--conversations 4] [--turns 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from streams import Server, body, client, export_baseline, load, start_streamchat, stream

TOPICS = ["the history of tea", "how volcanoes form", "learning to play the violin", "the solar system",
          "baking sourdough bread", "the life of honeybees"]  # fmt: skip
FOLLOW_UPS = ["Tell me more.", "Why is that?", "Can you give an example?", "What else should I know?",
              "Summarise that in one sentence.", "What is the most surprising part?"]  # fmt: skip
SYSTEM = "You are a helpful assistant."


async def timed(http: Any, request: dict[str, Any]) -> tuple[float, str]:
    result = await stream(http, request, keep_text=True)
    return result.ttft, result.text


async def live(
    server: Server, conversations: int, turns: int, run: int
) -> list[tuple[int, dict[str, Any], float]]:
    histories: list[list[dict[str, str]]] = [[] for _ in range(conversations)]
    done = []
    async with client(server.url) as http:
        for turn in range(turns):
            for c in range(conversations):
                ask = (
                    f"Run {run}: tell me about {TOPICS[c % len(TOPICS)]}."
                    if turn == 0
                    else FOLLOW_UPS[turn - 1]
                )
                histories[c].append({"role": "user", "content": ask})
                request = body(list(histories[c]), 48, temperature=0, system=SYSTEM)
                ttft, text = await timed(http, request)
                histories[c].append({"role": "assistant", "content": text or "..."})
                done.append((turn, request, ttft))
    return done


async def replay(
    server: Server, requests: list[tuple[int, dict[str, Any], float]], cold: bool
) -> list[float]:
    out = []
    async with client(server.url) as http:
        for i, (_, request, _) in enumerate(requests):
            if cold:  # same length, nothing shared past the template's opening
                request = {**request, "system": f"{i:05d} " + SYSTEM[6:]}
            ttft, _ = await timed(http, request)
            out.append(ttft)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--conversations", type=int, default=4)
    parser.add_argument("--turns", type=int, default=5)
    args = parser.parse_args()
    print(f"{load()}", flush=True)
    src, keep = export_baseline()
    servers: list[Server] = []
    ttfts: dict[str, dict[int, list[float]]] = {"S": {}, "C": {}, "T": {}}
    prompt_tokens: dict[int, list[int]] = {}
    try:
        ours = start_streamchat("S", ["--n-ctx", "8192"])
        cold = start_streamchat("C", ["--n-ctx", "8192"])
        today = start_streamchat("T", ["--n-ctx", "8192"], src)
        servers = [ours, cold, today]
        for r in range(args.rounds):
            requests = asyncio.run(live(ours, args.conversations, args.turns, r))
            time.sleep(0.3)
            cold_ttfts = asyncio.run(replay(cold, requests, cold=True))
            time.sleep(0.3)
            today_ttfts = asyncio.run(replay(today, requests, cold=False))
            for (turn, request, ttft), c, t in zip(requests, cold_ttfts, today_ttfts, strict=True):
                ttfts["S"].setdefault(turn, []).append(ttft)
                ttfts["C"].setdefault(turn, []).append(c)
                ttfts["T"].setdefault(turn, []).append(t)
                count = httpx.post(f"{ours.url}/v1/messages/count_tokens", json={**request, "stream": None},
                                   headers={"x-api-key": "local"}).json()["input_tokens"]  # fmt: skip
                prompt_tokens.setdefault(turn, []).append(int(count))
            print(f"round {r + 1} done", flush=True)
    finally:
        for server in servers:
            server.stop()
        keep.cleanup()
    print(
        f"\n{load()}; {args.conversations} conversations interleaved, medians over conversations and rounds"
    )
    print("| turn | prompt tokens | S reused | C cold | T today's engine | S / C |")
    print("|---|---|---|---|---|---|")
    follow: dict[str, list[float]] = {"S": [], "C": [], "T": []}
    for turn in sorted(ttfts["S"]):
        s, c, t = (statistics.median(ttfts[a][turn]) for a in "SCT")
        if turn:
            for arm in "SCT":
                follow[arm] += ttfts[arm][turn]
        tokens = statistics.median(prompt_tokens[turn])
        print(f"| {turn + 1} | {tokens:.0f} | {s * 1000:.0f} ms | {c * 1000:.0f} ms | {t * 1000:.0f} ms "
              f"| {s / c:.2f} |")  # fmt: skip
    s, c, t = (statistics.median(follow[a]) for a in "SCT")
    print(
        f"\nfollow-up turns (2-{args.turns}): median TTFT S {s * 1000:.0f} ms, cold {c * 1000:.0f} ms, "
        f"today's engine {t * 1000:.0f} ms: {1 - s / c:.0%} less than cold, {1 - s / t:.0%} less than today"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
