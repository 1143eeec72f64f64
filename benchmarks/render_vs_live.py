"""Claim: streaming Markdown with streamchat.render costs a small fraction of rich Live re-rendering it.

One run, same machine, same text, same width, same frame schedule:
  1. CPU: an 80 KB reply (headings, paragraphs, lists, tables, code) fed in 4-character chunks on a
     simulated clock, through TerminalRenderer and through rich Live re-rendering the whole Markdown,
     both limited to 30 frames a second by the same rule. Target: ours <= 1/20 of Live's CPU time.
  2. Frame time: p50/p99 of our frames for 8 KB, 40 KB and 80 KB replies. Target: p99 < 5 ms and
     flat (p99 at 80 KB <= 2 x p99 at 8 KB + 1 ms).
  3. Latency: the 80 KB reply fed at 5,000 chunks a second on the real clock, with a 2 ms tick timer
     as a REPL would run; the time from a chunk's arrival to the write() that puts it on screen.
     Target: under 50 ms for the last chunk (and reported for all chunks).
Exits non-zero if a target is missed. Output goes to /dev/null through one write per frame.

Usage: python benchmarks/render_vs_live.py [--live-frames N] [--seed S]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown

from streamchat.render import TerminalRenderer

WIDTH, HEIGHT = 100, 40
FPS = 30.0
CHUNK = 4

_VOCABULARY = (
    "stream token render block commit tail frame terminal scrollback markdown parser lexer buffer "
    "cursor region width height latency model reply server client request response context window "
    "cache table column row list item heading paragraph quote fence language python rust bytes"
)
_WORDS = _VOCABULARY.split()

_PYTHON = [
    "def {n}(items: list[int], limit: int = {k}) -> int:",
    '    """Return the sum of the first items, at most {k}."""',
    "    total = 0",
    "    for index, value in enumerate(items):",
    "        if index >= limit:",
    "            break",
    "        total += value * {k}  # scale",
    '    print(f"{{total=}} from {{len(items)}} items")',
    "    return total",
    "",
    "class {N}:",
    "    def __init__(self, name: str) -> None:",
    "        self.name = name",
    "        self.values: dict[str, float] = {{}}",
]
_JS = [
    "export async function {n}(url, options = {{}}) {{",
    "  const response = await fetch(url, {{ ...options, method: 'GET' }});",
    "  if (!response.ok) throw new Error(`status ${{response.status}}`);",
    "  const data = await response.json(); // parse",
    "  return data.items.filter((x) => x.score > {k}).map((x) => x.id);",
    "}}",
]
_BASH = [
    "for f in src/*.py; do",
    '  echo "checking $f"',
    "  grep -c '{n}' \"$f\" || true",
    "done",
    "export LIMIT={k}",
]


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 16))]
    index = rng.randrange(len(words))
    words[index] = rng.choice(["**{}**", "*{}*", "`{}`", "[{}](https://example.com/docs)"]).format(
        words[index]
    )
    return " ".join(words).capitalize() + "."


def _code(rng: random.Random) -> str:
    language, lines = rng.choice([("python", _PYTHON), ("javascript", _JS), ("bash", _BASH)])
    count = rng.randint(8, 36)
    name = rng.choice(_WORDS)
    body = [
        lines[i % len(lines)].format(n=f"{name}_{i}", N=name.capitalize(), k=rng.randint(1, 99))
        for i in range(count)
    ]
    return "```" + language + "\n" + "\n".join(body) + "\n```"


def _block(rng: random.Random) -> str:
    kind = rng.choices(
        ["paragraph", "bullets", "numbers", "table", "code", "quote", "heading"],
        weights=[30, 12, 8, 8, 12, 5, 8],
    )[0]
    if kind == "paragraph":
        return " ".join(_sentence(rng) for _ in range(rng.randint(2, 6)))
    if kind == "bullets":
        loose = rng.random() < 0.3
        items = []
        for _ in range(rng.randint(3, 8)):
            items.append(f"- {_sentence(rng)}")
            if rng.random() < 0.25:
                items.append(f"  - {_sentence(rng)}")
        return ("\n\n" if loose else "\n").join(items)
    if kind == "numbers":
        return "\n".join(f"{i}. {_sentence(rng)}" for i in range(1, rng.randint(3, 8) + 1))
    if kind == "table":
        columns = rng.randint(3, 5)
        header = "| " + " | ".join(rng.choice(_WORDS).capitalize() for _ in range(columns)) + " |"
        rule = "|" + "|".join(rng.choice(["---", ":--", "--:"]) for _ in range(columns)) + "|"
        rows = [
            "| "
            + " | ".join(
                " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 3))) for _ in range(columns)
            )
            + " |"
            for _ in range(rng.randint(4, 12))
        ]
        return "\n".join([header, rule, *rows])
    if kind == "code":
        return _code(rng)
    if kind == "quote":
        return "\n".join(f"> {_sentence(rng)}" for _ in range(rng.randint(1, 3)))
    return f"{'#' * rng.randint(2, 3)} {rng.choice(_WORDS).capitalize()} {rng.choice(_WORDS)}"


def make_reply(size: int, seed: int = 7) -> str:
    """A deterministic Markdown reply of about `size` characters (cut at a block boundary)."""
    rng = random.Random(seed)
    blocks = ["# Streaming report"]
    length = len(blocks[0])
    while length < size:
        block = _block(rng)
        blocks.append(block)
        length += len(block) + 2
    return "\n\n".join(blocks) + "\n"


def chunks(text: str, size: int = CHUNK) -> list[str]:
    """`text` cut into pieces of `size` characters."""
    return [text[i : i + size] for i in range(0, len(text), size)]


class Sink:
    """Counts writes and sends the data to /dev/null."""

    def __init__(self) -> None:
        self.writes = 0
        self.devnull = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115

    def write(self, data: str) -> None:
        self.writes += 1
        self.devnull.write(data)

    def flush(self) -> None:
        self.devnull.flush()


def arrival_times(count: int, rate: float) -> list[float]:
    """Simulated arrival times of `count` chunks at `rate` chunks a second."""
    return [index / rate for index in range(count)]


def frame_marks(times: list[float]) -> list[bool]:
    """Which arrivals get a frame under the 30 fps rule both renderers use (a frame if 1/30 s passed)."""
    marks, last = [], -math.inf
    for now in times:
        marks.append(now - last >= 1 / FPS)
        if marks[-1]:
            last = now
    return marks


def warm_up() -> None:
    """Load what a first reply loads once per process (pygments lexers, markdown-it, rich styles)."""
    sink = Sink()
    renderer = TerminalRenderer(sink.write, WIDTH, HEIGHT, max_fps=FPS)
    for chunk in chunks(make_reply(20_000, seed=99)):
        renderer.feed(chunk, 0.0)
    renderer.finish()


def run_ours(parts: list[str], times: list[float]) -> tuple[float, list[float], list[float], int]:
    """Replay through TerminalRenderer.

    Returns total CPU seconds, per-frame CPU seconds and per-frame wall seconds (for the feed()
    calls that painted), and the number of writes.
    """
    sink = Sink()
    renderer = TerminalRenderer(sink.write, WIDTH, HEIGHT, max_fps=FPS)
    frame_cpu: list[float] = []
    frame_wall: list[float] = []
    cpu_start = time.process_time()
    for chunk, now in zip(parts, times, strict=True):
        writes = sink.writes
        cpu, wall = time.thread_time(), time.perf_counter()
        renderer.feed(chunk, now)
        if sink.writes != writes:
            frame_cpu.append(time.thread_time() - cpu)
            frame_wall.append(time.perf_counter() - wall)
    renderer.finish()
    return time.process_time() - cpu_start, frame_cpu, frame_wall, sink.writes


def run_live(parts: list[str], times: list[float], frame_limit: int) -> tuple[float, int]:
    """Replay through rich Live, re-rendering the whole Markdown at each frame of the same schedule.

    Stops after `frame_limit` frames (0: no limit). Returns CPU seconds and frames done.
    """
    sink = Sink()
    console = Console(file=sink, width=WIDTH, height=HEIGHT, force_terminal=True, color_system="truecolor")
    text, frames = "", 0
    cpu_start = time.process_time()
    with Live(console=console, auto_refresh=False) as live:
        for chunk, frame in zip(parts, frame_marks(times), strict=True):
            text += chunk
            if frame:
                live.update(Markdown(text), refresh=True)
                frames += 1
                if frames == frame_limit:
                    break
    return time.process_time() - cpu_start, frames


def percentile(values: list[float], q: float) -> float:
    """The q-quantile of `values` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(parts: list[str], rate: float, tick_every: float = 0.002) -> tuple[list[float], float, float]:
    """Feed at `rate` chunks a second on the real clock, with a `tick_every` s timer as a REPL runs.

    Returns each chunk's arrival-to-write latency, the last chunk's latency (ticks only, no
    finish()), and how long finish() then took.
    """
    waiting: list[float] = []  # arrival times of chunks not yet written
    latencies: list[float] = []

    def write(data: str) -> None:
        now = time.perf_counter()
        latencies.extend(now - arrived for arrived in waiting)
        waiting.clear()

    renderer = TerminalRenderer(write, WIDTH, HEIGHT, max_fps=FPS)
    start = next_tick = time.perf_counter()
    for index, chunk in enumerate(parts):
        due = start + index / rate
        while (now := time.perf_counter()) < due:
            if now >= next_tick:
                renderer.tick(now)
                next_tick = now + tick_every
        arrived = time.perf_counter()
        waiting.append(arrived)
        renderer.feed(chunk, arrived)
    while waiting:  # the text has all arrived: only the REPL's timer ticks now
        time.sleep(tick_every)
        renderer.tick()
    last = latencies[-1]
    before = time.perf_counter()
    renderer.finish()
    return latencies, last, time.perf_counter() - before


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements; return 1 if a target is missed."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated reply")
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="simulated chunks a second in runs 1 and 2"
    )
    parser.add_argument(
        "--live-frames", type=int, default=0, help="stop rich Live after this many frames and extrapolate"
    )
    args = parser.parse_args(argv)
    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(f"  [{'ok' if ok else 'MISSED'}] {what}")
        if not ok:
            failures.append(what)

    warm_up()
    reply = make_reply(80_000, args.seed)
    parts = chunks(reply)
    times = arrival_times(len(parts), args.rate)
    marks = frame_marks(times)
    print(f"reply: {len(reply):,} chars in {len(parts):,} chunks of {CHUNK}; width {WIDTH}, height {HEIGHT}")
    print(f"simulated clock: {args.rate:g} chunks/s at {FPS:g} fps -> {sum(marks)} frames for each renderer")

    print("\n1. CPU time of the whole replay (time.process_time)")
    ours_cpu, frame_cpu, frame_wall, writes = run_ours(parts, times)
    print(f"  ours:      {ours_cpu:8.3f} s  ({writes} writes)")
    live_cpu, live_frames = run_live(parts, times, args.live_frames)
    if live_frames < sum(marks):
        # Live's frame cost grows with the text it re-renders: scale by the text rendered.
        sizes = [(index + 1) * CHUNK for index, mark in enumerate(marks) if mark]
        measured = live_cpu
        live_cpu = measured * sum(sizes) / sum(sizes[:live_frames])
        print(f"  rich Live: {measured:8.3f} s  for its first {live_frames} frames")
        print(f"  rich Live: {live_cpu:8.3f} s  extrapolated to all frames")
    else:
        print(f"  rich Live: {live_cpu:8.3f} s  ({live_frames} frames)")
    ratio = ours_cpu / live_cpu
    print(f"  ours / rich Live = {ratio:.4f} (1/{1 / ratio:.0f})")
    check(ratio <= 1 / 20, "CPU: ours <= 1/20 of rich Live")

    print("\n2. Time per frame (ours; CPU time of the feed() call that painted, wall time in brackets)")
    p99s: dict[int, float] = {}
    for size in (8_000, 40_000, 80_000):
        if size == 80_000:
            cpu, wall = frame_cpu, frame_wall
        else:
            size_parts = chunks(make_reply(size, args.seed))
            _, cpu, wall, _ = run_ours(size_parts, arrival_times(len(size_parts), args.rate))
        p99s[size] = percentile(cpu, 0.99) * 1e3
        print(
            f"  {size // 1000:>2} KB: {len(cpu):4d} frames  p50 {percentile(cpu, 0.5) * 1e3:5.2f} ms"
            f"  p99 {p99s[size]:5.2f} ms  max {max(cpu) * 1e3:5.2f} ms"
            f"   [wall p50 {percentile(wall, 0.5) * 1e3:5.2f}  p99 {percentile(wall, 0.99) * 1e3:5.2f} ms]"
        )
    check(max(p99s.values()) < 5.0, "frame p99 < 5 ms at 8, 40 and 80 KB")
    check(p99s[80_000] <= 2 * p99s[8_000] + 1.0, "frame p99 flat: p99(80 KB) <= 2 x p99(8 KB) + 1 ms")

    print("\n3. Latency at 5,000 chunks/s on the real clock, 2 ms tick timer (80 KB reply)")
    latencies, last, finish = latency(parts, 5000.0)
    print(
        f"  chunk arrival -> write: p50 {percentile(latencies, 0.5) * 1e3:.1f} ms"
        f"  p99 {percentile(latencies, 0.99) * 1e3:.1f} ms  max {max(latencies) * 1e3:.1f} ms"
    )
    print(
        f"  last chunk -> write (ticks only): {last * 1e3:.1f} ms; finish() afterwards: {finish * 1e3:.1f} ms"
    )
    check(last < 0.050, "last character written < 50 ms after it arrived")

    print("\nall targets met" if not failures else f"\nMISSED: {'; '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
