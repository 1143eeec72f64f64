"""The command starts light: what `streamchat` imports before it runs a command, read from the real
process with `python -X importtime` (the SDK alone takes ~1 s to import; `--help` must not wait for it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("anthropic", "llama_cpp", "starlette", "uvicorn", "rich", "prompt_toolkit")


def imported(args: list[str], home: Path, **env: str) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """The top-level packages the command `streamchat ARGS` imported, and how it ended."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "STREAMCHAT_"))}
    clean.update(STREAMCHAT_HOME=str(home), STREAMCHAT_CONFIG=str(home / "config.toml"), **env)
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "streamchat.cli", *args], env=clean,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    names = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines()
             if line.startswith("import time:") and "|" in line}  # fmt: skip
    assert "streamchat" in names, done.stderr[-2000:]
    return names, done


@pytest.mark.parametrize("args", [["--help"], ["ask", "--help"], ["web", "--help"], ["serve", "--help"],
                                  ["--no-such-flag"], ["history"]])  # fmt: skip
def test_help_argument_errors_and_history_import_nothing_heavy(args: list[str], tmp_path: Path) -> None:
    names, done = imported(args, tmp_path)
    assert done.returncode in (0, 2), done.stderr[-2000:]
    assert names.isdisjoint(HEAVY), sorted(names & set(HEAVY))


def test_ask_against_an_api_imports_the_sdk_but_no_server_or_model(tmp_path: Path) -> None:
    # A refused port: the SDK is imported and used, the reply fails fast, no local server is started.
    names, done = imported(["ask", "--base-url", "http://127.0.0.1:9", "--model", "m", "--no-save", "hi"],
                           tmp_path, ANTHROPIC_API_KEY="sk-test")  # fmt: skip
    assert done.returncode == 1 and "cannot connect" in done.stderr, done.stderr[-2000:]
    assert "anthropic" in names
    assert names.isdisjoint({"llama_cpp", "starlette", "uvicorn"}), sorted(names)
