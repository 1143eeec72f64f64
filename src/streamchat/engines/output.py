"""Stream-safe readers of model output text: each takes text pieces as they are generated, cut at
any point (token boundaries fall anywhere), and never emits text a later piece could change.

- `ThinkSplitter`: a leading `<think>...</think>` becomes thinking, the rest text.
- `StopSequenceFilter`: cuts the text at the first stop sequence, holding back a possible start of one.
- `CallDetector`: in `auto` tool mode, recognises a reply that starts with a tool call.
- `ToolCallReader`: reads a (grammar-constrained) call `{"name": ..., "input": {...}}` into the
  tool name and the input JSON, streamed as it arrives.
- `JsonValueEnd`: finds where a streamed JSON object or array closes (tool inputs, structured outputs).
- `ReplyText`: the first three composed, as the engine's text path uses them.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Sequence

from ..api.stream import InputJsonDelta, Part, TextDelta, ThinkingDelta, ToolUseStart

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


def utf8_decoder() -> codecs.IncrementalDecoder:
    """Bytes to text across pieces: a character split over tokens is held until it is complete."""
    return codecs.getincrementaldecoder("utf-8")(errors="replace")


def partial_suffix(text: str, needles: Sequence[str]) -> int:
    """Length of the longest end of `text` that is a proper start of one of `needles`."""
    longest = min(len(text), max((len(n) for n in needles), default=1) - 1)
    for size in range(longest, 0, -1):
        tail = text[-size:]
        if any(len(n) > size and n.startswith(tail) for n in needles):
            return size
    return 0


class ThinkSplitter:
    """Splits a reply into a leading `<think>` block (ThinkingDelta) and the text after it.

    Only a `<think>` at the very start of the reply (after whitespace) opens thinking; `thinking=True`
    starts inside it (templates that open the block in the generation prompt). The whitespace
    around the block's content and after `</think>` is dropped.
    """

    def __init__(self, *, thinking: bool = False) -> None:
        self.state = "thinking" if thinking else "start"  # start | thinking | text
        self._held = ""
        self._skip_space = thinking  # drop the newline after `<think>` / `</think>`

    def feed(self, text: str) -> list[Part]:
        """The parts `text` completes (possibly none)."""
        if self.state == "text" and not self._skip_space:
            return [TextDelta(text)] if text else []
        buffer = self._held + text
        self._held = ""
        if self.state == "start":
            stripped = buffer.lstrip()
            if stripped.startswith(THINK_OPEN):
                self.state, self._skip_space = "thinking", True
                buffer = stripped[len(THINK_OPEN) :]
            elif THINK_OPEN.startswith(stripped):
                self._held = buffer  # may still become `<think>`
                return []
            else:
                self.state = "text"
                return [TextDelta(buffer)]
        if self.state == "thinking":
            return self._thinking(buffer)
        return self._text(buffer)

    def _after_space(self, buffer: str) -> str:
        """`buffer` without the whitespace still to drop after a `<think>` / `</think>` tag."""
        if self._skip_space:
            buffer = buffer.lstrip()
            self._skip_space = not buffer  # keep dropping until something else arrives
        return buffer

    def _thinking(self, buffer: str) -> list[Part]:
        buffer = self._after_space(buffer)
        if not buffer:
            return []
        end = buffer.find(THINK_CLOSE)
        if end >= 0:
            parts: list[Part] = []
            thought = buffer[:end].rstrip()
            if thought:
                parts.append(ThinkingDelta(thought))
            self.state, self._skip_space = "text", True
            return parts + self._text(buffer[end + len(THINK_CLOSE) :])
        keep = partial_suffix(buffer, (THINK_CLOSE,))
        ready = buffer[: len(buffer) - keep]
        shown = ready.rstrip()  # trailing space waits: it is dropped if `</think>` follows
        self._held = buffer[len(shown) :]
        return [ThinkingDelta(shown)] if shown else []

    def _text(self, buffer: str) -> list[Part]:
        buffer = self._after_space(buffer)
        return [TextDelta(buffer)] if buffer else []

    def flush(self) -> list[Part]:
        """What is still held when the reply ends (an unclosed thought stays thinking)."""
        held, self._held = self._held, ""
        if not held:
            return []
        if self.state == "thinking":
            return [ThinkingDelta(held.rstrip())] if held.strip() else []
        return [TextDelta(held)]


class StopSequenceFilter:
    """Passes text until the first stop sequence; never emits a part of one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.hit: str | None = None
        self._held = ""

    def feed(self, text: str) -> str:
        """The text that is certainly before any stop sequence; sets `hit` when one appears."""
        if not self.stops:
            return text
        buffer = self._held + text
        found = [(buffer.find(s), len(s), s) for s in self.stops if s in buffer]
        if found:
            at, _, self.hit = min(found)  # the earliest; at a tie the shortest, which ends first
            self._held = ""
            return buffer[:at]
        keep = partial_suffix(buffer, self.stops)
        self._held = buffer[len(buffer) - keep :]
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        """Held text, once the reply has ended without completing a stop sequence."""
        held, self._held = self._held, ""
        return held


class CallDetector:
    """Holds the start of a reply while it may be `{"name": "<a tool>"` (whitespace ignored).

    `feed` returns the text to pass on; `called` becomes True once the reply is recognisably a
    call of one of `names` (the held text is then the call's start, not text).
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.prefixes = tuple('{"name":' + json.dumps(n) for n in names)
        self.called = False
        self._held = ""
        self._done = not self.prefixes

    def feed(self, text: str) -> str:
        """Text that is certainly not a call's beginning."""
        if self._done:
            return "" if self.called else text
        self._held += text
        compact = re.sub(r"\s+", "", self._held)
        if any(compact.startswith(p) for p in self.prefixes):
            self.called = self._done = True
            return ""
        if compact and not any(p.startswith(compact) for p in self.prefixes):
            self._done = True
            held, self._held = self._held, ""
            return held
        return ""

    def flush(self) -> str:
        """Held text when the reply ended before deciding (it was text)."""
        self._done = True
        held, self._held = self._held, ""
        return held


_CALL_NAME = re.compile(r'\s*\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")')
_CALL_INPUT = re.compile(r'\s*,\s*"input"\s*:\s*')


class ToolCallReader:
    """Reads `{"name": NAME, "input": {...}}` text into ToolUseStart + InputJsonDelta parts.

    The input object is streamed as it is generated, each piece one delta; `done` turns True when
    the input's closing brace arrives (the outer object's own `}` is not needed).
    """

    def __init__(self, new_id: str) -> None:
        self.tool_use_id = new_id
        self.name: str | None = None
        self.done = False
        self.input_json = ""
        self._head = ""
        self._in_input = False
        self._input_end = JsonValueEnd()

    def feed(self, text: str) -> list[Part]:
        """The parts `text` completes."""
        if self.done:
            return []
        parts: list[Part] = []
        if not self._in_input:
            self._head += text
            if self.name is None:
                match = _CALL_NAME.match(self._head)
                if match is None:
                    return []
                self.name = str(json.loads(match.group(1)))
                parts.append(ToolUseStart(self.tool_use_id, self.name))  # the block starts with its name
                self._head = self._head[match.end() :]
            match = _CALL_INPUT.match(self._head)
            if match is None:
                return parts
            text, self._head, self._in_input = self._head[match.end() :], "", True
        taken = self._scan(text)
        if taken:
            self.input_json += taken
            parts.append(InputJsonDelta(taken))
        return parts

    def _scan(self, text: str) -> str:
        start = len(text) - len(text.lstrip()) if not self.input_json else 0  # space before `{`
        end = self._input_end.feed(text[start:])
        if end is None:
            return text[start:]
        self.done = True
        return text[start : start + end]


class JsonValueEnd:
    """Finds where streamed text completes one JSON object or array (strings and escapes respected)."""

    def __init__(self) -> None:
        self.depth = 0
        self.started = False
        self.in_string = False
        self.escaped = False
        self.done = False

    def feed(self, text: str) -> int | None:
        """The position in `text` just after the value closed (then `done`), or None while it is open."""
        for i, char in enumerate(text):
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif char == "\\":
                    self.escaped = True
                elif char == '"':
                    self.in_string = False
            elif char == '"':
                self.in_string = True
            elif char in "{[":
                self.depth += 1
                self.started = True
            elif char in "}]":
                self.depth -= 1
                if self.started and self.depth == 0:
                    self.done = True
                    return i + 1
        return None


class ReplyText:
    """The text path's readers composed: thinking split, tool-call detection, stop sequences.

    Stop sequences apply to the visible text (not to thinking). `stop_sequence` is set when one
    ends the reply; `called` when `auto` tool detection recognised a call.
    """

    def __init__(
        self, *, stops: Sequence[str] = (), tool_names: Sequence[str] = (), thinking: bool = False
    ) -> None:
        self.think = ThinkSplitter(thinking=thinking)
        self.detector = CallDetector(tool_names)
        self.stops = StopSequenceFilter(stops)
        self.stop_sequence: str | None = None
        self.called = False

    def feed(self, text: str) -> list[Part]:
        """The parts `text` completes; after a stop sequence or a call, nothing more."""
        if self.stop_sequence is not None or self.called:
            return []
        out: list[Part] = []
        for part in self.think.feed(text):
            if isinstance(part, TextDelta):
                out += self._text(self.detector.feed(part.text))
                if self.detector.called:
                    self.called = True
                    break
            else:
                out.append(part)
            if self.stop_sequence is not None:
                break
        return out

    def _text(self, text: str) -> list[Part]:
        shown = self.stops.feed(text) if text else ""
        if self.stops.hit is not None:
            self.stop_sequence = self.stops.hit
        return [TextDelta(shown)] if shown else []

    def flush(self) -> list[Part]:
        """Everything still held, at the end of the reply."""
        if self.stop_sequence is not None or self.called:
            return []
        out: list[Part] = []
        for part in self.think.flush():
            if isinstance(part, TextDelta):
                out += self._text(self.detector.feed(part.text))
            else:
                out.append(part)
        if not self.detector.called:
            out += self._text(self.detector.flush())
        self.called = self.detector.called
        if self.stop_sequence is None:
            rest = self.stops.flush()
            if rest:
                out.append(TextDelta(rest))
        return out
