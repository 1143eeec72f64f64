"""The Anthropic-compatible server: `/v1/messages`, count_tokens, models (and later the web chat)."""

from .app import ServerSettings, create_app
from .run import ServerThread

__all__ = ["ServerSettings", "ServerThread", "create_app"]
