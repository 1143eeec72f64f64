"""Fixtures for whole-program tests: an isolated STREAMCHAT_HOME and a pty factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from term import Term, base_env


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty STREAMCHAT_HOME (store, input history, config)."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    """The environment of every spawned program."""
    return base_env(home)


@pytest.fixture
def spawn(env: dict[str, str]) -> Iterator[Callable[..., Term]]:
    """Start `streamchat ARGS` in a pty; every program is ended at teardown."""
    started: list[Term] = []

    def start(*args: str, **env_extra: str) -> Term:
        term = Term(args, {**env, **env_extra})
        started.append(term)
        return term

    yield start
    for term in started:
        term.close()
