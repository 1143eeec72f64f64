"""The status line (prompt toolbar and one line after each reply) and the per-turn token line."""

from __future__ import annotations

from ..chat.events import SessionTotals, TurnEnd
from ..chat.pricing import format_cost as chat_format_cost


def format_cost(cost: float | None) -> str:
    """A cost as the pricing module writes it (local models cost 0; unknown prices are "n/a")."""
    return chat_format_cost(cost)


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


def status_line(model: str, context_tokens: int | None, budget: int | None, totals: SessionTotals,
                thinking: bool = False) -> str:  # fmt: skip
    """`model · context 312/2000 · session in 1.2k out 96 · $0.00`."""
    used = "?" if context_tokens is None else compact(context_tokens)
    window = f"{used}/{compact(budget)}" if budget else used
    session = f"session in {compact(totals.input_tokens + totals.cache_read_input_tokens + totals.cache_creation_input_tokens)}"  # noqa: E501
    parts = [model, f"context {window}", f"{session} out {compact(totals.output_tokens)}",
             format_cost(totals.cost)]  # fmt: skip
    if thinking:
        parts.append("thinking on")
    return " · ".join(parts)
