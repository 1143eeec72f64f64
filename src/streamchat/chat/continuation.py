"""Continuing an interrupted reply in place: what the prefill leaves out, and how the two join.

The API refuses an assistant prefill that ends in whitespace, so that whitespace is cut before the
request, and the continuation's text is what follows the cut prefill. `Continuation` holds the
message being continued and merges the continuation's content and usage into it, restoring the cut
whitespace where the continuation does not bring its own (`continuation_lead`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .messages import ChatMessage

Block = dict[str, Any]
# Punctuation that sticks to the word before it: a continuation starting with it needs no space.
_ATTACHES = frozenset(",.;:!?)]}%…’”»")


def continuation_lead(stripped: str, first: str) -> str:
    """What goes back between a prefill and its continuation.

    The API refuses a prefill that ends in whitespace, so that whitespace (`stripped`) is cut before
    the request. A continuation that starts with whitespace (`first`, its first text) brought its own;
    otherwise the cut whitespace goes back, unless it held no line break and the continuation starts
    with punctuation that sticks to the word before (`,` `.` `)` ...).
    """
    if not stripped or not first or first[0].isspace():
        return ""
    if "\n" not in stripped and first[0] in _ATTACHES:
        return ""
    return stripped


@dataclass
class Continuation:
    """An interrupted or failed message that a reply continues in place.

    `content` is the message as the continuation starts from it: tool calls dropped (none of them
    has a result) and the last text block without its trailing whitespace, which is `stripped`.
    The continuation's first text block extends that block; its other blocks follow.
    """

    message: ChatMessage
    content: list[Block]
    usage: dict[str, int]
    stripped: str
    lead: str | None = None  # what goes between, once the first continuation text has arrived

    @classmethod
    def of(cls, message: ChatMessage) -> Continuation | None:
        """The continuation of `message`, or None when it has no text to continue."""
        content = [dict(b) for b in message.content if b.get("type") != "tool_use"]
        while content and content[-1].get("type") == "text" and not str(content[-1].get("text", "")).strip():
            content.pop()
        if not content or content[-1].get("type") != "text":
            return None
        text = str(content[-1]["text"])
        content[-1]["text"] = text.rstrip()
        return cls(message, content, dict(message.usage or {}), text[len(text.rstrip()) :])

    @property
    def prefix(self) -> str:
        """The message's text so far (its text blocks, joined), which the continuation goes on from."""
        return "".join(str(b.get("text", "")) for b in self.content if b.get("type") == "text")

    def first_text(self, text: str) -> str:
        """The continuation's first piece of text, with the cut whitespace put back where it belongs."""
        if self.lead is None and text:
            self.lead = continuation_lead(self.stripped, text)
            return self.lead + text
        return text

    def merged(self, added: list[Block], usage: dict[str, int]) -> tuple[list[Block], dict[str, int]]:
        """The message's content and usage with the continuation's so far (`added`, `usage`)."""
        blocks = [dict(b) for b in self.content]
        rest = list(added)
        if rest and rest[0].get("type") == "text":
            first = rest.pop(0)
            blocks[-1]["text"] += (self.lead or "") + str(first.get("text", ""))
        total = {k: int(self.usage.get(k) or 0) + int(usage.get(k) or 0) for k in {*self.usage, *usage}}
        return blocks + rest, total
