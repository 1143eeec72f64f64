"""A deterministic engine that replays a script: for tests, benchmarks and demos.

A script is either plain text/Markdown (one text block) or JSON: a list of blocks, an object
`{"blocks": [...], "stop_reason": ...}`, or `{"replies": [reply, ...]}` where the reply used is
chosen by how many assistant turns the request already holds. Blocks are
`{"type": "text", "text"}`, `{"type": "thinking", "thinking"}`, `{"type": "tool_use", "name",
"input"}` and `{"type": "error", "message"}` (the engine fails there, mid-stream).
Each delta counts as one output token.
"""

from __future__ import annotations

import json
import math
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api.errors import new_id
from ..api.request import MessagesRequest
from ..api.stream import (
    BlockStop,
    Finish,
    InputJsonDelta,
    Part,
    TextDelta,
    ThinkingDelta,
    ToolUseStart,
)
from .base import EngineError


@dataclass(frozen=True)
class Reply:
    blocks: tuple[dict[str, Any], ...]
    stop_reason: str | None = None


def parse_script(source: str, *, as_json: bool | None = None) -> tuple[Reply, ...]:
    """Read a script; `as_json=None` tries JSON when the text looks like it."""
    stripped = source.lstrip()
    if as_json is None:
        as_json = stripped.startswith(("{", "["))
    if not as_json:
        return (Reply(({"type": "text", "text": source},)),)
    try:
        data = json.loads(source)
    except ValueError as exc:
        raise ValueError(f"script is not valid JSON: {exc}") from None
    replies = data["replies"] if isinstance(data, dict) and "replies" in data else [data]
    return tuple(_reply(r) for r in replies)


def _reply(raw: Any) -> Reply:
    if isinstance(raw, str):
        return Reply(({"type": "text", "text": raw},))
    if isinstance(raw, list):
        raw = {"blocks": raw}
    if not isinstance(raw, dict) or not isinstance(raw.get("blocks"), list):
        raise ValueError("a script reply is a string, a list of blocks or {'blocks': [...]}")
    for block in raw["blocks"]:
        if not isinstance(block, dict) or block.get("type") not in ("text", "thinking", "tool_use", "error"):
            raise ValueError(f"unknown script block: {block!r}")
    return Reply(tuple(raw["blocks"]), raw.get("stop_reason"))


def _approx_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


class ScriptEngine:
    """Replays a script in chunks of `chunk` characters (0: random 1-16, seeded) at `rate` deltas/s."""

    display_name = "Script engine"
    max_concurrency: int | None = None
    accepts_media = False

    def __init__(self, replies: tuple[Reply, ...], *, chunk: int = 4, rate: float = 0.0, seed: int = 0,
                 model_id: str = "streamchat-script") -> None:  # fmt: skip
        if not replies:
            raise ValueError("a script needs at least one reply")
        if chunk < 0 or rate < 0:
            raise ValueError("chunk and rate must be >= 0")
        self.replies = replies
        self.chunk = chunk
        self.rate = rate
        self.seed = seed
        self.model_id = model_id

    @classmethod
    def from_file(cls, path: Path, **options: Any) -> ScriptEngine:
        """Load a script file (`.json` files are JSON; others are sniffed)."""
        source = path.read_text(encoding="utf-8")
        as_json = True if path.suffix == ".json" else None
        return cls(parse_script(source, as_json=as_json), **options)

    def count_tokens(self, request: MessagesRequest) -> int:
        """A deterministic estimate: a token per four characters of the prompt."""
        chars = len(request.system) + sum(len(json.dumps(t)) for t in request.tools)
        for message in request.messages:
            chars += 8 + sum(len(json.dumps(b)) if b.get("type") != "text" else len(b["text"])
                             for b in message.content)  # fmt: skip
        return max(1, math.ceil(chars / 4))

    def _pick(self, request: MessagesRequest) -> Reply:
        turns = sum(1 for m in request.messages if m.role == "assistant")
        if request.messages[-1].role == "assistant":
            turns -= 1
        return self.replies[turns % len(self.replies)]

    def _chunks(self, text: str, rng: random.Random) -> Iterator[str]:
        i = 0
        while i < len(text):
            size = self.chunk or rng.randint(1, 16)
            yield text[i : i + size]
            i += size

    def generate(self, request: MessagesRequest, cancel: threading.Event) -> Iterator[Part]:
        """Replay the chosen reply, honouring max_tokens, stop_sequences and prefill."""
        reply = self._pick(request)
        rng = random.Random(self.seed)
        delay = 1.0 / self.rate if self.rate else 0.0
        produced = 0
        used_tool = False
        prefill = request.prefill
        for position, block in enumerate(reply.blocks):
            kind = block["type"]
            if kind == "error":
                raise EngineError(str(block.get("message", "scripted engine failure")))
            stop_hit: str | None = None
            if kind == "text":
                text = str(block["text"])
                if position == 0 and prefill and text.startswith(prefill):
                    text = text[len(prefill) :]
                cut = [(text.find(s), s) for s in request.stop_sequences if s in text]
                if cut:
                    at, stop_hit = min(cut)
                    text = text[:at]
                pieces: Iterator[Part] = (TextDelta(c) for c in self._chunks(text, rng))
            elif kind == "thinking":
                pieces = (ThinkingDelta(c) for c in self._chunks(str(block["thinking"]), rng))
            else:
                used_tool = True
                payload = json.dumps(block.get("input", {}), ensure_ascii=False)
                tool_id = str(block.get("id") or new_id("toolu_"))
                start: list[Part] = [ToolUseStart(tool_id, str(block["name"]))]
                pieces = iter(start + [InputJsonDelta(c) for c in self._chunks(payload, rng)])
            for piece in pieces:
                if delay and cancel.wait(delay):
                    return
                if cancel.is_set():
                    return
                if not isinstance(piece, ToolUseStart):
                    if produced >= request.max_tokens:
                        yield Finish("max_tokens", produced)
                        return
                    produced += 1
                yield piece
            yield BlockStop()
            if stop_hit is not None:
                yield Finish("stop_sequence", produced, stop_hit)
                return
        yield Finish(reply.stop_reason or ("tool_use" if used_tool else "end_turn"), produced)

    def close(self) -> None:
        """Nothing to free."""
