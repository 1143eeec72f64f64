"""The `streamchat` command: chat (default), ask, serve, web, history, models, export."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import __version__
from .engines import add_engine_options

COMMANDS = ("chat", "ask", "serve", "web", "history", "models", "export")


def build_serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="serve the Messages API and the web chat on a local model")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--model", dest="model_path", metavar="PATH",
                       help="a GGUF model file (default: the built-in SmolLM2-135M-Instruct)")  # fmt: skip
    serve.add_argument("--api-key", default=os.environ.get("STREAMCHAT_SERVER_API_KEY"),
                       help="require this key (x-api-key or Bearer); "
                            "env STREAMCHAT_SERVER_API_KEY")  # fmt: skip
    serve.add_argument("--max-queue", type=int, default=16, help="requests that may wait for the model")
    add_engine_options(serve)
    serve.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                       help="another host name the web chat may be reached by (behind a proxy)")  # fmt: skip
    serve.set_defaults(model_path=None)


def run_serve(args: argparse.Namespace) -> int:
    """`streamchat serve`: load the engine, print how to use it, serve until Ctrl-C."""
    from .engines import engine_from_args
    from .server import ServerSettings, create_app
    from .server.app import model_created_at
    from .server.run import listen, serve

    try:
        sock = listen(args.host, args.port)
    except OSError as exc:
        print(f"streamchat: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        engine = engine_from_args(args)
    except (OSError, ValueError) as exc:
        sock.close()
        print(f"streamchat: cannot load the engine: {exc}", file=sys.stderr)
        return 2
    settings = ServerSettings(api_key=args.api_key, max_queue=args.max_queue,
                              created_at=model_created_at(getattr(engine, "model_path", None)))  # fmt: skip
    port = sock.getsockname()[1]
    url = f"http://[{args.host}]:{port}" if ":" in args.host else f"http://{args.host}:{port}"
    key = args.api_key or "local"
    print(f"streamchat {__version__} serving {engine.model_id} ({engine.display_name}) at {url}")
    print(f"  ANTHROPIC_BASE_URL={url} ANTHROPIC_API_KEY={key} python -c \"import anthropic; "
          f"print(anthropic.Anthropic().messages.create(model='{engine.model_id}', max_tokens=64, "
          f"messages=[{{'role':'user','content':'Hello'}}]).content[0].text)\"", flush=True)  # fmt: skip
    from .web.command import local_web_app, print_page_url

    app, web = local_web_app(engine, create_app(engine, settings), args, args.host, port)
    print_page_url(args.host, port, web)
    try:
        serve(app, sock)
    finally:
        web.runs.stop_all()
        engine.close()
    return 0


# -- export: a saved conversation as Markdown or JSON (chat.export) ---------------------------------


def build_export_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = sub.add_parser("export", help="print or save a conversation as Markdown or JSON")
    export.add_argument("id", metavar="ID", help="the conversation (`streamchat history` lists them)")
    export.add_argument("--format", choices=("md", "json"),
                        help="md: a transcript to read (default); json: everything, to keep")  # fmt: skip
    export.add_argument("-o", "--output", metavar="FILE",
                        help="write FILE instead of stdout (a .json name means --format json)")  # fmt: skip
    export.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    """`streamchat export ID`: 0, or 1 with one line on stderr (unknown id, unwritable file)."""
    import json
    from pathlib import Path

    from .chat.export import export_json, export_markdown
    from .chat.store import default_store

    with default_store() as store:
        try:
            saved = store.load(args.id)
        except KeyError:
            print(f"streamchat: no saved conversation {args.id!r} (`streamchat history` lists them)",
                  file=sys.stderr)  # fmt: skip
            return 1
    to_file = args.output not in (None, "-")
    as_json = args.format == "json" or (args.format is None and to_file and args.output.endswith(".json"))
    if as_json:
        text = json.dumps(export_json(saved), ensure_ascii=False, indent=2) + "\n"
    else:
        text = export_markdown(saved)
    if not to_file:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"streamchat: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    description = "Streaming chat over the Anthropic Messages API."
    parser = argparse.ArgumentParser(prog="streamchat", description=description)
    parser.add_argument("--version", action="version", version=f"streamchat {__version__}")
    sub = parser.add_subparsers(dest="command")
    build_serve_parser(sub)
    build_export_parser(sub)
    models = sub.add_parser("models", help="list the models of the configured endpoint")
    models.add_argument("--base-url")
    add_engine_options(models)
    try:
        from .terminal.commands import add_chat_commands
    except ImportError:  # the terminal package is optional at this stage
        pass
    else:
        add_chat_commands(sub)
        from .web.command import add_web_command

        add_web_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; with no command (or only options) it starts the chat."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (args_list[0] not in COMMANDS and args_list[0] not in ("-h", "--help", "--version")):
        args_list.insert(0, "chat")
    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.command == "serve":
        return run_serve(args)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        print("streamchat: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `streamchat ask ... | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # never a traceback: one line, and a non-zero status
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"streamchat: {type(exc).__name__}{': ' + message if message else ''}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
