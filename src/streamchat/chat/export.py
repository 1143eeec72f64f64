"""A saved conversation as a Markdown transcript (to read) or as JSON (to keep, and read back).

`export_json` is round-trippable: `saved_from_json(export_json(saved))` gives back the conversation,
its settings and every message (role, content blocks exactly as stored, status, usage, pin).
"""

from __future__ import annotations

import json
import re
from typing import Any

from .messages import ChatMessage
from .store import ConversationInfo, SavedConversation

FORMAT = "streamchat.conversation"
FORMAT_VERSION = 1

_STATUS_NOTES = {
    "interrupted": "*(interrupted: the reply stopped here)*",
    "error": "*(failed: the reply broke off here)*",
}


def export_json(saved: SavedConversation) -> dict[str, Any]:
    """The conversation as a JSON-ready dict (see `saved_from_json`)."""
    info = saved.info
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "id": info.id,
        "title": info.title,
        "model": info.model,
        "system": info.system,
        "settings": dict(info.settings),
        "created_at": info.created_at,
        "updated_at": info.updated_at,
        "messages": [
            {"role": m.role, "content": m.content, "status": m.status, "usage": m.usage, "pinned": m.pinned}
            for m in saved.messages
        ],
    }


def saved_from_json(data: Any) -> SavedConversation:
    """Read back what `export_json` wrote; ValueError (one line) when it is not such a document."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"not a streamchat conversation export (no \"format\": \"{FORMAT}\")")
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"unsupported export version {data.get('version')!r} (this streamchat reads "
                         f"{FORMAT_VERSION})")  # fmt: skip
    messages: list[ChatMessage] = []
    for n, raw in enumerate(data.get("messages") or []):
        if not isinstance(raw, dict) or raw.get("role") not in ("user", "assistant", "system") or not (
            isinstance(raw.get("content"), list) and raw.get("status") in ("complete", "interrupted", "error")
        ):
            raise ValueError(f"messages[{n}]: needs role, content (a list of blocks) and status")
        usage = raw.get("usage")
        messages.append(ChatMessage(raw["role"], raw["content"], raw["status"],
                                    dict(usage) if isinstance(usage, dict) else None,
                                    bool(raw.get("pinned", False))))  # fmt: skip
    settings = data.get("settings")

    def field(name: str) -> str:
        return str(data.get(name) or "")

    info = ConversationInfo(
        id=field("id"), title=field("title"), system=field("system"), model=field("model"),
        created_at=field("created_at"), updated_at=field("updated_at"), messages=len(messages),
        settings=dict(settings) if isinstance(settings, dict) else {},
    )  # fmt: skip
    return SavedConversation(info, messages)


# -- Markdown ---------------------------------------------------------------------------------------


def fenced(text: str, language: str = "") -> str:
    """`text` in a code fence longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text.rstrip(chr(10))}\n{fence}"


def quoted(text: str) -> str:
    """`text` as a Markdown block quote (every line, blank ones included)."""
    return "\n".join(f"> {line}".rstrip() for line in text.strip("\n").split("\n"))


def _tool_result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        texts = [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]
        return "\n".join(str(t) for t in texts)
    return "" if content is None else str(content)


def _assistant_blocks(message: ChatMessage, tool_names: dict[str, str]) -> list[str]:
    parts: list[str] = []
    for block in message.content:
        kind = block.get("type")
        if kind == "text" and str(block.get("text", "")).strip():
            parts.append(str(block["text"]).strip("\n"))
        elif kind == "thinking" and str(block.get("thinking", "")).strip():
            parts.append(quoted("**Thinking**\n\n" + str(block["thinking"])))
        elif kind == "redacted_thinking":
            parts.append(quoted("**Thinking** *(redacted)*"))
        elif kind == "tool_use":
            name = str(block.get("name", "tool"))
            tool_names[str(block.get("id", ""))] = name
            data = json.dumps(block.get("input") or {}, ensure_ascii=False, indent=2)
            parts.append(f"**Tool call:** `{name}`\n\n{fenced(data, 'json')}")
    return parts


def _tool_results(message: ChatMessage, tool_names: dict[str, str]) -> list[str]:
    parts: list[str] = []
    for block in message.content:
        if block.get("type") == "tool_result":
            name = tool_names.get(str(block.get("tool_use_id", "")), "tool")
            label = "Tool error" if block.get("is_error") else "Tool result"
            parts.append(f"**{label}:** `{name}`\n\n{fenced(_tool_result_text(block))}")
        elif block.get("type") == "text" and str(block.get("text", "")).strip():
            parts.append(str(block["text"]).strip("\n"))
    return parts


def export_markdown(saved: SavedConversation) -> str:
    """A transcript to read: title, model and persona, then each turn (thinking as a quote, tool calls
    and their results as code, interrupted or failed replies marked)."""
    info = saved.info
    lines = [f"# {info.title or 'Untitled conversation'}", ""]
    when = " – ".join(stamp[:16].replace("T", " ") for stamp in (info.created_at, info.updated_at)) + " UTC"
    facts = [f"model `{info.model}`" if info.model else "", f"id `{info.id}`", when]
    if info.settings.get("thinking"):
        facts.append("thinking on")
    lines += [" · ".join(f for f in facts if f), ""]
    if info.system:
        persona = info.settings.get("persona")
        label = f"**Persona** ({persona})" if isinstance(persona, str) and persona else "**Persona**"
        lines += [quoted(f"{label}\n\n{info.system}"), ""]
    tool_names: dict[str, str] = {}
    for message in saved.messages:
        pin = " · pinned" if message.pinned else ""
        results = message.role == "user" and any(b.get("type") == "tool_result" for b in message.content)
        if results:
            parts = _tool_results(message, tool_names)
        elif message.role == "assistant":
            lines += ["---", "", f"### Assistant{pin}", ""]
            parts = _assistant_blocks(message, tool_names)
        else:
            lines += ["---", "", f"### {message.role.capitalize()}{pin}", ""]
            parts = [str(b.get("text", "")).strip("\n") for b in message.content if b.get("type") == "text"]
            parts += [f"*({b.get('type')} block)*" for b in message.content if b.get("type") != "text"]
        note = _STATUS_NOTES.get(message.status)
        for part in [*parts, *([note] if note else [])]:
            lines += [part, ""]
    return "\n".join(lines).rstrip("\n") + "\n"
