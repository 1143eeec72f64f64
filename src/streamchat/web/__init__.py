"""The web chat: the page, its JSON and SSE API, runs and their event log (see DESIGN.md, "The web view").

The names below load on first use, so `streamchat`'s other commands do not pay for the server's imports.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "WebChat": "app", "compose": "app", "create_web_app": "app", "ChatDefaults": "chats",
    "Chats": "chats", "EventLog": "eventlog", "LogGone": "eventlog", "MemoryEventLog": "eventlog",
    "Run": "runs", "Runs": "runs", "Guard": "security",
}  # fmt: skip
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
