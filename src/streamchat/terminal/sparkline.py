"""One-line charts of per-turn token usage (`/tokens`), as block characters."""

from __future__ import annotations

from collections.abc import Sequence

from ..chat.usage import TurnUsage
from .status import compact

BARS = "▁▂▃▄▅▆▇█"
AT_BUDGET = BARS[-2]  # with a budget, ▇ is the budget and only a value over it is a full block


def sparkline(values: Sequence[int], *, budget: int | None = None, width: int | None = None) -> str:
    """One block character per value, oldest first; when there are more values than `width`, the
    line is `…` and the newest `width - 1` of them.

    Without a budget the largest value is a full block. With one, the budget is `AT_BUDGET` and only
    values over it are full blocks, so a window held at its budget draws a flat line of ▇.
    """
    shown, prefix = [max(0, v) for v in values], ""
    if width is not None and len(shown) > max(1, width):
        shown, prefix = shown[len(shown) - max(1, width) + 1 :], "…"
    if budget is not None and budget > 0:
        over = len(BARS) - 1
        return prefix + "".join(BARS[over if v > budget else round(v / budget * (over - 1))] for v in shown)
    top = max([*shown, 1])
    return prefix + "".join(BARS[round(v / top * (len(BARS) - 1))] for v in shown)


def usage_lines(series: Sequence[TurnUsage], budget: int | None, width: int) -> list[str]:
    """The `/tokens` chart: input (cache included) and output tokens per reply as sparklines, with
    the context budget marked on the input line."""
    if not series:
        return ["per turn: no replies yet"]
    inputs = [t.context_tokens for t in series]
    outputs = [t.output_tokens for t in series]
    note = f" · {AT_BUDGET} = budget {compact(budget)} a request" if budget else ""

    def legend(values: list[int]) -> str:
        return f"last {compact(values[-1])} · max {compact(max(values))}"

    rows = [("input", inputs, budget, legend(inputs) + note), ("output", outputs, None, legend(outputs))]
    room = max(8, width - 11 - max(len(text) for *_, text in rows))  # "  output " + two spaces
    lines = [f"per turn ({len(series)} replies, oldest first):"]
    for name, values, scale, text in rows:
        lines.append(f"  {name:<7}{sparkline(values, budget=scale, width=room)}  {text}")
    return lines
