"""Token generators behind one small interface (`Engine`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .base import Engine, EngineError


def load_engine(
    spec: str,
    *,
    model_path: str | Path | None = None,
    script_chunk: int = 4,
    script_rate: float = 0.0,
    seed: int = 0,
    n_ctx: int = 8192,
    n_threads: int | None = None,
    parallel: int | None = None,
    repeat_penalty: float | None = None,
    dry_multiplier: float | None = None,
    prefill_chunk: int | None = None,
) -> Engine:
    """Build an engine from `llama` or `script:PATH` (`parallel` None: the llama engine's default)."""
    if spec == "llama":
        from .llama import DEFAULT_PARALLEL, PROMPT_BUDGET, LlamaEngine

        budget = prefill_chunk or PROMPT_BUDGET
        return LlamaEngine(model_path, n_ctx=n_ctx, seed=seed, n_threads=n_threads,
                           parallel=parallel or DEFAULT_PARALLEL, prompt_budget=budget,
                           repeat_penalty=repeat_penalty, dry_multiplier=dry_multiplier)  # fmt: skip
    if spec.startswith("script:"):
        from .script import ScriptEngine

        path = Path(spec[len("script:") :])
        return ScriptEngine.from_file(path, chunk=script_chunk, rate=script_rate, seed=seed)
    raise ValueError(f"unknown engine {spec!r}: use 'llama' or 'script:PATH'")


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """Options choosing and tuning the local engine (serve, and chat/ask on the built-in model)."""
    parser.add_argument("--model-path", "--model-file", dest="model_path", metavar="PATH",
                        help="a GGUF model file (default: the built-in SmolLM2-135M-Instruct)")  # fmt: skip
    parser.add_argument("--engine", default="llama", metavar="llama|script:PATH",
                        help="the generator: llama.cpp, or a script replayed deterministically")  # fmt: skip
    parser.add_argument("--script-chunk", type=int, default=4, metavar="N",
                        help="script engine: characters per delta (0 = random 1-16, seeded)")  # fmt: skip
    parser.add_argument("--script-rate", type=float, default=0.0, metavar="R",
                        help="script engine: deltas per second (0 = as fast as possible)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="sampling / script seed")
    parser.add_argument("--n-ctx", type=int, default=8192,
                        help="llama.cpp KV cells: each reply's window, shared by all replies")  # fmt: skip
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="llama.cpp threads (default: all cores; 1 is steadier when busy)")  # fmt: skip
    parser.add_argument("--parallel", type=_at_least_one, default=None, metavar="N",
                        help="replies decoded at once (default 4); more wait in line")  # fmt: skip
    parser.add_argument("--prefill-chunk", type=_at_least_one, default=None, metavar="N",
                        help="prompt tokens per step while other replies decode (default 64)")  # fmt: skip
    parser.add_argument("--repeat-penalty", type=float, default=None, metavar="F",
                        help="repetition penalty for requests without one (1 = off)")  # fmt: skip
    parser.add_argument("--dry-multiplier", type=float, default=None, metavar="F",
                        help="DRY repetition guard for requests without one (0 = off)")  # fmt: skip


def engine_from_args(args: argparse.Namespace) -> Engine:
    """`load_engine` with the options `add_engine_options` added (defaults where a parser has none)."""
    return load_engine(getattr(args, "engine", "llama"), model_path=getattr(args, "model_path", None),
                       script_chunk=getattr(args, "script_chunk", 4),
                       script_rate=getattr(args, "script_rate", 0.0), seed=getattr(args, "seed", 0),
                       n_ctx=getattr(args, "n_ctx", 8192),
                       n_threads=getattr(args, "threads", None), parallel=getattr(args, "parallel", None),
                       repeat_penalty=getattr(args, "repeat_penalty", None),
                       dry_multiplier=getattr(args, "dry_multiplier", None),
                       prefill_chunk=getattr(args, "prefill_chunk", None))  # fmt: skip


__all__ = ["Engine", "EngineError", "add_engine_options", "engine_from_args", "load_engine"]
