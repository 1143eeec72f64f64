"""Drawing one streaming reply: text through the Markdown renderer, thinking dim, tool calls as they
stream, and the closing turn line. Nothing else writes to the terminal while a renderer is live."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from ..chat.events import (
    BlockEnd,
    BlockStart,
    Delta,
    ReplyEvent,
    ToolCall,
    ToolResult,
    TurnEnd,
    UsageUpdate,
    WindowNotice,
)
from ..render.blocks import commit_blocks
from .output import (
    CYAN,
    DIM,
    RED,
    YELLOW,
    Output,
    RawStream,
    StatusUnderRenderer,
    StreamRenderer,
    markdown_renderer,
)


@dataclass
class LiveUsage:
    """Usage of the request in flight (updated by UsageUpdate events)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    streamed_chars: int = 0  # text, thinking and tool input received in this turn

    @property
    def context_tokens(self) -> int:
        """Input tokens the last request's window used, cache included."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


class ReplyView:
    """Consumes a reply's events and draws them; `on_usage` sees live usage (status line)."""

    def __init__(self, out: Output, *, markdown: bool = True, show_thinking: bool = True,
                 on_usage: Callable[[LiveUsage], None] | None = None,
                 live_status: Callable[[LiveUsage], str] | None = None) -> None:  # fmt: skip
        self.out = out
        self.live_status = live_status
        self.status: StatusUnderRenderer | None = None
        self.markdown = markdown and out.tty
        self.show_thinking = show_thinking and out.tty
        self.on_usage = on_usage
        self.usage = LiveUsage()
        self.renderer: StreamRenderer | None = None
        self.text = ""
        self.end: TurnEnd | None = None
        self._kind: str | None = None
        self._tool_stream = False
        self._resized: tuple[int, int] | None = None
        # The renderer throttles frames; a timer thread ticks it so text that arrived just before a
        # pause in the stream still shows. The lock keeps its writes and the main thread's apart.
        self._lock = threading.RLock()
        self._ticker: threading.Thread | None = None
        self._stop_ticking = threading.Event()

    # -- events ------------------------------------------------------------------------------------

    def handle(self, event: ReplyEvent) -> None:
        """Draw one event."""
        with self._lock:
            self._handle(event)

    def _handle(self, event: ReplyEvent) -> None:
        if self._resized is not None and self.renderer is not None:
            width, height = self._resized
            self.renderer.resize(width, max(1, height - (1 if self.status is not None else 0)))
            self._resized = None
        if isinstance(event, Delta):
            self._delta(event)
        elif isinstance(event, BlockStart):
            self._start(event)
        elif isinstance(event, BlockEnd):
            self._block_end(event)
        elif isinstance(event, UsageUpdate):
            self.usage = LiveUsage(event.input_tokens, event.output_tokens, event.cache_creation_input_tokens,
                                   event.cache_read_input_tokens, self.usage.streamed_chars)  # fmt: skip
            if self.on_usage is not None:
                self.on_usage(self.usage)
            if self.status is not None:
                self.status.refresh()
        elif isinstance(event, WindowNotice):
            self.close_stream()
            tokens = f", ~{event.dropped_tokens} tokens" if event.dropped_tokens else ""
            note = f"· {event.dropped} earlier message(s) left out of the window{tokens}: {event.reason}"
            self.out.line(note, DIM)
        elif isinstance(event, ToolCall):
            self.close_stream()
            if not self.out.tty:  # a terminal saw the call stream in; plain output gets it in one line
                self.out.line(f"⚙ {event.name} {tool_input_text(event.input)}")
        elif isinstance(event, ToolResult):
            self.close_stream()
            first = event.output.strip().splitlines()[0] if event.output.strip() else "(no output)"
            if len(first) > 200:
                first = first[:199] + "…"
            self.out.line(f"  ↳ {event.name}: {first}", RED if event.is_error else DIM)
        elif isinstance(event, TurnEnd):
            self.end = event
            if event.status == "complete":
                self.close_stream()
            else:
                self.abort_stream()

    def _start(self, event: BlockStart) -> None:
        self.close_stream()
        self._kind = event.kind
        if event.kind == "text":
            if not self.markdown:
                self.renderer = RawStream(self.out.write)
            elif self.live_status is None:
                self.renderer = markdown_renderer(self.out)
            else:
                live_status = self.live_status
                self.status = StatusUnderRenderer(self.out, lambda: live_status(self.usage))
                self.renderer = markdown_renderer(self.out, self.status.frame, reserve=1)
            if event.prefix:  # a continued reply: draw again what the continuation goes on from
                self.text += event.prefix
                self.renderer.feed(redrawn_part(event.prefix, markdown=self.markdown))
        elif event.kind == "thinking":
            if self.show_thinking:
                self.out.line("thinking…", DIM)
                self.renderer = RawStream(self.out.write, DIM)
        else:
            name = event.name or "tool"
            if self.out.tty:
                self.out.write(self.out.styled(f"⚙ {name} ", CYAN))
                self.renderer = RawStream(self.out.write, DIM if self.out.color else "")
                self._tool_stream = True

    def _delta(self, event: Delta) -> None:
        self.usage.streamed_chars += len(event.text)
        if event.kind == "text":
            self.text += event.text
            if self.renderer is None or self._kind != "text":
                # A text delta without its BlockStart: open the text stream anyway.
                self._start(BlockStart("text"))
        if self.renderer is not None and event.kind == self._kind:
            self.renderer.feed(event.text)

    def _block_end(self, event: BlockEnd) -> None:
        if event.kind == "tool_use" and self._tool_stream and self.renderer is not None:
            self.renderer.finish()
            self.renderer = None
            self._tool_stream = False
        else:
            self.close_stream()

    # -- renderer lifecycle ------------------------------------------------------------------------

    def close_stream(self) -> None:
        """Finish the live stream: its tail is committed to scrollback."""
        self._end_stream(abort=False)

    def abort_stream(self) -> None:
        """Stop the live stream where it is (interrupt, error): the partial output stays."""
        self._end_stream(abort=True)

    def _end_stream(self, *, abort: bool) -> None:
        with self._lock:
            if self.renderer is not None:
                renderer, self.renderer = self.renderer, None
                self._end_status(renderer.abort if abort else renderer.finish)
            self._kind = None
            self._tool_stream = False

    def _end_status(self, end: Callable[[], None]) -> None:
        """The renderer's final frame without the status line, then the status line erased."""
        status, self.status = self.status, None
        if status is not None:
            status.active = False
        try:
            end()
        finally:
            if status is not None:
                status.clear()

    def start_ticking(self, interval: float = 0.01) -> None:
        """Tick the live renderer every `interval` seconds until stop_ticking() (terminal output only)."""
        if not self.markdown or self._ticker is not None:
            return
        self._stop_ticking.clear()
        self._ticker = threading.Thread(target=self._tick_loop, args=(interval,), name="streamchat-ticker",
                                        daemon=True)  # fmt: skip
        self._ticker.start()

    def stop_ticking(self) -> None:
        """Stop the timer thread."""
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            self._stop_ticking.set()
            ticker.join(timeout=1)

    def _tick_loop(self, interval: float) -> None:
        while not self._stop_ticking.wait(interval):
            with self._lock:
                if self.renderer is not None:
                    self.renderer.tick()

    def resized(self, width: int, height: int) -> None:
        """The terminal changed size; applied before the next event (never mid-frame)."""
        self._resized = (width, height)


def consume(reply: Any, view: ReplyView) -> TurnEnd:
    """Stream `reply` into `view`; Ctrl-C interrupts it (partial reply kept) and returns its TurnEnd."""
    iterator = iter(reply)
    interrupted = False
    previous = _watch_resize(view)
    view.start_ticking()
    try:
        try:
            for event in iterator:
                view.handle(event)
        except KeyboardInterrupt:
            interrupted = True
        if interrupted:
            # Stop the stream first (the server stops generating), then close the live region.
            _despite_ctrl_c(reply.interrupt)
            _despite_ctrl_c(view.abort_stream)
            _drain(iterator, view)
    finally:
        _despite_ctrl_c(view.stop_ticking)
        _restore_resize(previous)
    if view.end is None:
        # The iterator ended without a TurnEnd (it was closed by the interrupt): say what we know.
        u = view.usage
        end = TurnEnd("interrupted" if interrupted else "error", None, u.input_tokens, u.output_tokens,
                      u.cache_creation_input_tokens, u.cache_read_input_tokens, cost=None,
                      error=None if interrupted else "the reply ended without a result")  # fmt: skip
        view.handle(end)
    assert view.end is not None
    return view.end


def _despite_ctrl_c(action: Callable[[], None]) -> None:
    """Run an idempotent clean-up step; a second Ctrl-C meanwhile only makes it run again."""
    for _ in range(3):
        try:
            action()
            return
        except KeyboardInterrupt:
            continue


def _drain(iterator: Any, view: ReplyView) -> None:
    """Take the remaining events after an interrupt (a second Ctrl-C is ignored meanwhile)."""
    while True:
        try:
            for event in iterator:
                if isinstance(event, (TurnEnd, UsageUpdate, ToolResult)):
                    view.handle(event)
            return
        except KeyboardInterrupt:
            continue
        except StopIteration:
            return


Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def _watch_resize(view: ReplyView) -> Handler:
    if not hasattr(signal, "SIGWINCH") or threading.current_thread() is not threading.main_thread():
        return None

    def on_winch(signum: int, frame: FrameType | None) -> None:
        view.resized(*view.out.size())

    return signal.signal(signal.SIGWINCH, on_winch)


def _restore_resize(previous: Handler) -> None:
    if previous is not None and hasattr(signal, "SIGWINCH"):
        signal.signal(signal.SIGWINCH, previous)


def redrawn_part(prefix: str, *, markdown: bool) -> str:
    """The end of a continued reply's text that is drawn again before its continuation.

    The reply's finished Markdown blocks are on screen and stay as they are; its last block (cut where
    the reply stopped) is drawn again from its start, so it renders whole with what follows. Without
    Markdown, the last line is written again.
    """
    if markdown:
        split = commit_blocks(prefix + "\n")  # the cut line counts as complete: its block is the last
        return prefix[split.offset + split.tail_start :]
    return prefix[prefix.rfind("\n") + 1 :]


def tool_input_text(data: dict[str, Any]) -> str:
    """A tool call's input on one line, for the confirmation prompt."""
    text = json.dumps(data, ensure_ascii=False)
    return text if len(text) <= 300 else text[:299] + "…"


def warn(out: Output, message: str) -> None:
    """A one-line warning."""
    out.line(message, YELLOW)


def error_text(end: TurnEnd, retries: int = 2) -> str:
    """The error line; for rate limits and overload, say that the SDK already retried."""
    text = end.error or "the request failed"
    lowered = text.lower()
    busy = any(k in lowered for k in ("429", "529", "rate limit", "rate_limit", "overloaded"))
    if busy and retries and "retr" not in lowered and "mid-stream" not in lowered:
        text += f" (after {retries} automatic retries by the SDK)"
    return text
