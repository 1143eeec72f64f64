"""The web chat: the page, its JSON and SSE API, runs and their event log (see DESIGN.md, "The web view")."""

from .app import WebChat, compose, create_web_app
from .chats import ChatDefaults, Chats
from .eventlog import EventLog, LogGone, MemoryEventLog
from .runs import Run, Runs
from .security import Guard

__all__ = [
    "ChatDefaults", "Chats", "EventLog", "Guard", "LogGone", "MemoryEventLog", "Run", "Runs", "WebChat",
    "compose", "create_web_app",
]
