"""The status line (prompt toolbar and one line after each reply) and the per-turn token line."""

from __future__ import annotations

from ..chat.events import SessionTotals, TurnEnd
from ..chat.pricing import format_cost


def compact(n: int) -> str:
    """1234 -> 1.2k, 2500000 -> 2.5M."""
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.1f}M"


def turn_line(end: TurnEnd) -> str:
    """This turn's tokens and cost: `turn: in 312 · out 48 · cache w0 r0 · $0.0000`."""
    parts = [f"turn: in {end.input_tokens}", f"out {end.output_tokens}"]
    if end.cache_creation_input_tokens or end.cache_read_input_tokens:
        parts.append(f"cache w{end.cache_creation_input_tokens} r{end.cache_read_input_tokens}")
    parts.append(format_cost(end.cost))
    return " · ".join(parts)


def context_text(context_tokens: int | None, budget: int | None) -> str:
    """The context window's use: `312/2.0k` with a budget, `312` without, `?` before any request."""
    used = "?" if context_tokens is None else compact(context_tokens)
    return f"{used}/{compact(budget)}" if budget else used


def status_line(model: str, context_tokens: int | None, budget: int | None, totals: SessionTotals,
                thinking: bool = False) -> str:  # fmt: skip
    """`model · context 312/2000 · session in 1.2k out 96 · $0.00`."""
    sent = totals.input_tokens + totals.cache_read_input_tokens + totals.cache_creation_input_tokens
    session = f"session in {compact(sent)} out {compact(totals.output_tokens)}"
    parts = [model, f"context {context_text(context_tokens, budget)}", session, format_cost(totals.cost)]
    if thinking:
        parts.append("thinking on")
    return " · ".join(parts)


__all__ = ["compact", "context_text", "format_cost", "status_line", "turn_line"]
