"""The terminal's subcommands: `chat` (the default), `ask`, `history`, `models`."""

from __future__ import annotations

import argparse
import shutil
import sys
from datetime import datetime
from typing import Any

from ..endpoint import CHAT_PARALLEL, add_conversation_options

# Building the parser imports nothing heavy (anthropic, the chat, rich): each command imports what it runs.


def add_chat_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register chat, ask and history (and give `models` its handler)."""
    chat = sub.add_parser("chat", help="the terminal chat (the default command)")
    add_conversation_options(chat, parallel=CHAT_PARALLEL)
    chat.set_defaults(handler=run_chat)

    ask = sub.add_parser("ask", help="ask one question and stream the reply")
    ask.add_argument("question", nargs="?", help='the question ("-" or none: read stdin)')
    add_conversation_options(ask, parallel=CHAT_PARALLEL)
    ask.add_argument("--json", action="store_true", help="print the final message as JSON")
    ask.add_argument("--events", action="store_true",
                     help="print every raw stream event as one JSON line (not saved)")  # fmt: skip
    ask.add_argument("--no-save", action="store_true", help="do not save the exchange in the history")
    ask.set_defaults(handler=_run_ask)

    history = sub.add_parser("history", help="list saved conversations")
    history.add_argument("-n", "--limit", type=int, default=50, help="how many (newest first)")
    history.set_defaults(handler=run_history)

    models = sub.choices.get("models")
    if models is not None:
        models.set_defaults(handler=run_models)


def run_chat(args: argparse.Namespace) -> int:
    """`streamchat` / `streamchat chat`: the REPL."""
    from .repl import run_repl

    return run_repl(args)


def _run_ask(args: argparse.Namespace) -> int:
    from .ask import run_ask

    return run_ask(args)


def conversation_rows(store: Any, limit: int = 50) -> list[dict[str, Any]]:
    """Saved conversations as dicts: id, title, model, updated, messages (newest first)."""
    rows = store.list_conversations(limit=limit) if limit else store.list_conversations()
    return [_row(r) for r in rows]


def _row(row: Any) -> dict[str, Any]:
    def get(*names: str) -> Any:
        for name in names:
            value = row.get(name) if isinstance(row, dict) else getattr(row, name, None)
            if value is not None:
                return value
        return None

    updated = get("updated_at", "updated")
    if isinstance(updated, (int, float)):
        updated = datetime.fromtimestamp(updated).strftime("%Y-%m-%d %H:%M")
    elif isinstance(updated, datetime):
        updated = updated.strftime("%Y-%m-%d %H:%M")
    elif isinstance(updated, str):
        updated = updated.replace("T", " ")[:16]
    return {
        "id": str(get("id") or ""),
        "title": str(get("title") or "(untitled)"),
        "model": str(get("model") or ""),
        "updated": str(updated or ""),
        "messages": int(get("message_count", "messages", "n_messages") or 0),
    }


def format_rows(rows: list[dict[str, Any]], width: int = 100) -> list[str]:
    """Aligned lines: id  updated  messages  model  title."""
    if not rows:
        return ["no saved conversations"]
    id_w = max(len(r["id"]) for r in rows)
    model_w = min(max(len(r["model"]) for r in rows), 28)
    lines = []
    for r in rows:
        model = r["model"][:model_w]
        head = f"{r['id']:<{id_w}}  {r['updated']:<16}  {r['messages']:>4} msg  {model:<{model_w}}  "
        room = max(width - len(head), 10)
        title = r["title"].replace("\n", " ")
        lines.append(head + (title if len(title) <= room else title[: room - 1] + "…"))
    return lines


def run_history(args: argparse.Namespace) -> int:
    """`streamchat history`: saved conversations, newest first."""
    from ..chat.store import default_store

    store = default_store()
    width = shutil.get_terminal_size((100, 24)).columns if sys.stdout.isatty() else 200
    for line in format_rows(conversation_rows(store, args.limit), width):
        print(line)
    return 0


def run_models(args: argparse.Namespace) -> int:
    """`streamchat models`: the models the configured endpoint lists."""
    import anthropic

    from .session import error, open_chat

    opened = open_chat(args)
    if opened is None:
        return 2
    _, endpoint = opened
    try:
        for model in endpoint.client.models.list():
            name = getattr(model, "display_name", "") or ""
            print(f"{model.id}  {name}".rstrip())
    except anthropic.APIConnectionError:
        error(f"cannot reach {endpoint.base_url}")
        return 1
    except anthropic.APIStatusError as exc:
        error(f"{exc.status_code}: {exc.message}")
        return 1
    finally:
        endpoint.close()
    sys.stdout.flush()
    return 0
