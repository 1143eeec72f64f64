"""The terminal package's pieces on their own: settings, status lines, the reply view, Ctrl-C."""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamchat.chat.events import (
    BlockEnd,
    BlockStart,
    Delta,
    ReplyEvent,
    SessionTotals,
    ToolResult,
    TurnEnd,
    UsageUpdate,
    WindowNotice,
)
from streamchat.config import load_settings
from streamchat.endpoint import SetupError, resolve_settings
from streamchat.terminal.commands import format_rows
from streamchat.terminal.output import Output, RawStream
from streamchat.terminal.repl import preview
from streamchat.terminal.sparkline import AT_BUDGET, sparkline, usage_lines
from streamchat.terminal.status import compact, status_line, turn_line
from streamchat.terminal.view import ReplyView, consume, error_text, redrawn_part


def args(**kw: object) -> argparse.Namespace:
    names = ["model", "system", "persona", "max_turns", "max_context_tokens", "max_tokens"]
    names += ["tools", "base_url"]
    base: dict[str, object] = dict.fromkeys(names)
    base.update(no_markdown=False, thinking=False, engine="llama")
    base.update(kw)
    return argparse.Namespace(**base)


def test_flags_override_the_config_file_which_overrides_defaults(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('model = "m-config"\nmax_turns = 7\nmax_tokens = 300\nsystem = "cfg"\n'
                      '[personas]\npoet = "Answer in verse."\n')  # fmt: skip
    settings = load_settings({}, config)
    merged = resolve_settings(args(), settings)
    assert (merged.model, merged.max_turns, merged.max_tokens, merged.system) == ("m-config", 7, 300, "cfg")
    assert merged.local and merged.markdown
    merged = resolve_settings(args(model="m-flag", max_turns=2, max_tokens=50, persona="poet"), settings)
    assert (merged.model, merged.max_turns, merged.max_tokens, merged.system) == (
        "m-flag",
        2,
        50,
        "Answer in verse.",
    )
    assert merged.persona == "poet"
    explicit = resolve_settings(args(persona="poet", system="explicit"), settings)
    assert (explicit.system, explicit.persona) == ("explicit", None)
    with pytest.raises(SetupError, match="unknown persona"):
        resolve_settings(args(persona="nobody"), settings)


def test_defaults_without_a_config(tmp_path: Path) -> None:
    merged = resolve_settings(args(no_markdown=True), load_settings({}, tmp_path / "none.toml"))
    assert merged.max_tokens == 1024 and merged.max_turns is None and not merged.markdown and merged.local


def test_an_api_key_means_claude_unless_an_engine_is_given(tmp_path: Path) -> None:
    settings = load_settings({"ANTHROPIC_API_KEY": "sk-test"}, tmp_path / "none.toml")
    assert not resolve_settings(args(), settings).local
    assert resolve_settings(args(engine="script:x.md"), settings).local
    assert not resolve_settings(args(engine="script:x.md", base_url="http://h"), settings).local


def test_status_and_turn_lines() -> None:
    totals = SessionTotals(input_tokens=1500, output_tokens=96, cost=0.0)
    assert status_line("m", 312, 2000, totals) == "m · context 312/2.0k · session in 1.5k out 96 · $0.00"
    assert status_line("m", None, None, SessionTotals(cost=None), True).endswith("n/a · thinking on")
    end = TurnEnd("complete", "end_turn", 10, 5, 3, 2, cost=None)
    assert turn_line(end) == "turn: in 10 · out 5 · cache w3 r2 · n/a"
    assert compact(999) == "999" and compact(2_500_000) == "2.5M"


def test_error_text_says_the_sdk_retried_on_overload() -> None:
    assert "retries" in error_text(TurnEnd("error", None, 0, 0, error="the API is overloaded (529): busy"))
    assert "retries" not in error_text(TurnEnd("error", None, 0, 0, error="overloaded mid-stream: x"))
    assert error_text(TurnEnd("error", None, 0, 0, error="401 bad key")) == "401 bad key"


def test_history_rows_and_previews() -> None:
    rows = [{"id": "abc", "title": "t" * 200, "model": "m", "updated": "2026-01-01 10:00", "messages": 4}]
    (line,) = format_rows(rows, 80)
    assert line.startswith("abc  2026-01-01 10:00     4 msg  m  ") and len(line) <= 80 and line.endswith("…")
    assert format_rows([]) == ["no saved conversations"]
    assert preview("a\n b   c", 10) == "a b c"


def test_raw_stream_ends_on_a_fresh_line() -> None:
    written: list[str] = []
    stream = RawStream(written.append)
    stream.feed("abc")
    stream.finish()
    assert "".join(written) == "abc\n"


def plain_view() -> tuple[ReplyView, io.StringIO]:
    buffer = io.StringIO()
    return ReplyView(Output(buffer), markdown=True, show_thinking=True), buffer


def test_view_prints_text_as_it_arrives_without_a_terminal() -> None:
    view, buffer = plain_view()
    events: list[ReplyEvent] = [UsageUpdate(10, 0), WindowNotice(2, 40, "max turns"), BlockStart("thinking"),
                                Delta("thinking", "hidden"), BlockEnd("thinking"), BlockStart("text"),
                                Delta("text", "Hello "), Delta("text", "**world**")]  # fmt: skip
    for event in events:
        view.handle(event)
    assert buffer.getvalue().endswith("Hello **world**")  # no ANSI, no thinking: plain text as it came
    assert "hidden" not in buffer.getvalue() and "left out of the window" in buffer.getvalue()
    view.handle(BlockEnd("text"))
    view.handle(ToolResult("t1", "add", "5"))
    view.handle(TurnEnd("complete", "end_turn", 10, 3))
    assert "\x1b" not in buffer.getvalue() and "↳ add: 5" in buffer.getvalue()
    assert view.usage.input_tokens == 10 and view.text == "Hello **world**"


class FakeReply:
    """Yields a few deltas, then is hit by Ctrl-C; after interrupt() it yields its TurnEnd."""

    def __init__(self) -> None:
        self.interrupted = False
        self.sent = 0

    def __iter__(self) -> FakeReply:
        return self

    def __next__(self) -> ReplyEvent:
        if self.interrupted:
            if self.sent < 0:
                raise StopIteration
            self.sent = -1
            return TurnEnd("interrupted", None, 5, 2)
        self.sent += 1
        if self.sent == 1:
            return BlockStart("text")
        if self.sent <= 3:
            return Delta("text", f"part{self.sent} ")
        raise KeyboardInterrupt

    def interrupt(self) -> None:
        self.interrupted = True


def test_ctrl_c_interrupts_keeps_the_partial_text_and_returns_the_turn_end() -> None:
    view, buffer = plain_view()
    reply = FakeReply()
    end = consume(reply, view)
    assert reply.interrupted and end.status == "interrupted"
    assert buffer.getvalue() == "part2 part3 \n"


def test_a_reply_that_dies_without_turn_end_still_ends() -> None:
    def events() -> Iterator[ReplyEvent]:
        yield BlockStart("text")
        yield Delta("text", "x")

    class Dying:
        def __iter__(self) -> Iterator[ReplyEvent]:
            return events()

        def interrupt(self) -> None:
            pass

    view, _ = plain_view()
    assert consume(Dying(), view).status == "error"


def test_a_continued_reply_draws_its_last_block_again() -> None:
    cut = "# Title\n\nFirst paragraph.\n\nSecond para"
    assert redrawn_part(cut, markdown=True) == "Second para"
    assert redrawn_part("Intro.\n\n```py\nx = 1\ny", markdown=True) == "```py\nx = 1\ny"  # the open fence too
    assert redrawn_part("- one\n- two\n- th", markdown=True) == "- one\n- two\n- th"  # the whole list
    assert redrawn_part("A finished paragraph.", markdown=True) == "A finished paragraph."
    assert redrawn_part("line one\nline tw", markdown=False) == "line tw"
    out = Output(io.StringIO(), color=False)
    view = ReplyView(out, markdown=False)
    for event in (BlockStart("text", prefix="line one\nline tw"), Delta("text", "o, done.")):
        view.handle(event)
    view.close_stream()
    assert out.stream.getvalue() == "line two, done.\n"  # type: ignore[attr-defined]
    assert view.text == "line one\nline two, done."


def test_sparkline_levels() -> None:
    assert sparkline([]) == ""
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"  # scaled to the largest value
    assert sparkline([5, 5, 5]) == "███" and sparkline([0, 0]) == "▁▁"
    # With a budget, the budget is ▇ and only what is over it is a full block.
    assert sparkline([0, 500, 1000, 1700, 1900, 2000, 2001, 9000], budget=2000) == "▁▃▄▆▇▇██"  # nearest level
    assert sparkline([2000] * 5, budget=2000) == AT_BUDGET * 5
    assert sparkline(list(range(20)), width=6) == "…" + sparkline(list(range(20)))[-5:]
    assert sparkline([1, 2, 3], width=3) == sparkline([1, 2, 3]) and sparkline([1, 2], width=1) == "…"


def test_usage_lines_fit_the_width_and_mark_the_budget() -> None:
    from streamchat.chat.usage import TurnUsage

    series = [TurnUsage(i, 100 * min(i, 5), 10 + i, 0.0) for i in range(1, 80)]
    lines = usage_lines(series, 500, 100)
    assert lines[0] == "per turn (79 replies, oldest first):"
    assert lines[1].startswith("  input  …")
    assert lines[1].endswith("last 500 · max 500 · ▇ = budget 500 a request")
    assert "▇▇▇▇▇" in lines[1] and "█" not in lines[1]
    assert lines[2].startswith("  output …") and lines[2].endswith("last 89 · max 89")
    assert max(len(line) for line in lines[1:]) == 100  # as many turns as the width holds, the newest
    assert usage_lines([], None, 80) == ["per turn: no replies yet"]
