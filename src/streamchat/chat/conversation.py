"""`Conversation`: one chat's history, persona, window, usage and persistence.

The terminal and web views are written against exactly this interface. The pieces live beside it:
`reply` (one streamed reply), `window` (which messages a request sends), `pricing` (cost), `store`
(SQLite), `tools` (tool files), `usage` (per-turn series), `export` (Markdown and JSON).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import anthropic

from .continuation import Continuation
from .errors import describe_error
from .events import SessionTotals, TurnEnd
from .messages import ChatMessage, Role, message_text
from .reply import USAGE_KEYS, Reply, estimate_output_tokens
from .window import TokenCache, WindowPlan, exchanges, is_user_text, plan_window, to_api

__all__ = ["ChatMessage", "Confirm", "Conversation", "ConversationOptions", "Reply", "Role", "WindowReport",
           "describe_error", "estimate_output_tokens", "make_title"]  # fmt: skip

Confirm = Callable[[str, dict[str, Any]], bool]  # (tool name, input) -> run it?

DECLINED = "declined by the user"


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
    persona: str | None = None  # the name of the config file's persona `system` came from, if any
    local: bool = False  # the built-in model: costs 0
    temperature: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # extra request body fields (metadata, top_k, ...)


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

        Without `options` the saved model, persona and settings (thinking) are used; with them,
        `options.model` wins, `options.system` (and its persona name) wins when not empty, and thinking
        is on if either says so. Raises LookupError (KeyError for an unknown id).
        """
        wanted = conversation_id or store.last_conversation_id()
        if wanted is None:
            raise LookupError("there is no saved conversation")
        saved = store.load(wanted)
        info = saved.info
        persona = info.settings.get("persona")
        saved_options = ConversationOptions(
            model=info.model, system=info.system, thinking=bool(info.settings.get("thinking", False)),
            persona=persona if isinstance(persona, str) else None,
        )  # fmt: skip
        if options is None:
            options = saved_options
        else:
            keep_system = not options.system or options.system == saved_options.system
            options = replace(
                options, system=saved_options.system if keep_system else options.system,
                persona=options.persona or (saved_options.persona if keep_system else None),
                thinking=options.thinking or saved_options.thinking,
            )  # fmt: skip
        conv = cls(client, options, store, **kwargs)
        conv.id = info.id
        conv.title = info.title
        conv.messages = saved.messages
        conv._saved = True
        changed = any(info.settings.get(key) != value for key, value in conv.settings.items())
        if changed or (options.model, options.system) != (info.model, info.system):
            store.update_conversation(conv.id, model=options.model, system=options.system,
                                      settings=conv.settings)  # fmt: skip
        return conv

    @property
    def settings(self) -> dict[str, Any]:
        """What the store keeps per conversation besides model and persona text: thinking, persona name."""
        return {"thinking": self.options.thinking, "persona": self.options.persona}

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

    def add_system(self, text: str) -> ChatMessage:
        """Add a system-role message at this point of history (saved): an instruction for the turns
        after it, sent to the API where it stands (see `window` for how the window keeps it). ValueError
        for empty text."""
        if not text.strip():
            raise ValueError("a system message needs some text")
        message = ChatMessage("system", [{"type": "text", "text": text}])
        self._append(message)
        return message

    def retry(self) -> Reply:
        """Drop the last assistant reply (complete, interrupted or failed) and generate it again."""
        start = self._last_user_text()
        if start is None:
            return Reply(self, refuse="nothing to retry: there is no user message")
        self._truncate(start + 1)
        return Reply(self)

    def continue_reply(self) -> Reply:
        """Continue the last reply where it stopped (interrupted or failed), in the same message.

        Its text goes to the API as an assistant prefill (text blocks only, trailing whitespace cut, as
        the API requires; no `thinking`, which the API does not allow with a prefill), and what streams
        is appended to that message in history and the store: its final text is the partial text plus
        the continuation, the cut whitespace restored where the continuation needs it (see
        `continuation_lead`). Its usage adds both requests'. A model that does not support prefill ends
        the reply with its 400 as the error, the message unchanged. Refused (a Reply ending in an error
        TurnEnd, as `retry()`) when the last message is not an unfinished reply with some text.
        """
        refusal, continuation = self._continuation()
        if continuation is None:
            return Reply(self, refuse=f"nothing to continue: {refusal}")
        return Reply(self, continuing=continuation)

    def can_continue(self) -> bool:
        """True when `continue_reply()` has something to continue (a Continue button's state)."""
        return self._continuation()[1] is not None

    def _continuation(self) -> tuple[str, Continuation | None]:
        last = self.messages[-1] if self.messages else None
        if last is None or last.role != "assistant":
            return "the last message is not a reply", None
        if last.status == "complete":
            return "the last reply is complete", None
        continuation = Continuation.of(last)
        if continuation is None:
            return "the reply has no text yet (retry regenerates it)", None
        return "", continuation

    def edit_last(self, text: str) -> Reply:
        """Replace the last user message with `text`, drop what followed it, and stream a new reply.

        The message keeps its pin; a title made from it follows the edit. ValueError for empty text.
        """
        if not text.strip():
            raise ValueError("a message needs some text")
        start = self._last_user_text()
        if start is None:
            return Reply(self, refuse="nothing to edit: there is no user message")
        old = self.messages[start]
        titled_by_it = self.title == make_title(message_text(old)) and start == self._first_user_text()
        self._truncate(start)
        self._append(ChatMessage("user", [{"type": "text", "text": text}], pinned=old.pinned))
        if titled_by_it:
            self.rename(make_title(text))
        return Reply(self)

    def undo(self) -> bool:
        """Drop the last exchange: its user turn, reply and tool turns, and the system messages given
        just before it or since (they belong to it; see `window`). False if empty."""
        if not self.messages:
            return False
        self._truncate(exchanges(self.messages)[-1].start)
        return True

    def clear(self) -> None:
        """Start a new conversation (new id) with the same options."""
        self.id = _new_id()
        self.title = ""
        self.messages = []
        self._saved = False

    def set_system(self, text: str, persona: str | None = None) -> None:
        """Change the persona for the following requests (saved); `persona` names the config file's
        persona the text comes from (None: typed by the user)."""
        self.options.system = text
        self.options.persona = persona
        if self.store is not None and self._saved:
            self.store.update_conversation(self.id, system=text, settings={"persona": persona})

    def set_thinking(self, on: bool) -> None:
        """Request (and show) extended thinking in the following replies, or not (saved)."""
        self.options.thinking = on
        if self.store is not None and self._saved:
            self.store.update_conversation(self.id, settings={"thinking": on})

    def rename(self, title: str) -> None:
        """Change the conversation's title (saved)."""
        self.title = title
        if self.store is not None and self._saved:
            self.store.update_conversation(self.id, title=title)

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

    def _request(self, *, prefill: bool = False) -> tuple[dict[str, Any], WindowPlan]:
        """The keyword arguments of `messages.stream` for the next request, and its window; with
        `prefill`, the final assistant turn is sent as text to continue (and thinking is left out)."""
        options = self.options
        plan = self._plan()
        messages = to_api([self.messages[i] for i in plan.included])
        if prefill:
            final = messages[-1] if messages and messages[-1]["role"] == "assistant" else None
            if final is None:
                raise ValueError("nothing to continue: the window does not end with the reply")
            final["content"] = [b for b in final["content"] if b.get("type") == "text"]
        params: dict[str, Any] = {"model": options.model, "max_tokens": options.max_tokens,
                                  "messages": messages}  # fmt: skip
        if options.system:
            params["system"] = options.system
        if self.tools:
            params["tools"] = self.tools.definitions
        thinking = None if prefill else self._thinking()
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

    def _first_user_text(self) -> int | None:
        return next((i for i, m in enumerate(self.messages) if is_user_text(m)), None)

    def _append(self, message: ChatMessage) -> None:
        self.messages.append(message)
        if self.store is None:
            return
        with self.store.transaction():
            if not self._saved:
                self.store.create_conversation(self.id, title=self.title, system=self.options.system,
                                               model=self.options.model, settings=self.settings)  # fmt: skip
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
        used = sum(getattr(end, key) for key in USAGE_KEYS)
        totals.per_model[self.options.model] = totals.per_model.get(self.options.model, 0) + used


def _new_id() -> str:
    return uuid.uuid4().hex[:16]


def make_title(text: str, limit: int = 80) -> str:
    """A conversation title from its first user message: whitespace collapsed, trimmed."""
    title = " ".join(text.split())
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"
