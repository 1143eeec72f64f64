"""The page's event protocol: a reply's `ReplyEvent`s turned into small JSON events of sanitized HTML.

Every event is `(type, data)` with JSON data; a run appends them to its event log and the page
applies them in seq order (see `static/stream.js`). A reply is a list of *parts* (one per content
block, across tool rounds), numbered from 0:

- `start`      {run_id, conversation_id, kind, position, model}: the run began; `position` is the
               store index of the reply's first message (for `continue`, the message continued)
- `part`       {part, kind: text|thinking|tool_use, html}: a part opens; `html` is its frame
               (empty for text, whose blocks go straight into the message's `.content`)
- `blocks`     {part, html, chars}: finished Markdown blocks, appended once, never replaced
- `fence`      {part, html, chars}: a top-level code block opens and streams line by line: `html`
               is the whole block with an empty `<code>`, appended once; `lines` go into that `<code>`
- `lines`      {part, html, chars, end}: finished lines of the open code block, appended once at the
               end of its `<code>`; `end` is true when the block is finished (no more lines)
- `tail`       {part, html, chars}: the part's unfinished last block, replacing the previous tail
               (while a code block is open: its unfinished last line, shown at the end of its code);
               at most ~30 a second, superseded by the next `tail` or `part_end` of the part
- `input`      {part, text}: more of a tool call's input JSON, appended as text
- `part_end`   {part, kind, html?}: the part is finished (tail removed; for tool_use, `html`
               replaces the streamed input with the final, formatted input)
- `tool_call`  {part, id, name}: the call is complete; its part gets the call's id
- `tool_ask`   {id, name}: the run waits for Allow / Deny (POST /api/runs/{run}/tools/{id})
- `tool_answer` {id, allow}: the answer that was given (every tab hides the question)
- `tool_result` {id, html, is_error}
- `usage`      {input_tokens, output_tokens, cache_..., cost}: live usage of the request in flight
- `window`     {dropped, dropped_tokens, reason}: messages left out of this request's window
- `end`        {status, stop_reason, error, retryable, usage, cost}: the last event of every run

`chars` is how much text the reply has streamed so far (the page's live output estimate).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from typing import Any

from ..chat import pricing
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
from ..render.html import HtmlFrame, HtmlStream, render_html, sanitize

WebEvent = tuple[str, dict[str, Any]]
MAX_FPS = 30.0
_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


# -- the HTML of parts (the same functions draw a live reply and one loaded from the store) -----------


def thinking_html(body: str = "") -> str:
    """A collapsible thinking block; `body` is the HTML of its Markdown."""
    return (
        '<details class="thinking"><summary>Thinking</summary>'
        f'<div class="thinking-body">{body}</div></details>'
    )


def tool_input_text(data: Any) -> str:
    """A tool call's input as shown once it is complete: indented JSON."""
    return json.dumps(data, ensure_ascii=False, indent=2)


def tool_html(name: str, input_text: str = "", tool_id: str | None = None, result: str | None = None) -> str:
    """A tool call: its name, its input (escaped text), then its result once there is one."""
    ident = f' data-tool-id="{escape(tool_id)}"' if tool_id else ""
    parts = [
        f'<div class="tool"{ident}><div class="tool-head"><span class="tool-label">Tool</span> '
        f'<span class="tool-name">{escape(name)}</span></div>',
        f'<pre class="tool-input">{escape(input_text, quote=False)}</pre>',
    ]
    if result is not None:
        parts.append(result)
    parts.append("</div>")
    return "".join(parts)


def tool_result_html(output: str, is_error: bool) -> str:
    """A tool's result (or the refusal), as escaped text."""
    kind = "tool-result error" if is_error else "tool-result"
    label = "Error" if is_error else "Result"
    return (
        f'<div class="{kind}"><span class="tool-result-label">{label}</span>'
        f"<pre>{escape(output, quote=False)}</pre></div>"
    )


def content_html(content: list[dict[str, Any]], results: dict[str, tuple[str, bool]] | None = None) -> str:
    """The `.content` of an assistant message from its stored blocks (`results`: tool id -> result)."""
    results = results or {}
    out: list[str] = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            out.append(render_html(str(block.get("text") or "")))
        elif kind == "thinking":
            out.append(thinking_html(render_html(str(block.get("thinking") or ""))))
        elif kind == "tool_use":
            tool_id = str(block.get("id") or "")
            found = results.get(tool_id)
            result = tool_result_html(*found) if found is not None else None
            out.append(tool_html(str(block.get("name") or "tool"), tool_input_text(block.get("input") or {}),
                                 tool_id or None, result))  # fmt: skip
    return "".join(out)


def user_html(text: str) -> str:
    """A user's message: their text exactly as typed (the page keeps its line breaks)."""
    return sanitize(f'<p class="plain">{escape(text, quote=False)}</p>')


def usage_dict(usage: Any) -> dict[str, int]:
    """The four usage counters of a UsageUpdate or TurnEnd."""
    return {key: int(getattr(usage, key, 0) or 0) for key in _USAGE_KEYS}


def _frame_html(kind: str, name: str | None) -> str:
    """The empty frame a part opens with (text has none: its blocks go straight into `.content`)."""
    if kind == "thinking":
        return thinking_html()
    return tool_html(name or "tool") if kind == "tool_use" else ""


# -- a reply, encoded ---------------------------------------------------------------------------


@dataclass
class _Part:
    index: int
    kind: str
    stream: HtmlStream | None = None  # text and thinking
    dirty: bool = False  # text arrived that the page has not seen


@dataclass
class ReplyEncoder:
    """Turns one reply's events into page events, sending each part's tail at most `max_fps` a second.

    Not thread-safe: one thread feeds it (`encode`, `flush`, `close`). `next_due` says when a tail
    held back by the frame rate must go out even if nothing else arrives.
    """

    model: str
    local: bool = False
    max_fps: float = MAX_FPS
    clock: Callable[[], float] = time.monotonic
    _parts: list[_Part] = field(default_factory=list)
    _open: _Part | None = None
    _last_frame: float = float("-inf")
    _chars: int = 0
    _continue_text: bool = False  # the next text part continues the last seeded one

    @property
    def interval(self) -> float:
        return 1.0 / self.max_fps if self.max_fps > 0 else 0.0

    def next_due(self) -> float | None:
        """The clock time at which a held-back tail must be sent; None when nothing waits."""
        part = self._open
        if part is None or not part.dirty:
            return None
        return self._last_frame + self.interval

    # -- parts -----------------------------------------------------------------------------------

    def _start_part(self, kind: str, html: str = "") -> list[WebEvent]:
        events = self._end_part()
        part = _Part(len(self._parts), kind, HtmlStream() if kind in ("text", "thinking") else None)
        self._parts.append(part)
        self._open = part
        events.append(("part", {"part": part.index, "kind": kind, "html": html}))
        return events

    def _frame_events(self, part: _Part, frame: HtmlFrame) -> list[WebEvent]:
        events: list[WebEvent] = []
        for piece in frame.pieces:
            data: dict[str, Any] = {"part": part.index, "html": piece.html, "chars": self._chars}
            if piece.kind == "lines":
                data["end"] = piece.end
            events.append((piece.kind, data))
        if frame.tail is not None:
            events.append(("tail", {"part": part.index, "html": frame.tail, "chars": self._chars}))
        return events

    def _end_part(self, html: str | None = None) -> list[WebEvent]:
        part, self._open = self._open, None
        if part is None:
            return []
        events: list[WebEvent] = []
        if part.stream is not None:
            final = part.stream.finish()
            events = self._frame_events(part, HtmlFrame(final.pieces, None))
        data: dict[str, Any] = {"part": part.index, "kind": part.kind}
        if html is not None:
            data["html"] = html
        events.append(("part_end", data))
        return events

    def seed(self, content: list[dict[str, Any]]) -> list[WebEvent]:
        """Events that draw a message's stored blocks first (Continue): its text goes on streaming."""
        events: list[WebEvent] = []
        for position, block in enumerate(content):
            kind = block.get("type")
            last = position == len(content) - 1
            if kind in ("text", "thinking"):
                events += self._start_part(str(kind), thinking_html() if kind == "thinking" else "")
                assert self._open is not None and self._open.stream is not None
                body = str(block.get(kind) or "")
                if last and kind == "text":  # the prefill the continuation follows ends in no whitespace
                    body = body.rstrip()
                self._open.stream.feed(body)
                frame = self._open.stream.frame()
                events += self._frame_events(self._open, frame)
                if last and kind == "text":
                    self._continue_text = True  # leave it open: the continuation appends to it
                else:
                    events += self._end_part()
            elif kind == "tool_use":
                name = str(block.get("name") or "tool")
                events += self._start_part("tool_use", tool_html(name))
                assert self._open is not None
                self._matched.add(self._open.index)
                events += self._end_part(tool_html(name, tool_input_text(block.get("input") or {}),
                                                   str(block.get("id") or "") or None))  # fmt: skip
        return events

    # -- events ----------------------------------------------------------------------------------

    def encode(self, event: ReplyEvent) -> list[WebEvent]:
        """The page events for one reply event (text may be held back until its frame is due)."""
        if isinstance(event, Delta):
            return self._delta(event)
        if isinstance(event, BlockStart):
            if event.kind == "text" and self._continue_text and self._open is not None:
                self._continue_text = False
                return []
            self._continue_text = False
            events = self._start_part(event.kind, _frame_html(event.kind, event.name))
            if event.kind == "tool_use" and self._open is not None:
                self._names[self._open.index] = event.name or "tool"
            return events
        if isinstance(event, BlockEnd):
            if event.kind == "tool_use":
                name = self._open_tool_name()
                return self._end_part(tool_html(name, tool_input_text(event.input or {})))
            return self._end_part()
        if isinstance(event, ToolCall):
            return [("tool_call", {"part": self._tool_part(), "id": event.id, "name": event.name})]
        if isinstance(event, ToolResult):
            html = tool_result_html(event.output, event.is_error)
            return [("tool_result", {"id": event.id, "html": html, "is_error": event.is_error})]
        if isinstance(event, UsageUpdate):
            usage = usage_dict(event)
            cost = pricing.cost(self.model, usage, local=self.local)
            return [("usage", {**usage, "cost": cost})]
        if isinstance(event, WindowNotice):
            return [("window", {"dropped": event.dropped, "dropped_tokens": event.dropped_tokens,
                                "reason": event.reason})]  # fmt: skip
        if isinstance(event, TurnEnd):
            events = self.close()
            usage = usage_dict(event)
            events.append(("end", {
                "status": event.status, "stop_reason": event.stop_reason, "error": event.error,
                "retryable": event.retryable, "usage": usage, "cost": event.cost,
            }))  # fmt: skip
            return events
        return []

    def _delta(self, event: Delta) -> list[WebEvent]:
        part = self._open
        if part is None or part.kind != event.kind:
            events = self._start_part(event.kind, _frame_html(event.kind, None))
            part = self._open
            assert part is not None
        else:
            events = []
        if event.kind == "tool_use":
            events.append(("input", {"part": part.index, "text": event.text}))
            return events
        assert part.stream is not None
        part.stream.feed(event.text)
        self._chars += len(event.text)
        part.dirty = True
        now = self.clock()
        if now - self._last_frame >= self.interval:
            events += self._frame(part, now)
        return events

    def _frame(self, part: _Part, now: float) -> list[WebEvent]:
        assert part.stream is not None
        self._last_frame = now
        part.dirty = False
        return self._frame_events(part, part.stream.frame())

    def flush(self) -> list[WebEvent]:
        """The held-back tail, if its frame is due now."""
        part = self._open
        due = self.next_due()
        if part is None or due is None:
            return []
        now = self.clock()
        return self._frame(part, now) if now >= due else []

    def close(self) -> list[WebEvent]:
        """Finish the open part (the reply ended or was stopped)."""
        self._continue_text = False
        return self._end_part()

    def ask(self, tool_id: str, name: str) -> list[WebEvent]:
        """The run waits for the page's Allow / Deny on this call."""
        return [("tool_ask", {"id": tool_id, "name": name})]

    def answer(self, tool_id: str, allow: bool) -> list[WebEvent]:
        """The answer the run got (every page watching hides the question)."""
        return [("tool_answer", {"id": tool_id, "allow": allow})]

    def _open_tool_name(self) -> str:
        part = self._open
        return self._names.get(part.index, "tool") if part is not None else "tool"

    def _tool_part(self) -> int:
        """The part of a tool call: the oldest tool part not yet matched to a call id."""
        for part in self._parts:
            if part.kind == "tool_use" and part.index not in self._matched:
                self._matched.add(part.index)
                return part.index
        return -1

    def __post_init__(self) -> None:
        self._names: dict[int, str] = {}  # tool part -> the tool's name
        self._matched: set[int] = set()  # tool parts whose call id is known
