"""The engine options (--parallel, --prefill-chunk, the guard, --n-ctx) on every command that runs
the built-in model, and bad values refused by the real parser with one clear line."""

from __future__ import annotations

import pytest

from streamchat.api.request import parse_messages_request
from streamchat.cli import build_parser
from streamchat.engines import engine_from_args
from streamchat.engines.llama import LlamaEngine
from streamchat.engines.sampling import SMOLLM2_DEFAULTS

COMMANDS = ["serve", "chat", "ask", "web"]


@pytest.mark.parametrize("command", COMMANDS)
def test_the_options_reach_the_built_in_model(command: str) -> None:
    argv = [command, "--parallel", "2", "--prefill-chunk", "32", "--n-ctx", "1024", "--repeat-penalty", "1.3",
            "--dry-multiplier", "0.5", "--threads", "1"]  # fmt: skip
    engine = engine_from_args(build_parser().parse_args(argv))
    try:
        assert isinstance(engine, LlamaEngine)
        assert (engine.max_concurrency, engine.prompt_budget, engine.context_window) == (2, 32, 1024)
        hello = [{"role": "user", "content": "Hi"}]
        request = parse_messages_request({"model": "m", "max_tokens": 8, "messages": hello})
        settings = engine.sampling(request)
        assert (settings.repeat_penalty, settings.dry_multiplier) == (1.3, 0.5)
        assert settings.temperature == SMOLLM2_DEFAULTS.temperature
    finally:
        engine.close()


@pytest.mark.parametrize(("command", "slots"), [("serve", 8), ("web", 8), ("chat", 2), ("ask", 2)])
def test_each_command_has_its_own_default_parallel(
    command: str, slots: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Serving many: 8 slots; the terminal's one conversation: 2 (each slot its own KV cells)."""
    args = build_parser().parse_args([command, "--n-ctx", "256", "--threads", "1"])
    engine = engine_from_args(args)
    try:
        assert isinstance(engine, LlamaEngine)
        assert engine.max_concurrency == slots and len(engine.kv_stats().slots) == slots
    finally:
        engine.close()
    monkeypatch.setenv("COLUMNS", "300")  # one line per option: the help is read as printed
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("--parallel"))
    assert f"(default {slots})" in line


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--prefill-chunk", "0", "argument --prefill-chunk: 0 is out of range: use 1 to 512"),
        ("--prefill-chunk", "513", "argument --prefill-chunk: 513 is out of range: use 1 to 512"),
        ("--prefill-chunk", "ten", "argument --prefill-chunk: 'ten' is not a whole number"),
        ("--parallel", "0", "argument --parallel: 0 is out of range: use 1 to 128"),
        ("--parallel", "1000", "argument --parallel: 1000 is out of range: use 1 to 128"),
        ("--n-ctx", "0", "argument --n-ctx: 0 is out of range"),
        ("--repeat-penalty", "0.5", "argument --repeat-penalty: 0.5 is out of range: use 1.0 to 2.0"),
        ("--repeat-penalty", "nan", "argument --repeat-penalty: nan is out of range"),
        ("--dry-multiplier", "-1", "argument --dry-multiplier: -1 is out of range: use 0.0 to 5.0"),
    ],
)
@pytest.mark.parametrize("command", COMMANDS)
def test_bad_values_are_refused_in_one_line(command: str, option: str, value: str, message: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([command, option, value])
    assert exited.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"streamchat {command}: error: {message}")


def test_the_python_interface_refuses_them_too() -> None:
    with pytest.raises(ValueError, match="prompt_budget must be 1 to 512, not 0"):
        LlamaEngine(prompt_budget=0)
    with pytest.raises(ValueError, match="parallel must be 1 to 128, not 0"):
        LlamaEngine(parallel=0)
