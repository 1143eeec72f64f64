"""`ChatMessage`: one turn of history, as kept in memory and in the store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .events import Status

Role = Literal["user", "assistant", "system"]


@dataclass
class ChatMessage:
    """One turn as kept in history and in the store: content blocks exactly as the API returned them.

    A reply is saved with status "interrupted" while it streams and flipped to "complete" when it
    ends, so a reply cut off by a crash is marked as not complete. A "system" message is an
    instruction in history at its position (text blocks only).
    """

    role: Role
    content: list[dict[str, Any]]
    status: Status = "complete"
    usage: dict[str, int] | None = None
    pinned: bool = False
    id: int | None = None  # the store's row id


def message_text(message: ChatMessage) -> str:
    """The text blocks of a message, joined."""
    return "".join(str(b.get("text", "")) for b in message.content if b.get("type") == "text")
