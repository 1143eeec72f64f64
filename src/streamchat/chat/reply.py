"""`Reply`: one assistant reply being streamed, from the first request to its `TurnEnd`.

A reply is a loop of requests (tool rounds), each streamed through the SDK and saved as it streams.
It can be stopped from any thread at any moment, even before the response headers arrived, and it can
continue an interrupted message instead of starting a new one (`Continuation`).
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import pricing
from .continuation import Continuation
from .errors import describe_error, one_line
from .events import (
    BlockEnd,
    BlockStart,
    Delta,
    ReplyEvent,
    Status,
    ToolCall,
    ToolResult,
    TurnEnd,
    UsageUpdate,
    WindowNotice,
)
from .messages import ChatMessage

if TYPE_CHECKING:
    from .conversation import Conversation

Block = dict[str, Any]

MAX_TOOL_ROUNDS = 10  # requests in one reply before the tool loop is cut off
SAVE_INTERVAL = 0.25  # seconds between saves of a streaming reply (a crash loses at most this much)
USAGE_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def estimate_output_tokens(content: list[Block]) -> int:
    """About a token per four characters of streamed text, thinking and tool input."""
    chars = 0
    for block in content:
        chars += len(block.get("text") or "") + len(block.get("thinking") or "")
        if block.get("type") == "tool_use":
            chars += len(json.dumps(block.get("input") or {}))
    return -(-chars // 4)


class _Opening:
    """`messages.stream(...)` entered on a helper thread until the response headers arrive (SDK retries
    included), so the reply's thread waits on an Event that `abandon()` can set from any thread.

    A stream that arrives after its reply stopped waiting is closed at once, which frees the server.
    """

    def __init__(self, manager: Any) -> None:
        self._manager = manager
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stream: Any = None
        self._error: BaseException | None = None
        self._abandoned = False
        self._gone = False  # the reply stopped waiting: whatever arrives is closed
        threading.Thread(target=self._enter, name="streamchat-request", daemon=True).start()

    def _enter(self) -> None:
        stream: Any = None
        try:
            stream = self._manager.__enter__()
        except BaseException as exc:  # handed to the waiting thread
            self._error = exc
        with self._lock:
            if not self._gone:
                self._stream, stream = stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()
        self._ready.set()

    def abandon(self) -> None:
        """Stop waiting (from any thread)."""
        self._abandoned = True
        self._ready.set()

    def wait(self) -> Any:
        """The MessageStream once its headers arrived; None if abandoned first. Raises the SDK's error."""
        broken = True  # a KeyboardInterrupt while waiting leaves like an abandon
        try:
            self._ready.wait()
            broken = False
        finally:
            with self._lock:
                leaving = broken or self._abandoned
                stream = None
                if leaving:
                    self._gone = True
                    stream, self._stream = self._stream, None
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.close()
        if leaving:
            return None
        if self._error is not None:
            raise self._error
        return self._stream


@dataclass
class _Round:
    """The request in flight: its SDK stream and the assistant turn it streams into."""

    stream: Any = None
    message: ChatMessage | None = None
    counted: bool = True  # its usage is in the turn's total
    continuation: Continuation | None = None
    opening: _Opening | None = field(default=None, repr=False)


class Reply:
    """A reply being streamed: iterate it for `ReplyEvent`s; it always ends with one `TurnEnd`.

    Errors (connection refused, auth, 429/529 after the SDK's retries, a mid-stream error event) end
    it with `TurnEnd(status="error", error=<one line>, retryable=...)`, never an exception.
    With tools, it runs the tool loop: ToolCall -> confirm -> ToolResult -> next request, until the
    model ends its turn (at most `MAX_TOOL_ROUNDS` requests).

    The Reply is its own iterator, so iteration can resume after a KeyboardInterrupt broke it:
    `except KeyboardInterrupt: reply.interrupt()`, then keep iterating to get the TurnEnd.
    """

    def __init__(self, conversation: Conversation, *, refuse: str | None = None,
                 continuing: Continuation | None = None) -> None:  # fmt: skip
        self._conv = conversation
        self._pending: deque[ReplyEvent] = deque()
        self._step = threading.Lock()  # held while the iterator advances; interrupt() never waits on it
        self._stop = threading.Event()
        self._refuse = refuse
        self._continuing = continuing
        self._gen: Generator[ReplyEvent, None, None] | None = self._run() if refuse is None else None
        self._round = _Round()
        self._message: ChatMessage | None = None
        self._usage = dict.fromkeys(USAGE_KEYS, 0)
        self._texts: list[str] = []
        self._last_save = 0.0
        self.result: TurnEnd | None = None  # the TurnEnd, once the reply has ended
        self.store_error: str | None = None  # set if saving the reply to the store failed
        if refuse is not None:
            self._pending.append(self._finish("error", error=refuse))

    # -- the iterator --------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[ReplyEvent]:
        return self

    def __next__(self) -> ReplyEvent:
        with self._step:
            if self._pending:
                return self._pending.popleft()
            if self.result is not None:
                raise StopIteration
            if self._gen is None or self._stop.is_set():
                # Interrupted, or a KeyboardInterrupt killed the generator: end with what we have.
                self._close_generator()
                return self._finish("interrupted")
            try:
                return next(self._gen)
            except StopIteration:
                if self.result is None:
                    return self._finish("error", error="the reply ended without a result")
                raise
            except Exception as exc:  # a bug must not escape the iterator: report it as the turn's error
                self._gen = None
                return self._finish("error", error=one_line(f"internal error: {type(exc).__name__}: {exc}"))
            except BaseException:
                self._gen = None  # a KeyboardInterrupt killed the generator; our state lives on self
                raise

    def interrupt(self) -> None:
        """Stop now (Ctrl-C, Stop): close the HTTP stream so the server stops generating, keep the partial
        reply in history and the store as "interrupted", and make the iterator yield its TurnEnd.

        Callable from the iterating thread (after a KeyboardInterrupt broke the loop) or from another
        thread (the iterating thread then wakes up at once and ends the reply itself), at any moment:
        a request still waiting for its response headers is abandoned and closed when they come.
        """
        self._stop.set()
        opening = self._round.opening
        if opening is not None:
            opening.abandon()
        if self._step.acquire(blocking=False):
            try:  # nobody is iterating: finish here
                if self.result is None:
                    self._close_generator()
                    self._pending.append(self._finish("interrupted"))
            finally:
                self._step.release()
        else:
            self._wake_reader()

    @property
    def text(self) -> str:
        """All text received so far in this reply (text blocks only; for a continuation, what it added)."""
        return "".join(self._texts)

    @property
    def message(self) -> ChatMessage | None:
        """The assistant turn streamed last (for a continuation, the message it extends); None until the
        first response starts."""
        return self._message

    @property
    def done(self) -> bool:
        """True once the TurnEnd has been produced."""
        return self.result is not None

    def wait(self) -> TurnEnd:
        """Consume the remaining events and return the TurnEnd."""
        for _ in self:
            pass
        assert self.result is not None
        return self.result

    # -- stopping ------------------------------------------------------------------------------------

    def _wake_reader(self) -> None:
        """Unblock a thread waiting on the socket: shut it down (closing it there is the reader's job)."""
        stream = self._round.stream
        if stream is None:
            return
        try:
            network = stream.response.extensions.get("network_stream")
            sock = network.get_extra_info("socket") if network is not None else None
            if isinstance(sock, socket.socket):
                sock.shutdown(socket.SHUT_RDWR)
                return
        except Exception:  # already closed, or no socket to reach: fall back to closing the stream
            pass
        with contextlib.suppress(Exception):
            stream.close()

    def _close_generator(self) -> None:
        gen, self._gen = self._gen, None
        if gen is not None:
            with contextlib.suppress(Exception):
                gen.close()  # exits the SDK stream's context manager: the HTTP stream is closed
        stream = self._round.stream  # kept: its snapshot still holds the partial reply
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()

    # -- bookkeeping ---------------------------------------------------------------------------------

    def _snapshot(self) -> tuple[list[Block], dict[str, int]] | None:
        stream = self._round.stream
        if stream is None:
            return None
        try:
            message = stream.current_message_snapshot
        except AssertionError:  # no message_start yet
            return None
        if message is None:
            return None
        content = [block.model_dump(mode="json", exclude_none=True) for block in message.content]
        usage = {k: int(getattr(message.usage, k, 0) or 0) for k in USAGE_KEYS}
        return content, usage

    def _apply(self, content: list[Block], usage: dict[str, int]) -> None:
        """Put this round's content and usage into its message (merged into a continued one)."""
        current = self._round.message
        assert current is not None
        continuation = self._round.continuation
        if continuation is not None:
            content, usage = continuation.merged(content, usage)
        current.content, current.usage = content, usage

    def _save(self) -> None:
        """Copy the stream's snapshot into the streaming turn and the store."""
        self._last_save = time.monotonic()
        current = self._round.message
        snap = self._snapshot()
        if current is None or snap is None:
            return
        self._apply(*snap)
        self._persist(current)

    def _persist(self, message: ChatMessage) -> None:
        try:
            self._conv._save_message(message)
        except sqlite3.Error as exc:  # a store failure must not break the reply; it is reported once
            self.store_error = self.store_error or one_line(f"could not save the reply: {exc}")

    def _add(self, message: ChatMessage) -> None:
        try:
            self._conv._append(message)  # in history first, then in the store
        except sqlite3.Error as exc:
            self.store_error = self.store_error or one_line(f"could not save the reply: {exc}")

    def _end_round(self, status: Status) -> None:
        """Close the streaming turn with `status` and add its usage to the turn's."""
        current = self._round.message
        if current is None:
            return
        snap = self._snapshot()
        if snap is not None:
            content, usage = snap
            if status != "complete" and not usage.get("output_tokens"):
                # The API reports output usage only at the end: estimate what a cut-off reply produced.
                usage["output_tokens"] = estimate_output_tokens(content)
            self._apply(content, usage)
        else:
            usage = {}
        current.status = status
        self._persist(current)
        if not self._round.counted:
            for key in USAGE_KEYS:
                self._usage[key] += usage.get(key, 0)
            self._round.counted = True
        self._round.message = None

    def _finish(self, status: Status, stop_reason: str | None = None, *, error: str | None = None,
                retryable: bool = False) -> TurnEnd:  # fmt: skip
        self._end_round(status)
        conv = self._conv
        cost = pricing.cost(conv.options.model, self._usage, local=conv.options.local)
        end = TurnEnd(
            status=status, stop_reason=stop_reason, cost=cost, error=error, retryable=retryable, **self._usage
        )
        if self._refuse is None:
            conv._add_totals(end)
        self.result = end
        return end

    # -- one reply: requests, events, tools ---------------------------------------------------------

    def _open(self, params: dict[str, Any]) -> Any:
        """Start the request; the SDK's MessageStream once its headers arrived, None if stopped first."""
        opening = _Opening(self._conv.client.messages.stream(**params))
        self._round.opening = opening
        if self._stop.is_set():  # interrupt() may have run before it could see this opening
            opening.abandon()
        try:
            return opening.wait()
        finally:
            self._round.opening = None

    def _run(self) -> Generator[ReplyEvent, None, None]:
        conv = self._conv
        for round_number in range(MAX_TOOL_ROUNDS):
            continuation = self._continuing if round_number == 0 else None
            try:
                params, plan = conv._request(prefill=continuation is not None)
            except Exception as exc:
                text, retryable = describe_error(exc, str(conv.client.base_url))
                yield self._finish("error", error=text, retryable=retryable)
                return
            if round_number == 0 and plan.dropped:
                yield WindowNotice(len(plan.dropped), plan.dropped_tokens, plan.reason)
            if self._stop.is_set():
                yield self._finish("interrupted")
                return
            self._round = _Round(continuation=continuation)
            message: Any = None
            try:
                stream = self._open(params)
                self._round.stream = stream
                if stream is not None and not self._stop.is_set():  # set, then checked: see interrupt()
                    with stream:
                        for event in stream:
                            yield from self._on_event(event)
                            if self._stop.is_set():
                                break
                        if not self._stop.is_set():
                            message = stream.get_final_message()
            except Exception as exc:
                if not self._stop.is_set():
                    text, retryable = describe_error(exc, str(conv.client.base_url))
                    yield self._finish("error", error=text, retryable=retryable)
                    return
            if self._stop.is_set():
                yield self._finish("interrupted")
                return
            assert message is not None
            if message.stop_reason is None:  # the body ended without message_stop
                yield self._finish("error", error="the stream ended early", retryable=True)
                return
            self._end_round("complete")
            self._round.stream = None
            uses = [b for b in message.content if b.type == "tool_use"]
            if message.stop_reason != "tool_use" or not uses or not conv.tools:
                yield self._finish("complete", message.stop_reason)
                return
            results: list[Block] = []
            for block in uses:
                data = dict(block.input) if isinstance(block.input, dict) else {}
                yield ToolCall(block.id, block.name, data)
                if self._stop.is_set():
                    break
                output, is_error = conv._run_tool(block.name, data)
                yield ToolResult(block.id, block.name, output, is_error)
                result: Block = {"type": "tool_result", "tool_use_id": block.id, "content": output}
                if is_error:
                    result["is_error"] = True
                results.append(result)
                if self._stop.is_set():
                    break
            if results:
                self._add(ChatMessage("user", results))
            if self._stop.is_set():
                yield self._finish("interrupted", "tool_use")
                return
        yield self._finish("complete", "tool_use", error=f"stopped after {MAX_TOOL_ROUNDS} tool rounds")

    def _on_event(self, event: Any) -> Iterator[ReplyEvent]:
        kind = event.type
        current = self._round
        if kind == "message_start":
            usage = event.message.usage
            current.counted = False
            if current.continuation is not None:  # the continued message stays "interrupted" until done
                current.message = current.continuation.message
                current.message.status = "interrupted"
            else:
                current.message = ChatMessage("assistant", [], status="interrupted")  # until it completes
                self._add(current.message)
            self._message = current.message
            self._last_save = time.monotonic()
            yield _usage_update(usage)
        elif kind == "content_block_start":
            block = event.content_block
            if block.type in ("text", "thinking", "tool_use"):
                continuation = current.continuation if block.type == "text" and event.index == 0 else None
                prefix = continuation.prefix if continuation is not None else ""
                yield BlockStart(block.type, getattr(block, "name", None), prefix)
        elif kind == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta":
                text = delta.text
                if current.continuation is not None and event.index == 0:
                    text = current.continuation.first_text(text)
                self._texts.append(text)
                out: ReplyEvent | None = Delta("text", text)
            elif delta.type == "thinking_delta":
                out = Delta("thinking", delta.thinking)
            elif delta.type == "input_json_delta":
                out = Delta("tool_use", delta.partial_json)
            else:
                out = None
            if time.monotonic() - self._last_save >= SAVE_INTERVAL:
                self._save()
            if out is not None:
                yield out
        elif kind == "content_block_stop":
            block = event.content_block
            self._save()
            if block.type in ("text", "thinking", "tool_use"):
                raw = getattr(block, "input", None) if block.type == "tool_use" else None
                yield BlockEnd(block.type, dict(raw) if isinstance(raw, dict) else None)
        elif kind == "message_delta":
            stream = current.stream
            usage = stream.current_message_snapshot.usage if stream is not None else event.usage
            yield _usage_update(usage)


def _usage_update(usage: Any) -> UsageUpdate:
    return UsageUpdate(
        int(usage.input_tokens or 0), int(usage.output_tokens or 0),
        int(usage.cache_creation_input_tokens or 0), int(usage.cache_read_input_tokens or 0),
    )  # fmt: skip
