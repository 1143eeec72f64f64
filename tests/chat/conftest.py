"""Fixtures of the chat tests (the parts themselves live in chat_harness)."""

from chat_harness import harness, store

__all__ = ["harness", "store"]
