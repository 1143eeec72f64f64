"""streamchat: stream LLM replies token by token over the Anthropic Messages API."""

__version__ = "0.1.0"
