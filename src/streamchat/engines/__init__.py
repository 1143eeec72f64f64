"""Token generators behind one small interface (`Engine`)."""

from __future__ import annotations

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
) -> Engine:
    """Build an engine from `llama` or `script:PATH`."""
    if spec == "llama":
        from .llama import LlamaEngine

        return LlamaEngine(model_path, n_ctx=n_ctx, seed=seed)
    if spec.startswith("script:"):
        from .script import ScriptEngine

        path = Path(spec[len("script:") :])
        return ScriptEngine.from_file(path, chunk=script_chunk, rate=script_rate, seed=seed)
    raise ValueError(f"unknown engine {spec!r}: use 'llama' or 'script:PATH'")


__all__ = ["Engine", "EngineError", "load_engine"]
