"""Claim: a long reply streams into the web page at a small, flat cost per frame, far below a page that
re-renders the whole reply each frame; and its last delta is on screen within 50 ms.

One run, one machine, one headless Chromium (Debian's), the same 80 KB Markdown reply
(`web_reply.make_reply`) in 4-character deltas at 2,000 deltas/s, 30 frames a second in both arms:

- ours: the real server (`streamchat web`'s app on the script engine, real store and SDK) and the
  real page (index.html, app.js, stream.js): the message is typed and sent with Enter, the page
  follows the run over SSE: finished blocks appended once, the tail swapped, code by lines;
- baseline, "the usual way": a server that sends the whole reply rendered to HTML (`render_html`
  of the text so far, the same sanitized HTML) 30 times a second over SSE, and a page with the same
  HTML shell and CSS whose listener swaps it in (`content.innerHTML = html`) and scrolls to the end,
  as most chat UIs do with a client-side Markdown render. Its frames are rendered before the replay,
  so its server keeps the 30 fps schedule exactly whatever the machine's load.

Measured, per arm:
1. main-thread time for the whole reply: CDP `Performance.getMetrics` TaskDuration (thread time:
   `Performance.enable` with timeDomain threadTicks), from just before the send to after the end;
   target ours <= 1/10 of the baseline's;
2. per-frame cost, in a separate traced replay (a Chromium trace, categories toplevel and
   devtools.timeline): the renderer main thread's task time (thread time of its top-level tasks)
   from the arrival of one frame's events to the next frame's, i.e. the parse, DOM work, style,
   layout and paint of that frame (and anything else the page ran meanwhile). p99 over the frames
   of the 80 KB reply against the p99 over the frames of its first 8 KB streamed as a reply of its
   own; target ours p99(80 KB) <= 1.5 x p99(8 KB);
3. bytes sent to the page: the body bytes of the reply's event stream (CDP Network.dataReceived);
   target ours <= 1/10 of the baseline's (ours' other requests are reported too);
4. latency of the last delta: from the script engine producing it (the server's wall clock, written
   by the engine) to the page receiving it (the end of the SSE listener of the event carrying the
   reply's last characters, performance.timeOrigin + now; ours applies it at the next animation
   frame) and to the end of the rendering of that frame (rAF, then a message task after it: the
   target's measure); the page's clock is checked
   against Python's with page.evaluate round trips. Target: median over the runs < 50 ms.

Exits non-zero when a target is missed. Run: `.venv/bin/python benchmarks/web_streaming.py [--runs N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web_reply import (
    CHUNK,
    RATE,
    ROOT,
    Server,
    cpu_seconds,
    deltas,
    describe,
    free_port,
    load_average,
    make_reply,
    percentile,
    start_streamchat,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
FPS = 30.0
VIEWPORT = {"width": 1100, "height": 800}
TRACE_CATEGORIES = ["toplevel", "devtools.timeline"]
SMALL = 8_000

# Injected into every page before its scripts: times each SSE listener (and the style and layout it
# leaves dirty; the trace finds these calls by the name `timed`) and notes the event that carries the
# reply's last characters. `chars` is read from the end of the data (both servers put it last).
INSTRUMENT = """
(() => {
  const TOTAL = %(total)d;
  const bench = {events: [], dom: null, painted: null, lastChars: -1, frames: 0};
  window.__bench = bench;
  const charsOf = (data) => {
    const at = data.lastIndexOf('"chars":');
    return at < 0 ? null : parseInt(data.slice(at + 8), 10);
  };
  const add = EventTarget.prototype.addEventListener;
  EventSource.prototype.addEventListener = function (type, listener, options) {
    if (typeof listener !== "function" || type === "error" || type === "open") {
      return add.call(this, type, listener, options);
    }
    const timed = function (event) {
      const chars = typeof event.data === "string" ? charsOf(event.data) : null;
      if (chars !== null && chars !== bench.lastChars) {
        bench.lastChars = chars;
        bench.frames += 1;
      }
      const t0 = performance.now();
      const result = listener.call(this, event);
      void document.body.offsetHeight;  // the style and layout the listener left to do
      const t1 = performance.now();
      bench.events.push([type, t1 - t0, event.data.length, chars, t0]);
      if (chars === TOTAL && bench.dom === null) {
        bench.dom = performance.timeOrigin + t1;
        requestAnimationFrame(() => {
          const channel = new MessageChannel();
          channel.port1.onmessage = () => { bench.painted = performance.timeOrigin + performance.now(); };
          channel.port2.postMessage(null);
        });
      }
      return result;
    };
    return add.call(this, type, timed, options);
  };
})();
"""

# The baseline page's script: the whole reply's HTML swapped in at every frame.
BASELINE_JS = """
const transcript = document.getElementById("transcript");
const messages = document.getElementById("messages");
document.getElementById("welcome").hidden = true;
const article = document.createElement("article");
article.className = "message";
article.dataset.role = "assistant";
article.dataset.status = "streaming";
article.innerHTML = '<div class="meta"><span class="who">Assistant</span></div><div class="content"></div>';
messages.append(article);
const content = article.querySelector(".content");
window.__benchStart = () => {
  const source = new EventSource("/events");
  source.addEventListener("html", (event) => {
    const data = JSON.parse(event.data);
    content.innerHTML = data.html;
    transcript.scrollTop = transcript.scrollHeight;
  });
  source.addEventListener("end", () => {
    source.close();
    article.dataset.status = "complete";
  });
};
"""


# -- the baseline server ------------------------------------------------------------------------------


def ours_schedule(events: list[list[Any]]) -> list[tuple[float, int]]:
    """When ours' page got each frame, and how much text it held: (seconds after the first, chars)."""
    out: list[tuple[float, int]] = []
    for _, _, _, chars, at in events:
        if chars is not None and (not out or chars != out[-1][1]):
            out.append((at / 1e3, chars))
    return [(at - out[0][0], chars) for at, chars in out]


def baseline_frames(reply: str, schedule: list[tuple[float, int]]) -> list[tuple[float, str]]:
    """The baseline's SSE events, (due time, data): the text so far rendered whole, at each of `schedule`."""
    from streamchat.render import render_html

    return [(due, json.dumps({"html": render_html(reply[:chars]), "chars": chars}, ensure_ascii=False))
            for due, chars in schedule]  # fmt: skip


def baseline_main(argv: list[str]) -> int:
    """`web_streaming.py baseline-serve PORT FRAMES.json`: the baseline's page and its whole-HTML stream."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    from streamchat.render.html import code_style_css

    port, frames_file = int(argv[0]), Path(argv[1])
    frames: list[tuple[float, str]] = [tuple(f) for f in json.loads(frames_file.read_text())]  # type: ignore[misc]
    static = ROOT / "src" / "streamchat" / "web" / "static"
    page = (static / "index.html").read_text().replace("/static/app.js", "/baseline.js")
    css = code_style_css()

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    async def script(request: Request) -> Response:
        return Response(BASELINE_JS, media_type="text/javascript")

    async def highlight(request: Request) -> Response:
        return Response(css, media_type="text/css")

    async def events(request: Request) -> Response:
        async def stream() -> Any:
            start = time.perf_counter()
            yield b"retry: 1000\n\n"
            for seq, (due, data) in enumerate(frames, 1):
                if (wait := start + due - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                yield f"id: {seq}\nevent: html\ndata: {data}\n\n".encode()
            yield f"id: {len(frames) + 1}\nevent: end\ndata: {{}}\n\n".encode()

        headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    async def clock(request: Request) -> Response:
        return JSONResponse({"now": time.time()})

    app = Starlette(routes=[
        Route("/", index), Route("/baseline.js", script), Route("/static/highlight.css", highlight),
        Mount("/static", StaticFiles(directory=static)), Route("/events", events), Route("/clock", clock),
    ])  # fmt: skip
    print(f"open http://127.0.0.1:{port}/", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")
    return 0


@contextlib.contextmanager
def start_baseline(frames: list[tuple[float, str]]) -> Iterator[str]:
    """The baseline server in its own process; yields its URL."""
    with tempfile.TemporaryDirectory(prefix="webbench-baseline-") as tmp:
        frames_file = Path(tmp) / "frames.json"
        frames_file.write_text(json.dumps(frames))
        port = free_port()
        process = subprocess.Popen([sys.executable, __file__, "baseline-serve", str(port), str(frames_file)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        try:
            assert process.stdout is not None
            lines = []
            for line in process.stdout:
                lines.append(line)
                if line.startswith("open http"):
                    threading.Thread(target=process.stdout.read, daemon=True).start()
                    break
            else:
                raise RuntimeError(f"the baseline server did not start: {''.join(lines)}")
            url = f"http://127.0.0.1:{port}"
            import httpx2 as httpx

            for _ in range(200):  # uvicorn prints nothing when it is ready: wait until it answers
                with contextlib.suppress(httpx.HTTPError):
                    httpx.get(url + "/clock", timeout=1)
                    break
                time.sleep(0.05)
            yield url
        finally:
            process.terminate()
            process.wait(10)


# -- one replay in the browser ------------------------------------------------------------------------


@dataclass
class Replay:
    """What one replay of the reply measured in the page."""

    task_duration: float = 0.0  # s of main-thread task time (thread ticks)
    split: dict[str, float] = field(default_factory=dict)  # s of it in script, style, layout (SPLIT)
    stream_bytes: int = 0  # body bytes of the reply's event stream
    other_bytes: int = 0  # body bytes of every other response during the replay
    events: list[list[Any]] = field(default_factory=list)  # [type, listener ms, data length, chars, at ms]
    frames: int = 0
    dom_at: float | None = None  # epoch s: the page's listener has the last delta
    painted_at: float | None = None  # epoch s: the frame after that has been rendered
    last_delta_at: float | None = None  # epoch s: the engine produced the last delta (ours only)
    first_delta_at: float | None = None
    server_cpu: float | None = None  # s of the server process's CPU for the reply (ours only)
    clock_offset: float = 0.0  # s to add to the page's clock to get Python's
    frame_costs: list[tuple[int, float]] = field(default_factory=list)  # (chars, ms) from the trace


class Network:
    """Body bytes per request, from CDP Network events."""

    def __init__(self, cdp: Any) -> None:
        self.urls: dict[str, str] = {}
        self.bytes: dict[str, int] = {}
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.dataReceived", self._data)
        cdp.send("Network.enable")

    def _sent(self, event: dict[str, Any]) -> None:
        self.urls[event["requestId"]] = event["request"]["url"]

    def _data(self, event: dict[str, Any]) -> None:
        self.bytes[event["requestId"]] = self.bytes.get(event["requestId"], 0) + int(event["dataLength"])

    def split(self, stream_marker: str) -> tuple[int, int]:
        """(bytes of the event stream, bytes of everything else)."""
        stream = sum(n for rid, n in self.bytes.items() if stream_marker in self.urls.get(rid, ""))
        return stream, sum(self.bytes.values()) - stream


def clock_offset(page: Any) -> float:
    """Python's time.time() minus the page's performance.timeOrigin + now(), from the tightest round trip."""
    samples = []
    for _ in range(15):
        before = time.time()
        page_now = float(page.evaluate("performance.timeOrigin + performance.now()")) / 1e3
        after = time.time()
        samples.append((after - before, (before + after) / 2 - page_now))
    return min(samples)[1]


SPLIT = ("ScriptDuration", "RecalcStyleDuration", "LayoutDuration")


def durations(cdp: Any) -> dict[str, float]:
    """CDP Performance metrics, s of thread time: TaskDuration (all of the main thread's tasks) and SPLIT."""
    metrics = cdp.send("Performance.getMetrics")["metrics"]
    return {m["name"]: float(m["value"]) for m in metrics if m["name"] in ("TaskDuration", *SPLIT)}


RENDERING = {"UpdateLayoutTree", "Layout", "PrePaint", "Paint", "Layerize"}


def event_frames(events: list[list[Any]]) -> list[tuple[int, int]]:
    """For each listener call, in order: (frame number, chars of that frame); -1 before the first frame.

    A frame is the events of one server frame: they share `chars` (a new value starts a frame);
    events without `chars` (part, usage, end, ...) belong to the frame they follow.
    """
    out, frame, chars = [], -1, -1
    for _, _, _, value, _ in events:
        if value is not None and value != chars:
            frame, chars = frame + 1, value
        out.append((frame, chars))
    return out


def trace_frame_costs(trace: bytes, events: list[list[Any]]) -> list[tuple[int, float]]:
    """Per-frame main-thread thread time, from a Chromium trace: (chars, ms) for each frame, in order.

    A frame's cost is the thread time of its listener calls (the instrumentation's `timed`, in the
    order the page logged them: JSON, DOM work, forced style and layout), plus the rest of the tasks
    that ran them (the network data and the EventSource parser, shared by the frames in the task),
    plus the rendering updates after them (style, layout, paint, layerize, the scroll event; one
    update is shared by the frames applied since the one before). Other tasks are not counted.
    """
    data = json.loads(trace)
    trace_events = data["traceEvents"] if isinstance(data, dict) else data
    calls = [e for e in trace_events if e.get("name") == "FunctionCall"
             and e.get("args", {}).get("data", {}).get("functionName") == "timed"]  # fmt: skip
    if not calls or len(calls) != len(events):
        raise RuntimeError(f"the trace has {len(calls)} listener calls, the page logged {len(events)}")
    thread = (calls[0]["pid"], calls[0]["tid"])
    on_thread = [e for e in trace_events if e.get("ph") == "X" and (e["pid"], e["tid"]) == thread]
    tasks = sorted((e for e in on_thread if e["name"] == "ThreadControllerImpl::RunTask"),
                   key=lambda e: e["ts"])  # fmt: skip
    marks = sorted(((e["ts"], e["name"]) for e in on_thread if e["name"] in RENDERING), key=lambda m: m[0])
    calls.sort(key=lambda e: e["ts"])
    frames = event_frames(events)
    cost: dict[int, float] = {}
    chars_of: dict[int, int] = {}
    pending: set[int] = set()  # frames applied since the last rendering update
    call, mark = 0, 0
    for task in tasks:
        end = task["ts"] + task["dur"]
        inside: list[int] = []
        while call < len(calls) and calls[call]["ts"] < end:
            if calls[call]["ts"] >= task["ts"]:
                inside.append(call)
            call += 1
        rendering = False
        while mark < len(marks) and marks[mark][0] < end:
            rendering = rendering or marks[mark][0] >= task["ts"]
            mark += 1
        rest = task.get("tdur", task["dur"]) - sum(calls[i].get("tdur", calls[i]["dur"]) for i in inside)
        applied = {frames[i][0] for i in inside if frames[i][0] >= 0}
        for i in inside:
            frame, chars = frames[i]
            if frame >= 0:
                cost[frame] = cost.get(frame, 0.0) + calls[i].get("tdur", calls[i]["dur"])
                chars_of[frame] = chars
        if applied:
            for frame in applied:
                cost[frame] += rest / len(applied)
            pending |= applied
        elif rendering and pending:
            for frame in pending:
                cost[frame] += rest / len(pending)
            pending = set()
    return [(chars_of[frame], cost[frame] / 1e3) for frame in sorted(cost)]


def replay(browser: Any, arm: str, url: str, reply: str, *, server: Server | None = None,
           trace: bool = False) -> Replay:  # fmt: skip
    """Stream `reply` once into a fresh page of `arm` ("ours" or "baseline")."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(INSTRUMENT % {"total": len(reply)})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    result = Replay()
    try:
        page.goto(url + "/")
        if arm == "ours":
            page.get_by_role("textbox", name="Message").wait_for()
            page.wait_for_load_state("networkidle")
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable", {"timeDomain": "threadTicks"})
        network = Network(cdp)
        result.clock_offset = clock_offset(page)
        if trace:
            browser.start_tracing(page=page, categories=TRACE_CATEGORIES)
        before = durations(cdp)
        cpu_before = cpu_seconds(server.pid) if server is not None else 0.0
        if arm == "ours":
            box = page.get_by_role("textbox", name="Message")
            box.fill("Explain the streaming pipeline in detail.")
            box.press("Enter")
        else:
            page.evaluate("window.__benchStart()")
        # Polled every 100 ms, not at every animation frame (Playwright's default): a selector query
        # per frame is the benchmark's work, not the page's, and would be counted in its main thread.
        # (A function, not an expression: the page's CSP refuses the eval an expression would need.)
        page.wait_for_function("() => window.__bench.painted !== null && document.querySelector("
                               "'article[data-role=\"assistant\"][data-status=\"complete\"]') !== null",
                               polling=100, timeout=300_000)  # fmt: skip
        if server is not None:
            result.server_cpu = cpu_seconds(server.pid) - cpu_before
        page.wait_for_timeout(500)  # what the page does after the end (ours: refresh usage, the list)
        after = durations(cdp)
        result.task_duration = after["TaskDuration"] - before["TaskDuration"]
        result.split = {name: after[name] - before[name] for name in SPLIT}
        if trace:
            trace_bytes = browser.stop_tracing()
        bench = page.evaluate("window.__bench")
        result.events, result.frames = bench["events"], bench["frames"]
        result.dom_at, result.painted_at = bench["dom"] / 1e3 + result.clock_offset, \
            bench["painted"] / 1e3 + result.clock_offset  # fmt: skip
        result.stream_bytes, result.other_bytes = network.split("/events")
        if trace:
            result.frame_costs = trace_frame_costs(trace_bytes, result.events)
        if server is not None:
            stamp = server.stamp_lines()[-1]
            result.last_delta_at, result.first_delta_at = stamp["last_delta"], stamp["first_delta"]
        if errors:
            raise RuntimeError(f"page errors in {arm}: {errors}")
        if arm == "ours":  # the page ends with the one-shot render, or the comparison means nothing
            from streamchat.render import render_html

            shown = page.evaluate("[...document.querySelectorAll('article[data-role=assistant] .content')]"
                                  ".at(-1).innerHTML")  # fmt: skip
            expected = page.evaluate("h => { const t = document.createElement('template'); t.innerHTML = h;"
                                     " return t.innerHTML; }", render_html(reply))  # fmt: skip
            if shown != expected:
                raise RuntimeError("ours: the final DOM is not the one-shot render")
    finally:
        context.close()
    return result


# -- the report -----------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def runs_ms(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def costs_line(costs: list[float]) -> str:
    return (f"{len(costs):4d} frames  p50 {percentile(costs, 0.5):6.2f} ms"
            f"  p99 {percentile(costs, 0.99):6.2f} ms"
            f"  max {max(costs, default=float('nan')):6.2f} ms")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run both arms in one browser, in alternation; return 1 if a target is missed."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="untraced replays of each arm (after a warm-up)")
    parser.add_argument("--small-runs", type=int, default=3, help="traced replays of the 8 KB reply per arm")
    parser.add_argument("--size", type=int, default=80_000, help="characters in the reply")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(f"  [{'ok' if ok else 'MISSED'}] {what}")
        if not ok:
            failures.append(what)

    reply = make_reply(args.size, args.seed)
    small = make_reply(SMALL, args.seed)
    print(f"load average at start: {load_average()} ({os.cpu_count()} cores)")
    print(f"reply: {describe(reply)}")
    print(f"small reply (its first blocks): {len(small):,} chars")
    duration = (len(deltas(reply)) - 1) / RATE
    print(f"{len(deltas(reply)):,} deltas of {CHUNK} chars at {RATE:g}/s: {duration:.2f} s on schedule")

    def pair(server: Server, text: str, trace: bool = False) -> tuple[Replay, Replay]:
        """Ours, then the baseline fed the same frames (text so far, whole) at the same instants."""
        mine = replay(browser, "ours", server.url, text, server=server, trace=trace)
        frames = baseline_frames(text, ours_schedule(mine.events))
        with start_baseline(frames) as url:
            theirs = replay(browser, "baseline", url, text, trace=trace)
        return mine, theirs

    ours: list[Replay] = []
    base: list[Replay] = []
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(start_streamchat(reply))
        small_server = stack.enter_context(start_streamchat(small))
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        print("warm-up: one replay of each arm")
        pair(server, reply)
        for run in range(args.runs):
            o, b = pair(server, reply)
            ours.append(o)
            base.append(b)
            assert o.dom_at is not None and o.last_delta_at is not None and o.painted_at is not None
            print(f"  run {run + 1}: {o.frames} frames; main thread ours {o.task_duration:6.3f} s, baseline"
                  f" {b.task_duration:6.3f} s; bytes ours {o.stream_bytes:,}, baseline {b.stream_bytes:,};"
                  f" last delta -> page {(o.dom_at - o.last_delta_at) * 1e3:5.1f} ms,"
                  f" -> painted {(o.painted_at - o.last_delta_at) * 1e3:5.1f} ms;"
                  f" engine {o.last_delta_at - (o.first_delta_at or 0):.2f} s;"
                  f" load {load_average()}")  # fmt: skip
        print("traced replays (per-frame cost)")
        traced_ours, traced_base = pair(server, reply, trace=True)
        smalls = [pair(small_server, small, trace=True) for _ in range(args.small_runs)]
        small_ours = [o for o, _ in smalls]
        small_base = [b for _, b in smalls]

    print(f"\nload average at the end: {load_average()}")
    print("\n1. Main-thread time for the whole reply (CDP TaskDuration, thread time; median of runs)")
    ours_task, base_task = median([r.task_duration for r in ours]), median([r.task_duration for r in base])
    print(f"  ours      {ours_task:7.3f} s   (runs: {', '.join(f'{r.task_duration:.3f}' for r in ours)})")
    print(f"  baseline  {base_task:7.3f} s   (runs: {', '.join(f'{r.task_duration:.3f}' for r in base)})")
    ratio = ours_task / base_task
    print(f"  ours / baseline = {ratio:.4f} (1/{1 / ratio:.0f})")
    for name in SPLIT:
        print(f"  of which {name:<20}: ours {median([r.split[name] for r in ours]):6.3f} s,"
              f" baseline {median([r.split[name] for r in base]):6.3f} s")  # fmt: skip
    check(ratio <= 0.1, "main thread: ours <= 1/10 of the baseline's")

    print("\n2. Per-frame cost (trace: main-thread task time from one frame's arrival to the next)")
    ours_80 = [ms for _, ms in traced_ours.frame_costs]
    ours_8 = [ms for r in small_ours for _, ms in r.frame_costs]
    base_80 = [ms for _, ms in traced_base.frame_costs]
    base_8 = [ms for r in small_base for _, ms in r.frame_costs]
    print(f"  ours      {len(small) // 1000:>2} KB reply ({args.small_runs} runs): {costs_line(ours_8)}")
    print(f"  ours      {len(reply) // 1000:>2} KB reply:          {costs_line(ours_80)}")
    early = [ms for chars, ms in traced_ours.frame_costs if chars <= SMALL]
    late = [ms for chars, ms in traced_ours.frame_costs if chars > len(reply) - SMALL]
    print(f"  ours      within the 80 KB reply, first 8 KB: {costs_line(early)}")
    print(f"  ours      within the 80 KB reply, last 8 KB:  {costs_line(late)}")
    print(f"  baseline  {len(small) // 1000:>2} KB reply ({args.small_runs} runs): {costs_line(base_8)}")
    print(f"  baseline  {len(reply) // 1000:>2} KB reply:          {costs_line(base_80)}")
    flat = percentile(ours_80, 0.99) / percentile(ours_8, 0.99)
    print(f"  ours p99(80 KB) / p99(8 KB) = {flat:.2f};  baseline: "
          f"{percentile(base_80, 0.99) / percentile(base_8, 0.99):.2f}")  # fmt: skip
    check(flat <= 1.5, "per frame: ours p99 at 80 KB <= 1.5 x p99 at 8 KB")
    listener = [ms for r in ours for t, ms, *_ in r.events if t in ("blocks", "fence", "lines", "tail")]
    base_listener = [ms for r in base for t, ms, *_ in r.events if t == "html"]
    print(
        f"  (listener + forced style/layout per event, untraced runs: ours p99 "
        f"{percentile(listener, 0.99):.2f} ms, baseline p99 {percentile(base_listener, 0.99):.2f} ms)"
    )

    print("\n3. Bytes sent to the page (body of the reply's event stream; median of runs)")
    ours_bytes = median([float(r.stream_bytes) for r in ours])
    base_bytes = median([float(r.stream_bytes) for r in base])
    others = median([float(r.other_bytes) for r in ours])
    print(f"  ours      {ours_bytes:12,.0f} B  (+ {others:,.0f} B of other responses during the reply)")
    print(f"  baseline  {base_bytes:12,.0f} B")
    print(f"  ours / baseline = {ours_bytes / base_bytes:.4f} (1/{base_bytes / ours_bytes:.0f})")
    check(ours_bytes / base_bytes <= 0.1, "bytes: ours <= 1/10 of the baseline's")

    print("\n4. The last delta on screen (ours; engine's wall clock -> page's, median of runs)")
    to_dom = [((r.dom_at or 0) - (r.last_delta_at or 0)) * 1e3 for r in ours]
    to_paint = [((r.painted_at or 0) - (r.last_delta_at or 0)) * 1e3 for r in ours]
    offsets = [r.clock_offset * 1e3 for r in ours]
    engine = [(r.last_delta_at or 0) - (r.first_delta_at or 0) for r in ours]
    print(f"  engine: first to last delta {median(engine):.2f} s (schedule: {duration:.2f} s)")
    print(f"  -> page has it:    median {median(to_dom):6.1f} ms  (runs: {runs_ms(to_dom)})")
    print(f"  -> frame rendered: median {median(to_paint):6.1f} ms  (runs: {runs_ms(to_paint)})")
    print(f"  page clock vs Python's: {min(offsets):+.1f} .. {max(offsets):+.1f} ms (corrected for)")
    print(f"  median / 50 ms = {median(to_paint) / 50:.2f}")
    check(median(to_paint) < 50, "latency: the last delta rendered within 50 ms (median)")
    cpu = median([r.server_cpu or 0.0 for r in ours])
    print(
        f"\n  (server process CPU per 80 KB reply, web path end to end: {cpu:.2f} s; see web_render_cpu.py)"
    )
    print(f"\n{'all targets met' if not failures else 'MISSED: ' + '; '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    if sys.argv[1:2] == ["baseline-serve"]:
        raise SystemExit(baseline_main(sys.argv[2:]))
    raise SystemExit(main())
