"""The conversation model: history, persona, context window, usage and cost, tools, SQLite store."""
