"""Cost from the price table."""

from __future__ import annotations

import pytest

from streamchat.chat.pricing import PRICES_AS_OF, cost, format_cost, model_family, price_for


def test_known_models_by_family() -> None:
    assert model_family("claude-sonnet-4-5-20250929") == "claude-sonnet-4-5"
    assert model_family("claude-sonnet-4-5") == "claude-sonnet-4-5"
    assert model_family("claude-opus-4-1-20250805") == "claude-opus-4-1"
    assert model_family("claude-opus-4-20250514") == "claude-opus-4"
    assert model_family("claude-3-7-sonnet-latest") == "claude-3-7-sonnet"
    assert model_family("us.anthropic.claude-haiku-4-5-20251001-v1:0") == "claude-haiku-4-5"
    assert model_family("claude-sonnet-4-5@20250929") == "claude-sonnet-4-5"
    assert PRICES_AS_OF


def test_cost_of_a_turn() -> None:
    usage = {"input_tokens": 1_000_000, "output_tokens": 100_000, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 0}  # fmt: skip
    assert cost("claude-sonnet-4-5-20250929", usage) == pytest.approx(3.0 + 1.5)
    assert cost("claude-haiku-4-5", {"input_tokens": 1000, "output_tokens": 1000}) == pytest.approx(0.006)
    cached = {"cache_creation_input_tokens": 1_000_000, "cache_read_input_tokens": 1_000_000}
    assert cost("claude-opus-4-5", cached) == pytest.approx(6.25 + 0.5)
    assert price_for("claude-opus-4-1") is not None


def test_local_is_free_and_unknown_is_none() -> None:
    usage = {"input_tokens": 500, "output_tokens": 50}
    assert cost("SmolLM2-135M-Instruct", usage, local=True) == 0.0
    assert cost("gpt-4o", usage) is None
    assert cost("claude-opus-9", usage) is None
    assert format_cost(None) == "n/a"
    assert format_cost(0.0) == "$0.00"
    assert format_cost(0.00123) == "$0.0012"
    assert format_cost(1.5) == "$1.50"
