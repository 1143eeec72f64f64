"""Store v2 features the web chat uses, reached through one seam until the `chat` branch lands.

The agreed interface (store schema v2: per-conversation `settings`, FTS5 `search`, paging) is used
when the store has it; until then settings live in memory and search is a LIKE over titles.
"""

from __future__ import annotations

import inspect
from typing import Any

_MEMORY_SETTINGS: dict[str, dict[str, Any]] = {}


def _has_settings(store: Any) -> bool:
    return "settings" in inspect.signature(store.update_conversation).parameters


def settings_of(info: Any) -> dict[str, Any]:
    """A conversation's settings (thinking, persona)."""
    settings = getattr(info, "settings", None)
    if isinstance(settings, dict):
        return settings
    return dict(_MEMORY_SETTINGS.get(info.id, {}))


def update_conversation(store: Any, conversation_id: str, *, title: str | None = None,
                        system: str | None = None, model: str | None = None,
                        settings: dict[str, Any] | None = None) -> None:  # fmt: skip
    """`Store.update_conversation` with settings."""
    if settings is not None and _has_settings(store):
        store.update_conversation(conversation_id, title=title, system=system, model=model, settings=settings)
        return
    if settings is not None:
        _MEMORY_SETTINGS[conversation_id] = dict(settings)
    store.update_conversation(conversation_id, title=title, system=system, model=model)


def list_conversations(store: Any, limit: int, offset: int) -> list[Any]:
    """Newest first, one page."""
    if "offset" in inspect.signature(store.list_conversations).parameters:
        return list(store.list_conversations(limit=limit, offset=offset))
    return list(store.list_conversations(limit=limit + offset))[offset:]


def search(store: Any, query: str, limit: int) -> list[dict[str, Any]]:
    """Conversations whose title or messages match `query`: id, title, snippet, updated_at."""
    if hasattr(store, "search"):
        return [{"id": h.conversation_id, "title": h.title, "snippet": h.snippet, "updated_at": h.updated_at}
                for h in store.search(query, limit=limit)]  # fmt: skip
    needle = query.strip().lower()
    rows = store.list_conversations(limit=1000)
    return [{"id": r.id, "title": r.title, "snippet": "", "updated_at": r.updated_at}
            for r in rows if needle in r.title.lower()][:limit]  # fmt: skip


def continue_reply(conv: Any) -> Any:
    """`Conversation.continue_reply()`: the interrupted or failed last reply goes on."""
    if hasattr(conv, "continue_reply"):
        return conv.continue_reply()
    from ..chat.conversation import Reply

    return Reply(conv, refuse="continuing a reply needs the store and chat update (branch chat)")


def edit_last(conv: Any, text: str) -> Any:
    """`Conversation.edit_last(text)`: the last user message replaced, a new reply streamed."""
    if hasattr(conv, "edit_last"):
        return conv.edit_last(text)
    if not text.strip():
        raise ValueError("a message needs some text")
    conv.undo()
    return conv.send(text)


def export(saved: Any, fmt: str) -> str | dict[str, Any]:
    """A conversation as Markdown text or a JSON-ready dict."""
    try:
        from ..chat import export as chat_export  # type: ignore[attr-defined]
    except ImportError:
        chat_export = None
    if chat_export is not None:
        return chat_export.export_markdown(saved) if fmt == "md" else chat_export.export_json(saved)  # type: ignore[no-any-return]
    info = saved.info
    if fmt == "json":
        return {
            "id": info.id, "title": info.title, "model": info.model, "system": info.system,
            "settings": settings_of(info),
            "messages": [{"role": m.role, "content": m.content, "status": m.status, "usage": m.usage,
                          "pinned": m.pinned} for m in saved.messages],
        }  # fmt: skip
    lines = [f"# {info.title or 'Untitled'}", ""]
    if info.system:
        lines += [f"> System: {info.system}", ""]
    for m in saved.messages:
        text = "".join(str(b.get("text") or "") for b in m.content if b.get("type") == "text")
        if text:
            lines += [f"## {m.role.capitalize()}", "", text, ""]
    return "\n".join(lines)
