"""Opening a conversation for the chat or `ask`: store, resume, options from settings."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..chat.conversation import Confirm, Conversation, ConversationOptions
from ..endpoint import ChatSettings, Endpoint, SetupError, open_endpoint, resolve_settings


def open_store() -> Any:
    """The conversation store in data_dir() (one SQLite file shared with the web chat)."""
    from ..chat.store import default_store

    return default_store()


def conversation_options(chat: ChatSettings, endpoint: Endpoint) -> ConversationOptions:
    """The conversation's knobs from the merged settings and the endpoint's model."""
    return ConversationOptions(
        model=endpoint.model,
        system=chat.system,
        max_tokens=chat.max_tokens,
        max_turns=chat.max_turns,
        max_context_tokens=chat.max_context_tokens,
        thinking=chat.thinking,
        persona=chat.persona,
        temperature=chat.temperature,
        local=endpoint.local,
    )


def open_conversation(args: argparse.Namespace, chat: ChatSettings, endpoint: Endpoint, store: Any | None,
                      confirm: Confirm | None, tools: Any | None = None) -> Conversation:  # fmt: skip
    """A new conversation, or the one `-c` / `--conversation ID` names, with the flags applied."""
    options = conversation_options(chat, endpoint)
    wanted = getattr(args, "conversation", None)
    if store is None or not (getattr(args, "continue_", False) or wanted):
        return Conversation(endpoint.client, options, store, tools=tools, confirm=confirm)
    if not wanted and store.last_conversation_id() is None:
        # -c with nothing saved yet: there is nothing to continue, so start the first conversation.
        return Conversation(endpoint.client, options, store, tools=tools, confirm=confirm)
    try:
        conv = Conversation.resume(endpoint.client, store, wanted, None, tools=tools, confirm=confirm)
    except LookupError:  # KeyError included
        raise SetupError(f"no saved conversation {wanted!r} (`streamchat history` lists them)") from None
    # Saved model/system stay unless a flag says otherwise; the local server serves one model only.
    if conv.options.model != endpoint.model and (endpoint.local or getattr(args, "model", None)):
        conv.set_model(endpoint.model)
    if getattr(args, "system", None) is not None or getattr(args, "persona", None):
        conv.set_system(chat.system, chat.persona)
    conv.options.max_tokens = chat.max_tokens
    conv.options.max_turns = chat.max_turns if chat.max_turns is not None else conv.options.max_turns
    if chat.max_context_tokens is not None:
        conv.options.max_context_tokens = chat.max_context_tokens
    if chat.thinking:  # --thinking turns it on for the conversation; without it, the saved setting holds
        conv.set_thinking(True)
    conv.options.local = endpoint.local
    return conv


def error(message: str) -> None:
    """One line on stderr, prefixed with the program's name."""
    print(f"streamchat: {message}", file=sys.stderr, flush=True)


def open_chat(args: argparse.Namespace) -> tuple[ChatSettings, Endpoint] | None:
    """The merged settings and the endpoint for a command; None once the reason is printed."""
    try:
        chat = resolve_settings(args)
        return chat, open_endpoint(args, chat)
    except SetupError as exc:
        error(str(exc))
        return None
