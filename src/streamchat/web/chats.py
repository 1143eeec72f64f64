"""The conversations the web chat shows: opened from the store, drawn as articles, summed as usage.

`Chats` binds the SDK client, the store and the defaults from the command line. Every run opens
its conversation fresh from the store (the terminal may have written to it since), and the page's
transcript is drawn from the store with the same HTML functions a live reply uses.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

import anthropic

from ..chat import pricing
from ..chat.conversation import ChatMessage, Confirm, Conversation, ConversationOptions
from ..chat.usage import conversation_totals, usage_series
from ..chat.window import is_user_text
from .protocol import content_html, user_html


@dataclass
class ChatDefaults:
    """What a new conversation starts with, and the window limits every request uses."""

    model: str
    system: str = ""
    persona: str | None = None
    thinking: bool = False
    max_tokens: int = 1024
    max_turns: int | None = None
    max_context_tokens: int | None = None
    temperature: float | None = None
    local: bool = False  # the built-in model: one model, no cost
    personas: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Turn:
    """One article of the transcript: a user message, or a reply (its assistant and tool-result
    messages, from `index` through `last`)."""

    role: str
    index: int
    last: int
    messages: list[ChatMessage]

    @property
    def status(self) -> str:
        assistant = [m for m in self.messages if m.role == "assistant"]
        return assistant[-1].status if assistant else self.messages[-1].status

    @property
    def usage(self) -> dict[str, int]:
        total = dict.fromkeys(("input_tokens", "output_tokens", "cache_creation_input_tokens",
                               "cache_read_input_tokens"), 0)  # fmt: skip
        for message in self.messages:
            for key, value in (message.usage or {}).items():
                if key in total:
                    total[key] += int(value or 0)
        return total


def group_turns(messages: list[ChatMessage]) -> list[Turn]:
    """Cut history into articles: each user text message, and each reply with its tool rounds."""
    turns: list[Turn] = []
    for index, message in enumerate(messages):
        kind = str(message.role)  # "system" too, in stores that keep system messages
        starts_reply = kind == "assistant" and (not turns or turns[-1].role != "assistant")
        if is_user_text(message) or kind == "system" or starts_reply or not turns:
            user = is_user_text(message)
            role = kind if kind in ("system", "assistant") else "user" if user else "assistant"
            turns.append(Turn(role, index, index, [message]))
        else:
            last = turns[-1]
            turns[-1] = Turn(last.role, last.index, index, [*last.messages, message])
    return turns


def message_text(message: ChatMessage) -> str:
    """The text blocks of a message, joined (what Copy copies)."""
    return "".join(str(b.get("text") or "") for b in message.content if b.get("type") == "text")


def _tool_results(messages: list[ChatMessage]) -> dict[str, tuple[str, bool]]:
    results: dict[str, tuple[str, bool]] = {}
    for message in messages:
        for block in message.content:
            if block.get("type") == "tool_result":
                content = block.get("content")
                if isinstance(content, list):
                    content = "".join(str(c.get("text") or "") for c in content if isinstance(c, dict))
                results[str(block.get("tool_use_id"))] = (str(content or ""), bool(block.get("is_error")))
    return results


class Chats:
    """Opens conversations for runs and describes them for the page."""

    def __init__(self, store: Any, defaults: ChatDefaults, client: anthropic.Anthropic | None = None,
                 *, tools: Any | None = None) -> None:  # fmt: skip
        self.store = store
        self.defaults = defaults
        self.client = client
        self.tools = tools
        self._models: list[dict[str, Any]] | None = None
        self._models_lock = threading.Lock()

    def bind(self, client: anthropic.Anthropic) -> None:
        """Use `client` from now on (the local server's own URL is known once it listens)."""
        self.client = client

    def _client(self) -> anthropic.Anthropic:
        if self.client is None:
            raise RuntimeError("the web chat has no endpoint yet")
        return self.client

    # -- conversations ------------------------------------------------------------------------------

    def options_for(self, model: str, system: str, settings: dict[str, Any]) -> ConversationOptions:
        """A conversation's knobs: its own model, persona and thinking; the server's limits."""
        d = self.defaults
        persona = settings.get("persona")
        return ConversationOptions(
            model=d.model if d.local or not model else model,
            system=system,
            persona=persona if isinstance(persona, str) and persona in d.personas else None,
            max_tokens=d.max_tokens,
            max_turns=d.max_turns,
            max_context_tokens=d.max_context_tokens,
            thinking=bool(settings.get("thinking", d.thinking)),
            temperature=d.temperature,
            local=d.local,
        )

    def open(self, conversation_id: str, confirm: Confirm | None = None) -> Conversation:
        """A saved conversation, ready for a reply (KeyError when there is none)."""
        info = self.store.get_conversation(conversation_id)
        if info is None:
            raise KeyError(conversation_id)
        options = self.options_for(info.model, info.system, info.settings)
        conv = Conversation.resume(self._client(), self.store, conversation_id, replace(options),
                                   tools=self.tools, confirm=confirm)  # fmt: skip
        if conv.options.model != options.model:  # the local server serves its one model
            conv.set_model(options.model)
        return conv

    def new(self, settings: dict[str, Any], confirm: Confirm | None = None) -> Conversation:
        """A new conversation (saved, with its settings, when its first message is sent)."""
        d = self.defaults
        persona = settings.get("persona") if settings.get("persona") in d.personas else None
        system = settings.get("system")
        if not isinstance(system, str):
            system = d.personas[persona] if persona else d.system
        model = settings.get("model") if isinstance(settings.get("model"), str) else d.model
        thinking = bool(settings.get("thinking", d.thinking))
        options = self.options_for(str(model), system, {"thinking": thinking, "persona": persona})
        return Conversation(self._client(), options, self.store, tools=self.tools, confirm=confirm)

    def update(self, conversation_id: str, changes: dict[str, Any]) -> None:
        """Rename, or change persona, model, thinking (KeyError when there is no such conversation)."""
        info = self.store.get_conversation(conversation_id)
        if info is None:
            raise KeyError(conversation_id)
        patch: dict[str, Any] = {}  # merged into the saved settings
        if "thinking" in changes:
            patch["thinking"] = bool(changes["thinking"])
        if "persona" in changes:
            persona = changes["persona"]
            patch["persona"] = persona if persona in self.defaults.personas else None
            if persona in self.defaults.personas and "system" not in changes:
                changes = {**changes, "system": self.defaults.personas[persona]}
        self.store.update_conversation(
            conversation_id, title=changes.get("title"), system=changes.get("system"),
            model=changes.get("model"), settings=patch or None,
        )  # fmt: skip

    # -- what the page shows ------------------------------------------------------------------------

    def describe(self, info: Any) -> dict[str, Any]:
        """A conversation's row as the page lists it."""
        settings = info.settings
        return {
            "id": info.id, "title": info.title or "Untitled", "model": info.model, "system": info.system,
            "updated_at": info.updated_at, "created_at": info.created_at, "messages": info.messages,
            "thinking": bool(settings.get("thinking", False)), "persona": settings.get("persona"),
        }  # fmt: skip

    def transcript(self, conversation_id: str, *, before: int | None = None) -> dict[str, Any]:
        """The conversation for the page: its articles (up to message `before`, where a live run
        starts), the window, usage per turn and in total (KeyError when there is none)."""
        saved = self.store.load(conversation_id)
        messages: list[ChatMessage] = saved.messages
        shown = messages if before is None else messages[:before]
        window = self._window(conversation_id, messages)
        included = set(window["included"]) if window["included"] is not None else None
        articles = []
        turns = group_turns(shown)
        last_user = max((t.index for t in turns if t.role == "user"), default=None)
        for turn in turns:
            if turn.role == "user":
                text = message_text(turn.messages[0])
                html = user_html(text)
            else:
                texts = (message_text(m) for m in turn.messages if m.role == "assistant")
                text = "\n\n".join(t for t in texts if t)
                parts = [b for m in turn.messages if m.role == "assistant" for b in m.content]
                html = content_html(parts, _tool_results(turn.messages))
            usage = turn.usage if turn.role == "assistant" else None
            cost = pricing.cost(saved.info.model, usage, local=self.defaults.local) if usage else None
            articles.append({
                "role": turn.role, "index": turn.index, "last": turn.last, "status": turn.status,
                "html": html, "text": text, "pinned": any(m.pinned for m in turn.messages),
                "in_window": included is None or any(i in included for i in range(turn.index, turn.last + 1)),
                "usage": usage, "cost": cost,
                "last_user": turn.index == last_user,
            })  # fmt: skip
        return {
            "conversation": self.describe(saved.info),
            "articles": articles,
            "window": {k: v for k, v in window.items() if k != "included"},
            "usage": self.usage_summary(saved.info.model, messages),
        }

    def _window(self, conversation_id: str, messages: list[ChatMessage]) -> dict[str, Any]:
        budget = self.defaults.max_context_tokens
        base: dict[str, Any] = {"included": None, "dropped": [], "tokens": None, "budget": budget,
                "max_turns": self.defaults.max_turns}  # fmt: skip
        if not messages or (budget is None and self.defaults.max_turns is None):
            return base
        try:
            report = self.open(conversation_id).window()
        except Exception:  # the window is a display detail: a failing count must not hide the chat
            return base
        return {**base, "included": report.included, "dropped": report.dropped, "tokens": report.tokens}

    def usage_summary(self, model: str, messages: list[ChatMessage]) -> dict[str, Any]:
        """Input and output tokens and cost per reply (the chart), totals, and the context used."""
        local = self.defaults.local
        series = [{"index": t.index, "input_tokens": t.input_tokens, "output_tokens": t.output_tokens,
                   "cost": t.cost} for t in usage_series(messages, model, local=local)]  # fmt: skip
        totals = conversation_totals(messages, model, local=local)
        context: int | None = None
        for message in reversed(messages):  # the last request's input is what the window held
            if message.role == "assistant" and message.usage and message.usage.get("input_tokens"):
                context = int(message.usage["input_tokens"])
                break
        return {
            "series": series, "context_tokens": context, "budget": self.defaults.max_context_tokens,
            "totals": {"input_tokens": totals.input_tokens, "output_tokens": totals.output_tokens,
                       "cache_creation_input_tokens": totals.cache_creation_input_tokens,
                       "cache_read_input_tokens": totals.cache_read_input_tokens, "cost": totals.cost,
                       "turns": totals.turns},
        }  # fmt: skip

    def models(self) -> list[dict[str, Any]]:
        """The endpoint's models (`/v1/models`), asked once; the configured model when it cannot say."""
        with self._models_lock:
            if self._models is None:
                found: list[dict[str, Any]] = []
                try:
                    for model in self._client().models.list(limit=100):
                        name = getattr(model, "display_name", "") or model.id
                        found.append({"id": model.id, "display_name": name})
                except anthropic.APIError:
                    found = []
                if not any(m["id"] == self.defaults.model for m in found):
                    found.insert(0, {"id": self.defaults.model, "display_name": self.defaults.model})
                self._models = found
            return list(self._models)

