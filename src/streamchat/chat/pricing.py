"""What a turn costs: a price table of Claude models and the arithmetic over token usage.

Prices are US dollars per million tokens (MTok), standard (non-batch) API rates with 5-minute
prompt caching, from Anthropic's pricing page (https://platform.claude.com/docs/en/about-claude/pricing)
**as read on 2026-11-21**. Long-context premiums (Sonnet 4.x over 200K input, Haiku 5.5 over 100K)
are not modelled: the lower band is used. Update `PRICES` and `PRICES_AS_OF` together.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

PRICES_AS_OF = "2026-11-21"
PRICES_SOURCE = "Anthropic pricing page, https://platform.claude.com/docs/en/about-claude/pricing"


@dataclass(frozen=True)
class ModelPrice:
    """Dollars per million tokens."""

    input: float
    output: float
    cache_write: float  # 5-minute cache writes (1.25x input)
    cache_read: float  # cache hits (0.1x input)


PRICES: dict[str, ModelPrice] = {
    "claude-fable-5-1": ModelPrice(10.00, 50.00, 12.50, 0.25),
    "claude-mythos-5-1": ModelPrice(10.00, 50.00, 12.50, 0.25),
    "claude-fable-5": ModelPrice(10.00, 50.00, 12.50, 1.00),
    "claude-mythos-5": ModelPrice(10.00, 50.00, 12.50, 1.00),
    "claude-opus-5-5": ModelPrice(4.00, 20.00, 5.00, 0.20),
    "claude-opus-5": ModelPrice(5.00, 25.00, 6.25, 0.50),
    "claude-opus-4-8": ModelPrice(5.00, 25.00, 6.25, 0.50),
    "claude-opus-4-7": ModelPrice(5.00, 25.00, 6.25, 0.50),
    "claude-opus-4-6": ModelPrice(5.00, 25.00, 6.25, 0.50),
    "claude-opus-4-5": ModelPrice(5.00, 25.00, 6.25, 0.50),
    "claude-opus-4-1": ModelPrice(15.00, 75.00, 18.75, 1.50),
    "claude-opus-4": ModelPrice(15.00, 75.00, 18.75, 1.50),
    "claude-sonnet-5-5": ModelPrice(2.00, 10.00, 2.50, 0.10),
    "claude-sonnet-5": ModelPrice(2.00, 10.00, 2.50, 0.20),
    "claude-sonnet-4-6": ModelPrice(3.00, 15.00, 3.75, 0.30),
    "claude-sonnet-4-5": ModelPrice(3.00, 15.00, 3.75, 0.30),
    "claude-sonnet-4": ModelPrice(3.00, 15.00, 3.75, 0.30),
    "claude-haiku-5-5": ModelPrice(0.10, 0.50, 0.125, 0.01),
    "claude-haiku-4-5": ModelPrice(1.00, 5.00, 1.25, 0.10),
    "claude-3-7-sonnet": ModelPrice(3.00, 15.00, 3.75, 0.30),
    "claude-3-5-sonnet": ModelPrice(3.00, 15.00, 3.75, 0.30),
    "claude-3-5-haiku": ModelPrice(0.80, 4.00, 1.00, 0.08),
    "claude-3-opus": ModelPrice(15.00, 75.00, 18.75, 1.50),
    "claude-3-haiku": ModelPrice(0.25, 1.25, 0.30, 0.03),
}

# A snapshot date (-20250929), an alias suffix (-latest), a Vertex "@date" or a Bedrock "-v1:0".
_SUFFIX = re.compile(r"(?:-\d{8}|-latest|@\d{8})?(?:-v\d+(?::\d+)?)?$")


def model_family(model: str) -> str | None:
    """The price-table key for a model id (`claude-sonnet-4-5-20250929` -> `claude-sonnet-4-5`), or None.

    Provider prefixes (`anthropic.`, `us.anthropic.`) are ignored; an unknown version is None rather
    than a guess, so a new model shows "n/a" instead of a wrong price.
    """
    name = model.strip().lower()
    at = name.find("claude-")
    if at < 0:
        return None
    name = _SUFFIX.sub("", name[at:], count=1)
    return name if name in PRICES else None


def price_for(model: str) -> ModelPrice | None:
    """The price of `model`, or None when it is not in the table."""
    family = model_family(model)
    return PRICES[family] if family else None


def cost(model: str, usage: Mapping[str, int | None], *, local: bool = False) -> float | None:
    """Dollars for `usage` (input/output/cache tokens) on `model`; 0 for the local model; None if unknown."""
    if local:
        return 0.0
    price = price_for(model)
    if price is None:
        return None

    def get(key: str) -> int:
        return int(usage.get(key) or 0)

    total = (
        get("input_tokens") * price.input
        + get("output_tokens") * price.output
        + get("cache_creation_input_tokens") * price.cache_write
        + get("cache_read_input_tokens") * price.cache_read
    )
    return total / 1_000_000


def format_cost(value: float | None) -> str:
    """`$0.0123`-style display; "n/a" when the price is unknown."""
    if value is None:
        return "n/a"
    if value == 0:
        return "$0.00"
    if value < 0.01:
        return f"${value:.4f}"  # small turns would all round to $0.00
    return f"${value:.2f}"
