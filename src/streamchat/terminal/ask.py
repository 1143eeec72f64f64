"""`streamchat ask`: one question, one streamed reply; `--json` for the final message, `--events` for
every raw stream event as one JSON line."""

from __future__ import annotations

import argparse
import io
import json
import sys
from typing import Any

import anthropic

from ..chat.conversation import describe_error
from ..chat.events import TurnEnd
from ..endpoint import Endpoint, SetupError, load_toolset
from .output import Output
from .session import error, open_chat, open_conversation, open_store
from .view import ReplyView, consume, error_text, tool_input_text


def read_question(args: argparse.Namespace) -> str:
    """The question: the argument, or stdin when it is missing or "-"."""
    question = getattr(args, "question", None)
    if question is None or question == "-":
        return sys.stdin.read()
    return str(question)


def run_ask(args: argparse.Namespace) -> int:
    """Ask one question; 0 on success, 1 on an API error, 2 on a usage error, 130 on Ctrl-C."""
    question = read_question(args)
    if not question.strip():
        error("nothing to ask (give a question or pipe one on stdin)")
        return 2
    opened = open_chat(args)
    if opened is None:
        return 2
    chat, endpoint = opened
    try:
        if args.events:
            return ask_events(endpoint, question, args, chat.system, chat.max_tokens, chat.thinking)
        store = None if args.no_save else open_store()
        conv = open_conversation(args, chat, endpoint, store, confirm_from_tty, load_toolset(chat.tools_file))
        out = Output(io.StringIO(), color=False) if args.json else Output(sys.stdout)
        view = ReplyView(out, markdown=chat.markdown, show_thinking=chat.thinking)
        end = consume(conv.send(question), view)
        if args.json:
            print(json.dumps(final_message(conv, end), ensure_ascii=False, indent=2), flush=True)
        return exit_status(end, endpoint.client.max_retries)
    except SetupError as exc:
        error(str(exc))
        return 2
    finally:
        endpoint.close()


def exit_status(end: TurnEnd, retries: int = 2) -> int:
    """0 complete, 1 error (message on stderr), 130 interrupted."""
    if end.status == "error":
        error(error_text(end, retries))
        return 1
    if end.status == "interrupted":
        error("interrupted")
        return 130
    return 0


def final_message(conv: Any, end: TurnEnd) -> dict[str, Any]:
    """The final assistant message as JSON: content blocks, model, stop_reason, usage."""
    last = conv.messages[-1] if conv.messages and conv.messages[-1].role == "assistant" else None
    usage = {
        "input_tokens": end.input_tokens,
        "output_tokens": end.output_tokens,
        "cache_creation_input_tokens": end.cache_creation_input_tokens,
        "cache_read_input_tokens": end.cache_read_input_tokens,
    }
    return {
        "type": "message",
        "role": "assistant",
        "model": conv.options.model,
        "content": list(last.content) if last is not None else [],
        "stop_reason": end.stop_reason,
        "usage": usage,
        "status": end.status,
        "conversation_id": getattr(conv, "id", None),
    }


def ask_events(endpoint: Endpoint, question: str, args: argparse.Namespace, system: str, max_tokens: int,
               thinking: bool) -> int:  # fmt: skip
    """Print every raw SDK stream event as one JSON line (not saved: it is a protocol view)."""
    params: dict[str, Any] = {
        "model": endpoint.model,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": question}],
    }
    if system:
        params["system"] = system
    if thinking:
        budget = max(1024, min(max_tokens - 1, 4096))
        params["max_tokens"] = max(max_tokens, budget + 1)
        params["thinking"] = {"type": "enabled", "budget_tokens": budget}
    try:
        with endpoint.client.messages.create(stream=True, **params) as stream:
            for event in stream:
                sys.stdout.write(json.dumps(event.model_dump(mode="json"), ensure_ascii=False) + "\n")
                sys.stdout.flush()
    except anthropic.APIError as exc:
        error(describe_error(exc, endpoint.base_url)[0])
        return 1
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    return 0


def confirm_from_tty(name: str, data: dict[str, Any]) -> bool:
    """`ask` runs a tool only when someone at a terminal says yes (stdin may be the question)."""
    try:
        with open("/dev/tty", "r+", encoding="utf-8") as tty:
            tty.write(f"run tool {name} {tool_input_text(data)}? [y/N] ")
            tty.flush()
            return tty.readline().strip().lower() in ("y", "yes")
    except OSError:
        error(f"tool {name} declined: no terminal to confirm it")
        return False
