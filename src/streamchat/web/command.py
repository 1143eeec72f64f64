"""`streamchat web`: the web chat and (on the built-in model) the `/v1` API in one server.

The page talks to its endpoint exactly as the terminal chat does, through the official SDK: to
Claude when `ANTHROPIC_API_KEY` is set (or `--base-url`), else to this same process's own `/v1`
on the local engine. `streamchat serve` uses `local_web_app` to serve the page beside its API.
"""

from __future__ import annotations

import argparse
import os
import sys
import webbrowser
from typing import TYPE_CHECKING, Any

from ..endpoint import ChatSettings, SetupError, add_conversation_options, load_toolset, resolve_settings

if TYPE_CHECKING:  # the server's modules load only when a server starts, not for every command
    from .app import WebChat
    from .chats import ChatDefaults
    from .security import Guard

_WILDCARDS = {"", "0.0.0.0", "::"}


def add_web_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `streamchat web` (the chat's options, plus where to listen)."""
    web = sub.add_parser("web", help="the web chat in your browser (and the /v1 API on the built-in model)")
    add_conversation_options(web)
    add_listen_options(web)
    web.add_argument("--open", action="store_true", help="open the page in the default browser")
    web.add_argument("--max-queue", type=int, default=16, help="requests that may wait for the model")
    web.set_defaults(handler=run_web)


def add_listen_options(parser: argparse.ArgumentParser) -> None:
    """--host, --port, --api-key (for /v1) and --allowed-host."""
    if not any("--host" in a.option_strings for a in parser._actions):
        parser.add_argument("--host", default="127.0.0.1",
                            help="where to listen (not loopback: the printed token is needed)")  # fmt: skip
        parser.add_argument("--port", type=int, default=8080)
        parser.add_argument("--api-key", default=os.environ.get("STREAMCHAT_SERVER_API_KEY"),
                            help="require this key on /v1 (env STREAMCHAT_SERVER_API_KEY)")  # fmt: skip
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="another host name the page may be reached by (behind a proxy)")  # fmt: skip


def self_url(host: str, port: int) -> str:
    """The URL this process reaches its own server at."""
    if host in _WILDCARDS:
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def page_url(host: str, port: int, guard: Guard, conversation: str | None = None) -> str:
    """The page's URL as printed: with the access token when one is needed."""
    shown = "127.0.0.1" if host in _WILDCARDS else host
    base = f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"
    path = f"/c/{conversation}" if conversation else "/"
    return base + path + (f"?token={guard.token}" if guard.token else "")


def chat_defaults(chat: ChatSettings, args: argparse.Namespace, model: str, local: bool) -> ChatDefaults:
    """What new conversations start with, from the merged settings."""
    from .chats import ChatDefaults

    return ChatDefaults(
        model=model, system=chat.system, persona=getattr(args, "persona", None), thinking=chat.thinking,
        max_tokens=chat.max_tokens, max_turns=chat.max_turns, max_context_tokens=chat.max_context_tokens,
        temperature=chat.temperature, local=local, personas=dict(chat.settings.personas),
    )  # fmt: skip


def local_web_app(engine: Any, api_app: Any, args: argparse.Namespace, host: str, port: int,
                  chat: ChatSettings | None = None) -> tuple[Any, WebChat]:  # fmt: skip
    """The web chat on the local engine beside its `/v1` app; its SDK client calls this same server."""
    import anthropic

    from ..chat.store import default_store
    from .app import WebChat, api_counters, compose
    from .chats import Chats
    from .security import Guard

    chat = chat if chat is not None else resolve_settings(args)
    key = getattr(args, "api_key", None) or "local"  # the local server's own --api-key, never a real one
    client = anthropic.Anthropic(api_key=key, base_url=self_url(host, port))
    tools = load_toolset(chat.tools_file)
    chats = Chats(default_store(), chat_defaults(chat, args, engine.model_id, True), client, tools=tools)
    web = WebChat(chats, Guard.for_bind(host, getattr(args, "allowed_host", []) or []),
                  counters=api_counters(api_app))  # fmt: skip
    return compose(web, api_app), web


def run_web(args: argparse.Namespace) -> int:
    """`streamchat web`: start the server, print the page's URL, serve until Ctrl-C."""
    from .. import __version__
    from ..chat.store import default_store
    from ..endpoint import open_endpoint
    from ..engines import engine_from_args
    from ..server import ServerSettings, create_app
    from ..server.app import model_created_at
    from ..server.run import listen, serve
    from .app import WebChat, compose
    from .chats import Chats
    from .security import Guard

    try:
        chat = resolve_settings(args)
    except SetupError as exc:
        print(f"streamchat: {exc}", file=sys.stderr)
        return 2
    try:
        sock = listen(args.host, args.port)
    except OSError as exc:
        print(f"streamchat: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    port = sock.getsockname()[1]
    engine = None
    try:
        if chat.local:
            engine = engine_from_args(args)
            created = model_created_at(getattr(engine, "model_path", None))
            settings = ServerSettings(api_key=args.api_key, max_queue=args.max_queue, created_at=created)
            app, web = local_web_app(engine, create_app(engine, settings), args, args.host, port, chat)
            where = f"{engine.model_id} ({engine.display_name}), /v1 at {self_url(args.host, port)}"
        else:
            endpoint = open_endpoint(args, chat)
            chats = Chats(default_store(), chat_defaults(chat, args, endpoint.model, False), endpoint.client,
                          tools=load_toolset(chat.tools_file))  # fmt: skip
            web = WebChat(chats, Guard.for_bind(args.host, args.allowed_host or []))
            app = compose(web, None)
            where = endpoint.description
    except (OSError, ValueError, ImportError, SetupError) as exc:
        sock.close()
        print(f"streamchat: cannot start: {exc}", file=sys.stderr)
        return 2
    opened = getattr(args, "conversation", None)
    if getattr(args, "continue_", False) and not opened:  # -c: open the last conversation
        opened = web.chats.store.last_conversation_id()
    url = page_url(args.host, port, web.guard, opened)
    print(f"streamchat {__version__} web chat on {where}")
    print(f"  open {url}", flush=True)
    if web.guard.token:
        print("  (the token in this URL is the only way in: it is printed once, keep it private)", flush=True)
    if args.open:
        webbrowser.open(url)
    try:
        serve(app, sock)
    finally:
        web.runs.stop_all()
        if engine is not None:
            engine.close()
    return 0


def print_page_url(host: str, port: int, web: WebChat) -> None:
    """`streamchat serve`'s line about the page."""
    from .security import is_loopback

    print(f"  web chat: {page_url(host, port, web.guard)}", flush=True)
    if web.guard.token and not is_loopback(host):
        print("  (the token in this URL is the only way into the web chat: keep it private)", flush=True)
