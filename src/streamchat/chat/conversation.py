"""`Conversation`: one chat's history, persona, window, usage and persistence.

The terminal and web views are written against exactly this interface. The pieces live beside it:
`window` (which messages a request sends), `pricing` (cost), `store` (SQLite), `tools` (tool files).
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import anthropic

from . import pricing
from .events import (
    BlockEnd,
    BlockStart,
    Delta,
    ReplyEvent,
    SessionTotals,
    Status,
    ToolCall,
    ToolResult,
    TurnEnd,
    UsageUpdate,
    WindowNotice,
)
from .window import TokenCache, WindowPlan, is_user_text, plan_window, to_api

Role = Literal["user", "assistant", "system"]
Confirm = Callable[[str, dict[str, Any]], bool]  # (tool name, input) -> run it?

MAX_TOOL_ROUNDS = 10  # requests in one reply before the tool loop is cut off
SAVE_INTERVAL = 0.25  # seconds between saves of a streaming reply (a crash loses at most this much)
DECLINED = "declined by the user"
_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


@dataclass
class ChatMessage:
    """One turn as kept in history and in the store: content blocks exactly as the API returned them.

    A reply is saved with status "interrupted" while it streams and flipped to "complete" when it
    ends, so a reply cut off by a crash is marked as not complete.
    """

    role: Role
    content: list[dict[str, Any]]
    status: Status = "complete"
    usage: dict[str, int] | None = None
    pinned: bool = False
    id: int | None = None  # the store's row id


@dataclass(frozen=True)
class WindowReport:
    """What the next request's context window holds (`/context`)."""

    included: list[int]  # indexes into Conversation.messages, in order
    dropped: list[int]  # indexes left out (oldest first)
    pinned: list[int]
    tokens: int | None  # input tokens of the window incl. system and tools, if counted
    budget: int | None  # max_context_tokens
    max_turns: int | None


@dataclass
class ConversationOptions:
    """Knobs of a conversation (from CLI flags and the config file)."""

    model: str
    system: str = ""
    max_tokens: int = 1024
    max_turns: int | None = None
    max_context_tokens: int | None = None
    thinking: bool = False
    thinking_budget: int = 1024
    local: bool = False  # the built-in model: costs 0
    temperature: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # extra request body fields (metadata, top_k, ...)


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def describe_error(exc: BaseException, base_url: str = "") -> tuple[str, bool]:
    """(one-line message, retryable) for an exception raised while talking to the API."""
    if isinstance(exc, anthropic.APITimeoutError):
        return f"the request to {base_url} timed out", True
    if isinstance(exc, anthropic.APIConnectionError):
        cause: BaseException = exc
        while cause.__cause__ is not None:
            cause = cause.__cause__
        detail = str(cause) or type(cause).__name__
        return _one_line(f"cannot connect to {base_url}: {detail}"), True
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        body = exc.body if isinstance(exc.body, dict) else {}
        error = body.get("error") if isinstance(body.get("error"), dict) else body
        kind = str(error.get("type") or "") if isinstance(error, dict) else ""
        message = str(error.get("message") or "") if isinstance(error, dict) else ""
        message = message or exc.message
        labels = {
            "authentication_error": "authentication failed", "permission_error": "permission denied",
            "not_found_error": "not found", "invalid_request_error": "invalid request",
            "rate_limit_error": "rate limited", "overloaded_error": "the API is overloaded",
            "api_error": "API error", "request_too_large": "request too large",
        }  # fmt: skip
        label = labels.get(kind, kind or "API error")
        if 200 <= status < 300:  # an `event: error` after the stream started
            return _one_line(f"{label} mid-stream: {message}"), kind in ("api_error", "overloaded_error", "")
        retryable = status in (408, 409, 429) or status >= 500
        return _one_line(f"{label} ({status}): {message}"), retryable
    if isinstance(exc, anthropic.APIError):
        return _one_line(exc.message), True
    # httpx errors while reading the body: the connection broke mid-stream.
    return _one_line(f"connection lost: {exc or type(exc).__name__}"), True


class Reply:
    """A reply being streamed: iterate it for `ReplyEvent`s; it always ends with one `TurnEnd`.

    Errors (connection refused, auth, 429/529 after the SDK's retries, a mid-stream error event) end
    it with `TurnEnd(status="error", error=<one line>, retryable=...)`, never an exception.
    With tools, it runs the tool loop: ToolCall -> confirm -> ToolResult -> next request, until the
    model ends its turn (at most `MAX_TOOL_ROUNDS` requests).

    The Reply is its own iterator, so iteration can resume after a KeyboardInterrupt broke it:
    `except KeyboardInterrupt: reply.interrupt()`, then keep iterating to get the TurnEnd.
    """

    def __init__(self, conversation: Conversation, *, refuse: str | None = None) -> None:
        self._conv = conversation
        self._pending: deque[ReplyEvent] = deque()
        self._step = threading.Lock()  # held while the iterator advances; interrupt() never waits on it
        self._stop = threading.Event()
        self._refuse = refuse
        self._gen: Generator[ReplyEvent, None, None] | None = self._run() if refuse is None else None
        self._stream: Any = None  # the SDK MessageStream of the request in flight
        self._current: ChatMessage | None = None  # the assistant turn being streamed (already in history)
        self._round_counted = True
        self._usage = dict.fromkeys(_USAGE_KEYS, 0)
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
                return self._finish("error", error=_one_line(f"internal error: {type(exc).__name__}: {exc}"))
            except BaseException:
                self._gen = None  # a KeyboardInterrupt killed the generator; our state lives on self
                raise

    def interrupt(self) -> None:
        """Stop now (Ctrl-C): close the HTTP stream so the server stops generating, keep the partial
        reply in history and the store as "interrupted", and make the iterator yield its TurnEnd.

        Callable from the iterating thread (after a KeyboardInterrupt broke the loop) or from another
        thread (the iterating thread then wakes up at once and ends the reply itself).
        """
        self._stop.set()
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
        """All text received so far in this reply (text blocks only)."""
        return "".join(self._texts)

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
        stream = self._stream
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
        stream = self._stream  # kept: its snapshot still holds the partial reply
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()

    # -- bookkeeping ---------------------------------------------------------------------------------

    def _snapshot(self) -> tuple[list[dict[str, Any]], dict[str, int]] | None:
        stream = self._stream
        if stream is None:
            return None
        try:
            message = stream.current_message_snapshot
        except AssertionError:  # no message_start yet
            return None
        if message is None:
            return None
        content = [block.model_dump(mode="json", exclude_none=True) for block in message.content]
        usage = {k: int(getattr(message.usage, k, 0) or 0) for k in _USAGE_KEYS}
        return content, usage

    def _save(self) -> None:
        """Copy the stream's snapshot into the streaming turn and the store."""
        self._last_save = time.monotonic()
        current = self._current
        snap = self._snapshot()
        if current is None or snap is None:
            return
        current.content, current.usage = snap
        self._persist(current)

    def _persist(self, message: ChatMessage) -> None:
        try:
            self._conv._save_message(message)
        except sqlite3.Error as exc:  # a store failure must not break the reply; it is reported once
            self.store_error = self.store_error or _one_line(f"could not save the reply: {exc}")

    def _add(self, message: ChatMessage) -> None:
        try:
            self._conv._append(message)  # in history first, then in the store
        except sqlite3.Error as exc:
            self.store_error = self.store_error or _one_line(f"could not save the reply: {exc}")

    def _end_round(self, status: Status) -> None:
        """Close the streaming turn with `status` and add its usage to the turn's."""
        current = self._current
        if current is None:
            return
        snap = self._snapshot()
        if snap is not None:
            current.content, current.usage = snap
        current.status = status
        if status != "complete" and current.usage is not None and not current.usage.get("output_tokens"):
            # The API reports output usage only at the end: estimate what a cut-off reply produced.
            current.usage["output_tokens"] = estimate_output_tokens(current.content)
        self._persist(current)
        if not self._round_counted and current.usage:
            for key in _USAGE_KEYS:
                self._usage[key] += current.usage.get(key, 0)
            self._round_counted = True
        self._current = None

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

    def _run(self) -> Generator[ReplyEvent, None, None]:
        conv = self._conv
        for round_number in range(MAX_TOOL_ROUNDS):
            try:
                params, plan = conv._request()
            except Exception as exc:
                text, retryable = describe_error(exc, str(conv.client.base_url))
                yield self._finish("error", error=text, retryable=retryable)
                return
            if round_number == 0 and plan.dropped:
                yield WindowNotice(len(plan.dropped), plan.dropped_tokens, plan.reason)
            if self._stop.is_set():
                yield self._finish("interrupted")
                return
            message: Any = None
            try:
                with conv.client.messages.stream(**params) as stream:
                    self._stream = stream
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
            self._stream = None
            uses = [b for b in message.content if b.type == "tool_use"]
            if message.stop_reason != "tool_use" or not uses or not conv.tools:
                yield self._finish("complete", message.stop_reason)
                return
            results: list[dict[str, Any]] = []
            for block in uses:
                data = dict(block.input) if isinstance(block.input, dict) else {}
                yield ToolCall(block.id, block.name, data)
                if self._stop.is_set():
                    break
                output, is_error = conv._run_tool(block.name, data)
                yield ToolResult(block.id, block.name, output, is_error)
                result: dict[str, Any] = {"type": "tool_result", "tool_use_id": block.id, "content": output}
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
        if kind == "message_start":
            usage = event.message.usage
            self._current = ChatMessage("assistant", [], status="interrupted")  # until it completes
            self._round_counted = False
            self._add(self._current)
            self._last_save = time.monotonic()
            yield _usage_update(usage)
        elif kind == "content_block_start":
            block = event.content_block
            if block.type in ("text", "thinking", "tool_use"):
                yield BlockStart(block.type, getattr(block, "name", None))
        elif kind == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta":
                self._texts.append(delta.text)
                out: ReplyEvent | None = Delta("text", delta.text)
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
            usage = self._stream.current_message_snapshot.usage if self._stream is not None else event.usage
            yield _usage_update(usage)


class Conversation:
    """History + persona + window + usage + store for one chat; shared by the terminal and the web.

    `store` is a `chat.store.Store` (or None: nothing is saved). `tools` is a `chat.tools.ToolSet`;
    `confirm(name, input)` is asked before each tool call (None: tools run without asking).
    """

    id: str
    title: str
    options: ConversationOptions
    messages: list[ChatMessage]
    totals: SessionTotals  # this process's running totals (not persisted)

    def __init__(self, client: anthropic.Anthropic, options: ConversationOptions, store: Any | None = None,
                 *, tools: Any | None = None, confirm: Confirm | None = None) -> None:  # fmt: skip
        """A new, empty conversation (saved in `store` when its first message is sent)."""
        self.client = client
        self.options = options
        self.store = store
        self.tools = tools
        self.confirm = confirm
        self.id = _new_id()
        self.title = ""
        self.messages = []
        self.totals = SessionTotals()
        self.token_cache = TokenCache()  # count_tokens results, shared by window() and requests
        self._saved = False

    @classmethod
    def resume(cls, client: anthropic.Anthropic, store: Any, conversation_id: str | None,
               options: ConversationOptions | None = None, **kwargs: Any) -> Conversation:  # fmt: skip
        """Load a saved conversation (None: the most recent one); `options` override saved model/system.

        Without `options` the saved model and persona are used; with them, `options.model` wins and
        `options.system` wins when not empty. Raises LookupError (KeyError for an unknown id).
        """
        wanted = conversation_id or store.last_conversation_id()
        if wanted is None:
            raise LookupError("there is no saved conversation")
        saved = store.load(wanted)
        info = saved.info
        if options is None:
            options = ConversationOptions(model=info.model, system=info.system)
        else:
            options = replace(options, system=options.system or info.system)
        conv = cls(client, options, store, **kwargs)
        conv.id = info.id
        conv.title = info.title
        conv.messages = saved.messages
        conv._saved = True
        if (options.model, options.system) != (info.model, info.system):
            store.update_conversation(conv.id, model=options.model, system=options.system)
        return conv

    # -- turns ---------------------------------------------------------------------------------------

    def send(self, text: str) -> Reply:
        """Append a user turn and start streaming the assistant's reply (ValueError for empty text)."""
        if not text.strip():
            raise ValueError("a message needs some text")
        if not self.title:
            self.title = make_title(text)
            if self.store is not None and self._saved:  # a saved conversation that had no title yet
                self.store.update_conversation(self.id, title=self.title)
        self._append(ChatMessage("user", [{"type": "text", "text": text}]))
        return Reply(self)

    def retry(self) -> Reply:
        """Drop the last assistant reply (complete, interrupted or failed) and generate it again."""
        start = self._last_user_text()
        if start is None:
            return Reply(self, refuse="nothing to retry: there is no user message")
        self._truncate(start + 1)
        return Reply(self)

    def undo(self) -> bool:
        """Drop the last exchange (user turn and its reply, tool turns included). False if empty."""
        if not self.messages:
            return False
        start = self._last_user_text()
        self._truncate(start if start is not None else 0)
        return True

    def clear(self) -> None:
        """Start a new conversation (new id) with the same options."""
        self.id = _new_id()
        self.title = ""
        self.messages = []
        self._saved = False

    def set_system(self, text: str) -> None:
        """Change the persona for the following requests (saved)."""
        self.options.system = text
        if self.store is not None and self._saved:
            self.store.update_conversation(self.id, system=text)

    def set_model(self, model: str) -> None:
        """Change the model for the following requests (saved)."""
        self.options.model = model
        if self.store is not None and self._saved:
            self.store.update_conversation(self.id, model=model)

    def pin(self, index: int, pinned: bool = True) -> None:
        """Keep messages[index] in the window whatever the limits (saved)."""
        message = self.messages[index]
        message.pinned = pinned
        if self.store is not None and message.id is not None:
            self.store.update_message(message.id, pinned=pinned)

    # -- the window ----------------------------------------------------------------------------------

    def window(self) -> WindowReport:
        """The context window the next request would send."""
        plan = self._plan_or_turns()
        return WindowReport(plan.included, plan.dropped, plan.pinned, plan.tokens,
                            self.options.max_context_tokens, self.options.max_turns)  # fmt: skip

    def api_messages(self) -> list[dict[str, Any]]:
        """The `messages` the next request sends: the window, made valid for the real API (no empty or
        whitespace-ended assistant turn, no unsigned partial thinking, no tool_use without its result)."""
        plan = self._plan_or_turns()
        return to_api([self.messages[i] for i in plan.included])

    @property
    def count_tokens_calls(self) -> int:
        """How many count_tokens requests the window has made (the budget's cost)."""
        return self.token_cache.calls

    def _thinking(self) -> dict[str, Any] | None:
        if not self.options.thinking:
            return None
        return {"type": "enabled", "budget_tokens": self.options.thinking_budget}

    def _plan_or_turns(self) -> WindowPlan:
        """The window, or by the turn limit alone when the token count cannot be had."""
        try:
            return self._plan()
        except anthropic.APIError:
            return plan_window(self.messages, max_turns=self.options.max_turns)

    def _plan(self) -> WindowPlan:
        options = self.options
        system = options.system
        tools = self.tools.definitions if self.tools else None
        thinking = self._thinking()

        def count(messages: list[dict[str, Any]]) -> int:
            extra: dict[str, Any] = {}
            if system:
                extra["system"] = system
            if tools:
                extra["tools"] = tools
            if thinking:
                extra["thinking"] = thinking
            try:
                result = self.client.messages.count_tokens(model=options.model, messages=messages, **extra)  # type: ignore[arg-type]
            except anthropic.NotFoundError:  # a server without count_tokens: estimate, 4 characters a token
                return len(json.dumps([system, tools, messages])) // 4
            return int(result.input_tokens)

        key = json.dumps([options.model, system, tools, thinking], sort_keys=True)
        return plan_window(self.messages, max_turns=options.max_turns, max_tokens=options.max_context_tokens,
                           counter=count, cache=self.token_cache, key=key)  # fmt: skip

    def _request(self) -> tuple[dict[str, Any], WindowPlan]:
        """The keyword arguments of `messages.stream` for the next request, and its window."""
        options = self.options
        plan = self._plan()
        params: dict[str, Any] = {
            "model": options.model,
            "max_tokens": options.max_tokens,
            "messages": to_api([self.messages[i] for i in plan.included]),
        }
        if options.system:
            params["system"] = options.system
        if self.tools:
            params["tools"] = self.tools.definitions
        thinking = self._thinking()
        if thinking:
            params["thinking"] = thinking
            params["max_tokens"] = options.max_tokens + options.thinking_budget  # the API wants max > budget
        extra = dict(options.extra)
        if options.temperature is not None and not thinking:  # the API refuses temperature with thinking
            extra["temperature"] = options.temperature  # SDK 2.x has no keyword for it: send it in the body
        if extra:
            params["extra_body"] = extra
        return params, plan

    # -- tools ---------------------------------------------------------------------------------------

    def _run_tool(self, name: str, data: dict[str, Any]) -> tuple[str, bool]:
        try:
            allowed = self.confirm(name, data) if self.confirm is not None else True
        except Exception:  # a failing prompt counts as "no"
            allowed = False
        if not allowed:
            return DECLINED, True
        if self.tools is None:
            return f"unknown tool: {name}", True
        output, is_error = self.tools.run(name, data)
        return str(output), bool(is_error)

    # -- history and store ---------------------------------------------------------------------------

    def _last_user_text(self) -> int | None:
        for index in range(len(self.messages) - 1, -1, -1):
            if is_user_text(self.messages[index]):
                return index
        return None

    def _append(self, message: ChatMessage) -> None:
        self.messages.append(message)
        if self.store is None:
            return
        with self.store.transaction():
            if not self._saved:
                self.store.create_conversation(self.id, title=self.title, system=self.options.system,
                                               model=self.options.model)  # fmt: skip
                self._saved = True
            message.id = self.store.add_message(self.id, len(self.messages) - 1, message)

    def _save_message(self, message: ChatMessage) -> None:
        if self.store is not None and message.id is not None:
            self.store.update_message(message.id, content=message.content, status=message.status,
                                      usage=message.usage)  # fmt: skip

    def _truncate(self, position: int) -> None:
        del self.messages[position:]
        if self.store is not None and self._saved:
            self.store.truncate(self.id, position)

    def _add_totals(self, end: TurnEnd) -> None:
        totals = self.totals
        totals.input_tokens += end.input_tokens
        totals.output_tokens += end.output_tokens
        totals.cache_creation_input_tokens += end.cache_creation_input_tokens
        totals.cache_read_input_tokens += end.cache_read_input_tokens
        totals.turns += 1
        if totals.cost is not None:
            totals.cost = None if end.cost is None else totals.cost + end.cost
        used = sum(getattr(end, key) for key in _USAGE_KEYS)
        totals.per_model[self.options.model] = totals.per_model.get(self.options.model, 0) + used


def estimate_output_tokens(content: list[dict[str, Any]]) -> int:
    """About a token per four characters of streamed text, thinking and tool input."""
    chars = 0
    for block in content:
        chars += len(block.get("text") or "") + len(block.get("thinking") or "")
        if block.get("type") == "tool_use":
            chars += len(json.dumps(block.get("input") or {}))
    return -(-chars // 4)


def _usage_update(usage: Any) -> UsageUpdate:
    return UsageUpdate(
        int(usage.input_tokens or 0), int(usage.output_tokens or 0),
        int(usage.cache_creation_input_tokens or 0), int(usage.cache_read_input_tokens or 0),
    )  # fmt: skip


def _new_id() -> str:
    return uuid.uuid4().hex[:16]


def make_title(text: str, limit: int = 80) -> str:
    """A conversation title from its first user message: whitespace collapsed, trimmed."""
    title = " ".join(text.split())
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"
