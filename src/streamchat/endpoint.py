"""What every chat view starts from: the chat's flags, the settings they resolve to, the tools file,
and the endpoint replies come from (Claude, a given base URL, or the built-in model on a local server).

The terminal (`chat`, `ask`) and the web chat (`streamchat web`) both open their chat here, so neither
view imports the other. This is edge code, like `cli`: it reads an argparse `Namespace` and hands the
views typed objects (`ChatSettings`, `Endpoint`). Settings resolve in three layers: built-in defaults,
then `config.toml` (and env vars, via `config.load_settings`), then command-line flags.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .config import Settings, load_settings
from .engines import add_engine_options

if TYPE_CHECKING:  # the SDK takes ~1 s to import: `streamchat --help` and argument errors never need it
    import anthropic

DEFAULT_CLAUDE_MODEL = "claude-sonnet-5-5"


# the terminal chat and `ask` hold one conversation: two slots (its reply, and one more client of its
# local server) start in a quarter of the time and memory of 8 (docs/benchmarks.md, memory)
CHAT_PARALLEL = 2


class SetupError(Exception):
    """The chat cannot start (bad flag, unknown persona, engine that will not load): one line."""


def add_conversation_options(parser: argparse.ArgumentParser, *, parallel: int | None = None) -> None:
    """The chat's flags, shared by `chat`, `ask` and `web` (flags override the config file, which
    overrides defaults)."""
    parser.add_argument("--base-url", metavar="URL", help="an Anthropic-compatible endpoint")
    parser.add_argument("--model", help="the model (default: config, else the endpoint's)")
    parser.add_argument("-s", "--system", help="the system prompt (persona text)")
    parser.add_argument("--persona", metavar="NAME", help="a persona from the config file")
    parser.add_argument("--max-turns", type=int, metavar="N", help="keep at most N turns in the window")
    parser.add_argument("--max-context-tokens", type=int, metavar="N", help="context window budget in tokens")
    parser.add_argument("--max-tokens", type=int, metavar="N", help="max output tokens per reply")
    parser.add_argument("--tools", metavar="FILE", help="tools the model may call (each call is confirmed)")
    parser.add_argument("--no-markdown", action="store_true", help="print raw text, no Markdown rendering")
    parser.add_argument("--thinking", action="store_true", help="request extended thinking and show it")
    parser.add_argument("--temperature", type=float, metavar="T", help="sampling temperature, 0 to 1")
    parser.add_argument("-c", "--continue", dest="continue_", action="store_true",
                        help="continue the last conversation")  # fmt: skip
    parser.add_argument("--conversation", metavar="ID", help="continue the conversation ID")
    add_engine_options(parser, parallel=parallel)


@dataclass
class ChatSettings:
    """Everything a chat or `ask` needs, after defaults, config and flags are merged."""

    model: str | None
    system: str
    max_tokens: int
    max_turns: int | None
    max_context_tokens: int | None
    thinking: bool
    temperature: float | None
    markdown: bool
    tools_file: str | None
    base_url: str | None
    api_key: str | None
    local: bool
    settings: Settings = field(default_factory=Settings)
    persona: str | None = None  # the config file's persona `system` came from


def resolve_settings(args: argparse.Namespace, settings: Settings | None = None) -> ChatSettings:
    """Merge flags over the config file over defaults; raise SetupError on an unknown persona."""
    base = settings if settings is not None else load_settings()
    system = base.system
    persona = getattr(args, "persona", None)
    if persona:
        if persona not in base.personas:
            known = ", ".join(sorted(base.personas)) or "none configured"
            raise SetupError(f"unknown persona {persona!r} (personas: {known})")
        system = base.personas[persona]
    if getattr(args, "system", None) is not None:
        system = args.system
        persona = None
    base_url = getattr(args, "base_url", None) or base.base_url
    engine = getattr(args, "engine", "llama")
    # An explicit --engine means the built-in server even when a key is configured (tests, demos).
    local = not getattr(args, "base_url", None) and (engine != "llama" or base.local)
    return ChatSettings(
        model=getattr(args, "model", None) or base.model,
        system=system,
        max_tokens=getattr(args, "max_tokens", None) or base.max_tokens,
        max_turns=_pick(getattr(args, "max_turns", None), base.max_turns),
        max_context_tokens=_pick(getattr(args, "max_context_tokens", None), base.max_context_tokens),
        thinking=bool(getattr(args, "thinking", False)),
        temperature=_pick_float(getattr(args, "temperature", None), base.temperature),
        markdown=not getattr(args, "no_markdown", False),
        tools_file=getattr(args, "tools", None),
        base_url=None if local else base_url,
        api_key=base.api_key,
        local=local,
        settings=base,
        persona=persona or None,
    )


def _pick(flag: int | None, config: int | None) -> int | None:
    return flag if flag is not None else config


def _pick_float(flag: float | None, config: float | None) -> float | None:
    return flag if flag is not None else config


@dataclass
class Endpoint:
    """An SDK client and the model it talks to; owns the local server thread, if any."""

    client: anthropic.Anthropic
    base_url: str
    model: str
    local: bool
    description: str  # for the banner: which model, where
    server: Any | None = None
    engine: Any | None = None

    def close(self) -> None:
        """Stop the local server (if any) and free the model."""
        # Closing the client's pooled keep-alive connections first lets the server stop at once.
        self.client.close()
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.engine is not None:
            self.engine.close()
            self.engine = None


def open_endpoint(args: argparse.Namespace, chat: ChatSettings) -> Endpoint:
    """Connect to Claude / the given base URL, or start the built-in model's server on 127.0.0.1."""
    if chat.local:
        return _local_endpoint(args, chat)
    import anthropic

    base_url = chat.base_url or "https://api.anthropic.com"
    client = anthropic.Anthropic(api_key=chat.api_key or "none", base_url=base_url)
    model = chat.model or (_first_model(client) if chat.base_url else None) or DEFAULT_CLAUDE_MODEL
    where = f"Claude API ({base_url})" if chat.base_url is None else base_url
    return Endpoint(client, base_url, model, False, f"{model} · {where}")


def _first_model(client: anthropic.Anthropic) -> str | None:
    """The first model a custom endpoint lists (None when it does not answer)."""
    import anthropic

    try:
        page = client.models.list(limit=1)
        return page.data[0].id if page.data else None
    except anthropic.APIError:
        return None


def _local_endpoint(args: argparse.Namespace, chat: ChatSettings) -> Endpoint:
    import anthropic

    from .engines import engine_from_args
    from .server import ServerThread, create_app

    try:
        engine = engine_from_args(args)
    except (OSError, ValueError, ImportError) as exc:
        raise SetupError(f"cannot load the engine: {exc}") from None
    server = ServerThread(create_app(engine))
    try:
        base_url = server.start()
    except RuntimeError as exc:
        engine.close()
        raise SetupError(str(exc)) from None
    # Local server: no key needed; the SDK must not pick up a real key or base URL from the env.
    client = anthropic.Anthropic(api_key="local", base_url=base_url)
    model = engine.model_id
    description = f"{model} — {engine.display_name} · local server {base_url}"
    return Endpoint(client, base_url, model, True, description, server=server, engine=engine)


def load_toolset(path: str | None) -> Any | None:
    """`--tools FILE` -> a ToolSet (None without the flag); SetupError when the file is unusable."""
    if not path:
        return None
    from .chat.tools import load_tools

    try:
        return load_tools(path)
    except Exception as exc:  # a user's tools file can raise anything while it is imported
        raise SetupError(f"cannot load tools from {path}: {type(exc).__name__}: {exc}") from None
