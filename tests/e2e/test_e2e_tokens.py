"""/tokens draws input and output tokens per turn as sparklines, with the context budget marked."""

from __future__ import annotations

import re
from collections.abc import Callable

from term import Term, run, script

from streamchat.terminal.sparkline import AT_BUDGET, BARS

Spawn = Callable[..., Term]


def test_the_input_line_goes_flat_under_a_sliding_window(env: dict[str, str]) -> None:
    lines = "".join(f"message number {i:02d}\n" for i in range(16)) + "/tokens\n"
    done = run(["--engine", script("flat.json"), "--max-context-tokens", "120"], env, input=lines)
    assert done.returncode == 0, done.stderr
    assert "per turn (16 replies, oldest first):" in done.stdout
    found = re.search(rf"^  input  ([{BARS}]+)  last \d+ · max \d+ · {AT_BUDGET} = budget 120 a request$",
                      done.stdout, re.MULTILINE)  # fmt: skip
    assert found, done.stdout[-600:]
    bars = found.group(1)
    assert len(bars) == 16 and "█" not in bars  # never over the budget
    assert BARS.index(bars[0]) < BARS.index(bars[-1])  # the window fills up...
    assert len(set(bars[-8:])) == 1 and BARS.index(bars[-1]) >= len(BARS) - 3  # ...then stays flat near it
    assert re.search(rf"^  output ([{BARS}]{{16}})  last \d+ · max \d+$", done.stdout, re.MULTILINE)


def test_tokens_in_the_terminal(spawn: Spawn) -> None:
    term = spawn("--no-markdown", "--engine", script("turns.json"), "--max-context-tokens", "2000")
    for n, word in enumerate(("one", "two", "three"), start=1):
        term.wait_prompt()
        term.submit(word)
        term.wait_count("turn: in ", n)
    term.wait_prompt()
    term.submit("/tokens")
    term.wait_text("per turn (3 replies, oldest first):")
    term.wait_text(re.compile(rf"  input  [{BARS}]{{3}}  last \d+ · max \d+ · ▇ = budget 2\.0k a request"))
    term.wait_text(re.compile(rf"  output [{BARS}]{{3}}  last \d+ · max \d+"))
    term.wait_text("session: in ")
    assert term.close() == 0
