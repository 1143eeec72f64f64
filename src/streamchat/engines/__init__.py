"""Token generators behind one small interface (`Engine`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..api.request import SAMPLING_EXTENSIONS
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

        budget = PROMPT_BUDGET if prefill_chunk is None else prefill_chunk
        return LlamaEngine(model_path, n_ctx=n_ctx, seed=seed, n_threads=n_threads,
                           parallel=parallel or DEFAULT_PARALLEL, prompt_budget=budget,
                           repeat_penalty=repeat_penalty, dry_multiplier=dry_multiplier)  # fmt: skip
    if spec.startswith("script:"):
        from .script import ScriptEngine

        path = Path(spec[len("script:") :])
        return ScriptEngine.from_file(path, chunk=script_chunk, rate=script_rate, seed=seed)
    raise ValueError(f"unknown engine {spec!r}: use 'llama' or 'script:PATH'")


# bounds the engine can honour; a value outside is refused with the range, not clamped in silence
PARALLEL_RANGE = (1, 128)  # one llama.cpp sequence (slot) per running reply: each its own KV cells
PREFILL_CHUNK_RANGE = (1, 512)  # a step's batch is at most 512 tokens
N_CTX_RANGE = (64, 1 << 20)


_KIND_NAMES = {int: "a whole number", float: "a number"}


def _ranged(kind: type[int] | type[float], low: float, high: float) -> Callable[[str], Any]:
    """An argparse type: a number of `kind` in [low, high], else a one-line error naming the range."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {_KIND_NAMES[kind]}") from None
        if not low <= value <= high:  # NaN fails this too
            shown = f"{kind(low)} to {kind(high)}"
            raise argparse.ArgumentTypeError(f"{text} is out of range: use {shown}")
        return value

    parse.__name__ = kind.__name__
    return parse


def add_engine_options(parser: argparse.ArgumentParser, *, parallel: int | None = None) -> None:
    """Options choosing and tuning the local engine (serve, and chat/ask on the built-in model);
    `parallel`: the command's own default for --parallel (None: the engine's, 8)."""
    parser.add_argument("--model-path", "--model-file", dest="model_path", metavar="PATH",
                        help="a GGUF model file (default: the built-in SmolLM2-135M-Instruct)")  # fmt: skip
    parser.add_argument("--engine", default="llama", metavar="llama|script:PATH",
                        help="the generator: llama.cpp, or a script replayed deterministically")  # fmt: skip
    parser.add_argument("--script-chunk", type=int, default=4, metavar="N",
                        help="script engine: characters per delta (0 = random 1-16, seeded)")  # fmt: skip
    parser.add_argument("--script-rate", type=float, default=0.0, metavar="R",
                        help="script engine: deltas per second (0 = as fast as possible)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="sampling / script seed")
    parser.add_argument("--n-ctx", type=_ranged(int, *N_CTX_RANGE), default=8192,
                        help="each reply's window in tokens (each --parallel slot has its own)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="llama.cpp threads (default: all cores; 1 is steadier when busy)")  # fmt: skip
    parser.add_argument("--parallel", type=_ranged(int, *PARALLEL_RANGE), default=parallel, metavar="N",
                        help=f"replies decoded at once, each with its own KV cells (default "
                             f"{parallel or 8}); more wait in line")  # fmt: skip
    parser.add_argument("--prefill-chunk", type=_ranged(int, *PREFILL_CHUNK_RANGE), default=None, metavar="N",
                        help="prompt tokens per step while other replies decode (default 8)")  # fmt: skip
    guard = SAMPLING_EXTENSIONS  # the same ranges as the request's own fields
    parser.add_argument("--repeat-penalty", type=_ranged(float, *guard["repeat_penalty"]), default=None,
                        metavar="F",
                        help="repetition penalty for requests without one (1 = off)")  # fmt: skip
    parser.add_argument("--dry-multiplier", type=_ranged(float, *guard["dry_multiplier"]), default=None,
                        metavar="F",
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
