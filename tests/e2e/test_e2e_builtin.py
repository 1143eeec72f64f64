"""Smoke tests with the built-in model (SmolLM2-135M through llama.cpp): slower than the rest."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import pytest
from term import Term, run

AVAILABLE = all(importlib.util.find_spec(m) is not None for m in ("streamchat.engines.llama", "llama_cpp"))
pytestmark = pytest.mark.skipif(not AVAILABLE, reason="the llama engine is not available")


def test_ask_the_builtin_model(env: dict[str, str]) -> None:
    done = run(["ask", "--max-tokens", "24", "Say hello"], env, timeout=240)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert "Traceback" not in done.stderr


def test_one_chat_turn_with_the_builtin_model(spawn: Callable[..., Term]) -> None:
    term = spawn("--max-tokens", "24")
    term.wait_text("SmolLM2", timeout=120)
    term.wait_prompt(timeout=120)
    term.submit("Say hello")
    term.wait_text("turn: in ", timeout=240)
    lines = term.lines()
    start = lines.index("› Say hello") + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("turn: in "))
    assert any(line.strip() for line in lines[start:end])
    assert term.close() == 0
