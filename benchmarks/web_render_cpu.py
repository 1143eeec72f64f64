"""Claim: the web view costs the server about what the terminal renderer costs for the same reply.

One process, one run, the same 80 KB reply (`web_reply.make_reply`) in 4-character deltas on a
simulated clock at 2,000 deltas/s, both views painting at most 30 frames a second by their own rule:

- web view: what the server does per reply for a page, from the reply's events to SSE bytes:
  `protocol.ReplyEncoder` (commit-and-tail HTML, code by lines, sanitized; tails paced to 30/s),
  each event's JSON as the event log stores it, and the SSE frames the page is sent
  (`sse.encode_events`, one batch per frame);
- terminal: `render.TerminalRenderer` drawing the same deltas for a 100 x 40 terminal, its frames
  written to /dev/null.

CPU is `time.process_time()` of each replay; the arms alternate, 5 rounds after a warm-up, and the
medians are compared. The end-to-end CPU of the web server process per reply (SDK, store, HTTP) is
in web_streaming.py's output. Run: `.venv/bin/python benchmarks/web_render_cpu.py [--rounds N]`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time

from web_reply import CHUNK, RATE, ROOT, deltas, describe, load_average, make_reply

sys.path.insert(0, str(ROOT / "src"))

from streamchat.chat.events import BlockEnd, BlockStart, Delta, TurnEnd
from streamchat.render import TerminalRenderer, render_html
from streamchat.web.eventlog import LoggedEvent
from streamchat.web.protocol import ReplyEncoder
from streamchat.web.sse import encode_events


class Clock:
    """The simulated clock both views read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def web_view(parts: list[str]) -> tuple[float, int, int]:
    """Replay through the web view. Returns CPU seconds, SSE batches sent and their bytes."""
    clock = Clock()
    encoder = ReplyEncoder("streamchat-script", True, 30.0, clock=clock)
    seq = 0
    sent = frames = 0

    def send(events: list[tuple[str, dict[str, object]]]) -> None:
        nonlocal seq, sent, frames
        if not events:
            return
        logged = []
        for kind, data in events:
            seq += 1
            logged.append(LoggedEvent(seq, kind, json.dumps(data, ensure_ascii=False, separators=(",", ":"))))
        sent += len(encode_events(logged))
        frames += 1

    start = time.process_time()
    send(encoder.encode(BlockStart("text")))
    for index, part in enumerate(parts):
        clock.now = index / RATE
        send(encoder.encode(Delta("text", part)))
        if (due := encoder.next_due()) is not None and due <= (index + 1) / RATE:
            clock.now = due  # the encoder thread's timer: a held-back tail goes out when due
            send(encoder.flush())
    send(encoder.encode(BlockEnd("text")))
    send(encoder.encode(TurnEnd("complete", "end_turn", 10, len(parts))))
    return time.process_time() - start, frames, sent


def terminal_view(parts: list[str]) -> tuple[float, int]:
    """Replay through TerminalRenderer to /dev/null. Returns CPU seconds and frames written."""
    with open(os.devnull, "w", encoding="utf-8") as sink:
        writes = 0

        def write(data: str) -> None:
            nonlocal writes
            writes += 1
            sink.write(data)

        renderer = TerminalRenderer(write, 100, 40, max_fps=30.0)
        start = time.process_time()
        for index, part in enumerate(parts):
            renderer.feed(part, index / RATE)
            if (index + 1) % 8 == 0:
                renderer.tick((index + 1) / RATE)  # the REPL's timer between deltas
        renderer.finish()
        return time.process_time() - start, writes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    reply = make_reply(80_000, args.seed)
    parts = deltas(reply)
    print(f"load average: {load_average()}")
    print(f"reply: {describe(reply)}")
    print(f"{len(parts):,} deltas of {CHUNK} chars on a simulated clock at {RATE:g}/s")
    render_html(reply)  # warm-up: lexers, parsers
    web_view(parts)
    terminal_view(parts)
    web_cpu, term_cpu = [], []
    for _ in range(args.rounds):
        gc.collect()
        cpu, frames, sent = web_view(parts)
        web_cpu.append(cpu)
        gc.collect()
        tcpu, writes = terminal_view(parts)
        term_cpu.append(tcpu)
    web, term = statistics.median(web_cpu), statistics.median(term_cpu)
    print(f"  web view:  {web:6.3f} s CPU per reply  ({frames} SSE batches, {sent:,} bytes; "
          f"runs {', '.join(f'{v:.3f}' for v in web_cpu)})")  # fmt: skip
    print(f"  terminal:  {term:6.3f} s CPU per reply  ({writes} frames written; "
          f"runs {', '.join(f'{v:.3f}' for v in term_cpu)})")  # fmt: skip
    print(f"  web / terminal = {web / term:.2f}")
    print(f"load average: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
