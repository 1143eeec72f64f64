"""The terminal chat: a prompt_toolkit prompt, streamed replies, slash commands, a status line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

from .. import __version__
from ..chat.conversation import ChatMessage, Conversation
from ..chat.events import TurnEnd
from ..chat.messages import message_text
from ..chat.usage import usage_series
from ..config import data_dir
from ..endpoint import ChatSettings, Endpoint, SetupError, load_toolset
from .output import BOLD, CYAN, DIM, RED, YELLOW, Output, QuietInput
from .session import error, open_chat, open_conversation, open_store
from .sparkline import usage_lines
from .status import compact, context_text, format_cost, status_line, turn_line
from .view import LiveUsage, ReplyView, consume, error_text, tool_input_text

PROMPT = "› "

HELP = [
    ("/clear", "start a new conversation"),
    ("/system TEXT", "set the system prompt (no text: show it)"),
    ("/model NAME", "switch model (no name: show it)"),
    ("/history", "saved conversations"),
    ("/load ID", "open a saved conversation"),
    ("/undo", "drop the last exchange"),
    ("/retry", "regenerate the last reply"),
    ("/continue", "go on with an interrupted or failed reply, in the same message"),
    ("/context", "what the context window holds and what was dropped"),
    ("/pin [N]", "keep message N in the window (default: your last message); /unpin [N]"),
    ("/tokens", "token usage: last turn, input and output per turn as sparklines, session"),
    ("/cost", "session cost"),
    ("/thinking", "toggle extended thinking (requested and shown)"),
    ("/help", "this list"),
    ("/quit", "exit (or Ctrl-D)"),
]


def run_repl(args: argparse.Namespace) -> int:
    """Start the chat; returns the exit status."""
    opened = open_chat(args)
    if opened is None:
        return 2
    chat, endpoint = opened
    try:
        repl = ChatREPL(args, chat, endpoint, open_store())
        return repl.run()
    except SetupError as exc:
        error(str(exc))
        return 2
    finally:
        endpoint.close()


class ChatREPL:
    """One chat session in the terminal."""

    def __init__(self, args: argparse.Namespace, chat: ChatSettings, endpoint: Endpoint, store: Any,
                 out: Output | None = None) -> None:  # fmt: skip
        self.args = args
        self.chat = chat
        self.endpoint = endpoint
        self.store = store
        self.out = out or Output(sys.stdout)
        # Without a terminal the output is for a program: the banner goes to stderr.
        self.notes = self.out if self.out.tty or out is not None else Output(sys.stderr)
        self.markdown = chat.markdown
        self.tools = load_toolset(chat.tools_file)
        self.conv: Conversation = open_conversation(args, chat, endpoint, store, self.confirm, self.tools)
        self.context_tokens: int | None = None
        self.last_end: TurnEnd | None = None
        self.live = LiveUsage()
        self._view: ReplyView | None = None
        self._quiet: QuietInput | None = None
        self.commands: dict[str, Callable[[str], bool]] = {
            "clear": self.cmd_clear, "new": self.cmd_clear, "system": self.cmd_system,
            "model": self.cmd_model, "history": self.cmd_history, "load": self.cmd_load,
            "undo": self.cmd_undo, "retry": self.cmd_retry, "continue": self.cmd_continue,
            "context": self.cmd_context,
            "pin": self.cmd_pin, "unpin": self.cmd_unpin, "tokens": self.cmd_tokens,
            "cost": self.cmd_cost, "thinking": self.cmd_thinking, "help": self.cmd_help,
            "quit": self.cmd_quit, "exit": self.cmd_quit,
        }  # fmt: skip

    # -- the loop ----------------------------------------------------------------------------------

    def run(self) -> int:
        """Prompt, send, stream, repeat until /quit or Ctrl-D."""
        self.banner()
        self.refresh_context()
        if not sys.stdin.isatty():
            return self.run_lines()
        session: PromptSession[str] = PromptSession(
            history=self._history(),
            key_bindings=_key_bindings(),
            bottom_toolbar=self.toolbar,
            prompt_continuation=lambda width, line, soft: "… ".rjust(width),
            multiline=False,
        )
        while True:
            try:
                text = session.prompt(PROMPT)
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt clears the line
            except EOFError:
                break
            if not self.handle_input(text):
                break
        return 0

    def run_lines(self) -> int:
        """Input is not a terminal: one message (or command) per line."""
        for line in sys.stdin:
            if not self.handle_input(line.rstrip("\n")):
                break
        return 0

    def handle_input(self, text: str) -> bool:
        """One submitted input; False means quit. A failure is one line, and the chat goes on."""
        try:
            return self._handle_input(text)
        except KeyboardInterrupt:
            self.out.line("⏹ interrupted", YELLOW)
        except Exception as exc:  # never a traceback in the chat
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            self.out.line(f"✗ {type(exc).__name__}{': ' + detail if detail else ''}", RED)
        return True

    def _handle_input(self, text: str) -> bool:
        if not text.strip():
            return True
        if text.startswith("/") and not text.startswith("//"):
            return self.command(text)
        if text.startswith("//"):
            text = text[1:]  # "//etc" sends "/etc"
        self.stream(lambda: self.conv.send(text))
        return True

    def _history(self) -> FileHistory | InMemoryHistory:
        try:
            home = data_dir()
            home.mkdir(parents=True, exist_ok=True)
            return FileHistory(str(home / "input_history"))
        except OSError:
            return InMemoryHistory()

    # -- output ------------------------------------------------------------------------------------

    def banner(self) -> None:
        """Which model, where, and how to get help."""
        self.notes.line(f"streamchat {__version__}", BOLD)
        self.notes.line(self.endpoint.description, DIM)
        if self.conv.messages:
            count = len(self.conv.messages)
            self.notes.line(f"continuing “{self.conv.title}” ({self.conv.id}, {count} messages)", DIM)
            if self.notes is self.out:
                self.show_transcript(last=6)
        self.notes.line("/help for commands · Enter sends, Esc+Enter for a new line · Ctrl-C stops a reply · "
                        "Ctrl-D quits", DIM)  # fmt: skip

    def status_text(self) -> str:
        """The status line: model, context used / budget, session tokens, cost."""
        return status_line(self.conv.options.model, self.context_tokens, self.conv.options.max_context_tokens,
                           self.conv.totals, self.conv.options.thinking)  # fmt: skip

    def live_status_text(self, usage: LiveUsage) -> str:
        """The status line under a streaming reply: model, context, this reply's output so far, session."""
        opts, t = self.conv.options, self.conv.totals
        window = context_text(usage.context_tokens or self.context_tokens or None, opts.max_context_tokens)
        # Output usage comes with the reply's end; until then, an estimate (~4 characters a token).
        out = str(usage.output_tokens) if usage.output_tokens else f"~{-(-usage.streamed_chars // 4)}"
        sent = compact(t.input_tokens + usage.context_tokens)
        session = f"session in {sent} out {compact(t.output_tokens)}"
        return f"streaming · {opts.model} · context {window} · reply out {out} · {session} · Ctrl-C stops"

    def refresh_context(self) -> None:
        """After loading a conversation: what its window holds, when a budget makes it counted."""
        if not self.conv.messages or not self.conv.options.max_context_tokens:
            return
        try:
            tokens = self.conv.window().tokens
        except Exception:  # only the status line's number: no reason to fail the chat
            return
        if tokens is not None:
            self.context_tokens = tokens

    def toolbar(self) -> FormattedText:
        """prompt_toolkit's bottom toolbar: the status line."""
        return FormattedText([("", " " + self.status_text())])

    def _on_usage(self, usage: LiveUsage) -> None:
        self.live = usage

    def stream(self, start: Callable[[], Any]) -> TurnEnd | None:
        """Start a reply and draw it until its TurnEnd; Ctrl-C stops it and keeps the partial reply."""
        view = ReplyView(self.out, markdown=self.markdown, show_thinking=self.conv.options.thinking,
                         on_usage=self._on_usage, live_status=self.live_status_text)  # fmt: skip
        self._view = view
        try:
            with QuietInput(self.out.tty) as quiet:
                self._quiet = quiet
                try:
                    reply = start()
                except KeyboardInterrupt:
                    self.out.line("⏹ interrupted", YELLOW)
                    return None
                end = consume(reply, view)
        finally:
            self._view = None
            self._quiet = None
        self.after_turn(end, view)
        return end

    def after_turn(self, end: TurnEnd, view: ReplyView) -> None:
        """The outcome, this turn's tokens, and the status line."""
        self.last_end = end
        if view.usage.context_tokens:
            self.context_tokens = view.usage.context_tokens
        more = ", /continue goes on" if self.conv.can_continue() else ""
        if end.status == "interrupted":
            self.out.line(f"⏹ interrupted — partial reply kept (/retry regenerates it{more})", YELLOW)
        elif end.status == "error":
            failure = error_text(end, self.endpoint.client.max_retries)
            self.out.line(f"✗ {failure} — /retry to try again{more}", RED)
        line = f"{turn_line(end)} │ {self.status_text()}"
        if len(line) < self.out.size()[0]:
            self.out.line(line, DIM)
        else:  # two lines rather than one that wraps
            self.out.line(turn_line(end), DIM)
            self.out.line(self.status_text(), DIM)

    def confirm(self, name: str, data: dict[str, Any]) -> bool:
        """Tool calls run only after a y/N answer."""
        if self._view is not None:
            self._view.close_stream()
        if not sys.stdin.isatty():  # input is the messages: ask the terminal, if there is one
            from .ask import confirm_from_tty

            return confirm_from_tty(name, data)
        question = f"run tool {self.out.styled(name, CYAN)} {tool_input_text(data)}? [y/N] "
        self.out.write(question)
        if self._quiet is not None:
            with self._quiet.paused():
                answer = sys.stdin.readline()
        else:
            answer = sys.stdin.readline()
        return answer.strip().lower() in ("y", "yes")

    def show_message(self, index: int, message: ChatMessage) -> None:
        """One saved message, as it looked when it streamed."""
        text = message_text(message)
        if message.role == "system":
            self.out.line(f"system: {text}", DIM)
            return
        if message.role == "user":
            if all(b.get("type") == "tool_result" for b in message.content):
                self.out.line(f"  ↳ tool result{'s' if len(message.content) > 1 else ''}", DIM)
                return
            self.out.line(f"{PROMPT}{text}", BOLD)
            return
        for block in message.content:
            if block.get("type") == "tool_use":
                self.out.line(f"⚙ {block.get('name')} {tool_input_text(block.get('input') or {})}", CYAN)
        if text:
            if self.markdown and self.out.tty:
                from ..render import render_markdown

                self.out.write(render_markdown(text, self.out.size()[0]))
            else:
                self.out.line(text)
        if message.status != "complete":
            self.out.line(f"({message.status})", YELLOW)

    def show_transcript(self, last: int | None = None) -> None:
        """The conversation so far (or its last messages)."""
        messages = list(enumerate(self.conv.messages))
        if last is not None and len(messages) > last:
            self.out.line(f"… {len(messages) - last} earlier messages", DIM)
            messages = messages[-last:]
        for index, message in messages:
            self.show_message(index, message)

    # -- commands ----------------------------------------------------------------------------------

    def command(self, line: str) -> bool:
        """Run a slash command; False means quit."""
        name, _, arg = line[1:].partition(" ")
        handler = self.commands.get(name.strip().lower())
        if handler is None:
            self.out.line(f"unknown command /{name} — /help lists the commands", YELLOW)
            return True
        return handler(arg.strip())

    def cmd_help(self, arg: str) -> bool:
        for name, text in HELP:
            self.out.line(f"  {name:<14} {text}")
        self.out.line("  Enter sends · Esc+Enter or Alt+Enter: new line · Ctrl-C stops a reply · "
                      "Ctrl-D quits", DIM)  # fmt: skip
        return True

    def cmd_quit(self, arg: str) -> bool:
        return False

    def cmd_clear(self, arg: str) -> bool:
        self.conv.clear()
        self.context_tokens = None
        self.out.line("new conversation", DIM)
        return True

    def cmd_system(self, arg: str) -> bool:
        if not arg:
            self.out.line(f"system: {self.conv.options.system or '(none)'}", DIM)
            return True
        self.conv.set_system(arg)
        self.out.line("system prompt set", DIM)
        return True

    def cmd_model(self, arg: str) -> bool:
        if not arg:
            self.out.line(f"model: {self.conv.options.model}", DIM)
            return True
        self.conv.set_model(arg)
        self.out.line(f"model: {arg}", DIM)
        return True

    def cmd_history(self, arg: str) -> bool:
        from .commands import conversation_rows, format_rows

        rows = conversation_rows(self.store, 20)
        for line in format_rows(rows, self.out.size()[0] - 2):  # room for the "* " marker
            current = line.startswith(self.conv.id + " ")
            self.out.line(("* " if current else "  ") + line)
        return True

    def cmd_load(self, arg: str) -> bool:
        if not arg:
            self.out.line("usage: /load ID (see /history)", YELLOW)
            return True
        try:
            conv = Conversation.resume(self.endpoint.client, self.store, arg, None,
                                       tools=self.tools, confirm=self.confirm)  # fmt: skip
        except LookupError:
            self.out.line(f"no conversation {arg} — /history lists them", YELLOW)
            return True
        if self.endpoint.local and conv.options.model != self.endpoint.model:
            conv.set_model(self.endpoint.model)
        self.conv = conv
        self.context_tokens = None
        self.refresh_context()
        self.out.line(f"loaded “{conv.title}” ({conv.id}, {len(conv.messages)} messages)", DIM)
        self.show_transcript()
        return True

    def cmd_undo(self, arg: str) -> bool:
        if self.conv.undo():
            self.out.line("dropped the last exchange", DIM)
        else:
            self.out.line("nothing to undo", YELLOW)
        return True

    def cmd_retry(self, arg: str) -> bool:
        if not any(m.role == "user" for m in self.conv.messages):
            self.out.line("nothing to retry", YELLOW)
            return True
        self.stream(self.conv.retry)
        return True

    def cmd_continue(self, arg: str) -> bool:
        reply = self.conv.continue_reply()
        if reply.result is not None:  # refused: nothing was sent
            self.out.line(f"{reply.result.error} — /retry regenerates a reply", YELLOW)
            return True
        self.stream(lambda: reply)
        return True

    def cmd_context(self, arg: str) -> bool:
        report = self.conv.window()
        included = set(report.included)
        pinned = set(report.pinned)
        if report.tokens is not None:
            tokens = str(report.tokens)
        else:  # no budget: nothing was counted, so show what the last request measured
            tokens = "?" if self.context_tokens is None else f"{self.context_tokens} (last request)"
        budget = f"/{report.budget}" if report.budget else ""
        turns = f" · max turns {report.max_turns}" if report.max_turns else ""
        total = len(self.conv.messages)
        self.out.line(f"context: {len(report.included)} of {total} messages in the window · "
                      f"{tokens}{budget} tokens{turns} · {len(report.dropped)} dropped", BOLD)  # fmt: skip
        if self.conv.options.system:
            self.out.line(f"  system  {preview(self.conv.options.system, 70)}", DIM)
        for index, message in enumerate(self.conv.messages):
            where = "pinned " if index in pinned else ("in     " if index in included else "dropped")
            status = "" if message.status == "complete" else f" ({message.status})"
            line = f"  #{index + 1:<3} {where} {message.role:<9} {preview(message_text(message), 60)}{status}"
            self.out.line(line, "" if index in included else DIM)
        return True

    def _pin_index(self, arg: str) -> int | None:
        if arg:
            try:
                number = int(arg.lstrip("#"))
            except ValueError:
                self.out.line("usage: /pin [N] (N as numbered by /context)", YELLOW)
                return None
            if not 1 <= number <= len(self.conv.messages):
                self.out.line(f"no message #{number} (there are {len(self.conv.messages)})", YELLOW)
                return None
            return number - 1
        for index in range(len(self.conv.messages) - 1, -1, -1):
            message = self.conv.messages[index]
            if message.role == "user" and message_text(message):
                return index
        self.out.line("nothing to pin yet", YELLOW)
        return None

    def cmd_pin(self, arg: str, pinned: bool = True) -> bool:
        index = self._pin_index(arg)
        if index is not None:
            self.conv.pin(index, pinned)
            what = "pinned" if pinned else "unpinned"
            self.out.line(f"{what} #{index + 1}: {preview(message_text(self.conv.messages[index]), 60)}", DIM)
        return True

    def cmd_unpin(self, arg: str) -> bool:
        return self.cmd_pin(arg, pinned=False)

    def cmd_tokens(self, arg: str) -> bool:
        if self.last_end is not None:
            self.out.line(turn_line(self.last_end))
        series = usage_series(self.conv.messages, self.conv.options.model, local=self.conv.options.local)
        for line in usage_lines(series, self.conv.options.max_context_tokens, self.out.size()[0]):
            self.out.line(line)
        t = self.conv.totals
        cache = f"cache write {t.cache_creation_input_tokens} read {t.cache_read_input_tokens}"
        self.out.line(f"session: in {t.input_tokens} · out {t.output_tokens} · {cache} · {t.turns} turns")
        used = "?" if self.context_tokens is None else str(self.context_tokens)
        budget = self.conv.options.max_context_tokens
        self.out.line(f"context: {used}{f'/{budget}' if budget else ''} tokens in the last request")
        return True

    def cmd_cost(self, arg: str) -> bool:
        t = self.conv.totals
        note = " (built-in model: free)" if self.conv.options.local else ""
        self.out.line(f"session cost: {format_cost(t.cost)}{note} · {t.turns} turns")
        for model, tokens in sorted(t.per_model.items()):
            self.out.line(f"  {model}: {tokens} tokens", DIM)
        return True

    def cmd_thinking(self, arg: str) -> bool:
        on = not self.conv.options.thinking
        if arg in ("on", "off"):
            on = arg == "on"
        self.conv.set_thinking(on)
        self.out.line(f"thinking {'on: requested and shown' if on else 'off'}", DIM)
        return True


def _key_bindings() -> KeyBindings:
    bindings = KeyBindings()

    @bindings.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        """Esc+Enter / Alt+Enter: a new line in the message instead of sending it."""
        event.current_buffer.insert_text("\n")

    return bindings


def preview(text: str, width: int) -> str:
    """One line of at most `width` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
