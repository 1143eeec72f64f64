"""Sampling settings for the llama.cpp engine: what a request gets, and the native chains that do it.

A request's `temperature`, `top_p` and `top_k` are used exactly as given (temperature 0 is greedy);
each one it leaves out comes from the model's defaults (`model_defaults`): the GGUF file's
`general.sampling.*` metadata when it has some, the model card's settings for SmolLM2 (the
built-in model), else llama.cpp's usual defaults. The API's own default (temperature 1.0, no
truncation) suits Claude, not a 135M model, which drifts into random words at 1.0.

On top, a repetition guard: llama.cpp's repetition penalty (`repeat_penalty`, 1 = off) and its DRY
sampler (`dry_multiplier`, 0 = off), from the request's extra body fields, else the server's
options, else the model's default. Greedy stays plain greedy unless the request itself asks for a
guard, and tool calls (a grammar already keeps them on track) are sampled without it.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import llama_cpp

from ..api.request import MessagesRequest
from .base import EngineError

DRY_BREAKERS = ("\n", ":", '"', "*")  # llama.cpp's default sequence breakers for DRY


@dataclass(frozen=True)
class Sampling:
    """Resolved settings of one reply (0 / 1.0 turn a stage off, as in llama.cpp)."""

    temperature: float  # 0 = greedy
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    repeat_penalty: float = 1.0  # divides the logits of tokens seen in the last `repeat_last_n`
    repeat_last_n: int = 64
    dry_multiplier: float = 0.0  # DRY: penalises extending a sequence that already occurred
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    dry_last_n: int = 1024  # generated tokens it looks back over (llama.cpp: 0 turns DRY off)

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    @property
    def guarded(self) -> bool:
        return self.repeat_penalty != 1.0 or self.dry_multiplier > 0

    def unguarded(self) -> Sampling:
        """The same without the repetition guard (for grammar-constrained tool calls)."""
        return replace(self, repeat_penalty=1.0, dry_multiplier=0.0)


@dataclass(frozen=True)
class Guard:
    """Repetition-guard strengths set by the server's options (None: the model's default)."""

    repeat_penalty: float | None = None
    dry_multiplier: float | None = None


# llama.cpp's common defaults (common/common.h), for a model that suggests nothing
LLAMA_CPP_DEFAULTS = Sampling(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05)
# SmolLM2-Instruct's model card: temperature 0.2, top_p 0.9 (with transformers' default top_k 50,
# which those settings assume), plus a repetition guard: without one it loops (see docs/benchmarks.md)
SMOLLM2_DEFAULTS = Sampling(temperature=0.2, top_k=50, top_p=0.9, repeat_penalty=1.1, repeat_last_n=64)

_METADATA_KEYS: dict[str, tuple[str, type]] = {
    "general.sampling.temp": ("temperature", float),
    "general.sampling.top_k": ("top_k", int),
    "general.sampling.top_p": ("top_p", float),
    "general.sampling.min_p": ("min_p", float),
    "general.sampling.penalty_repeat": ("repeat_penalty", float),
    "general.sampling.penalty_last_n": ("repeat_last_n", int),
}


def model_defaults(metadata: Mapping[str, str]) -> tuple[Sampling, str]:
    """The model's default sampling and where it comes from (for the logs and the docs)."""
    suggested: dict[str, Any] = {}
    for key, (field, kind) in _METADATA_KEYS.items():
        raw = metadata.get(key)
        if raw is None:
            continue
        try:
            value = kind(float(raw))
        except ValueError:
            continue
        if math.isfinite(value):
            suggested[field] = value
    if suggested:
        return replace(LLAMA_CPP_DEFAULTS, **suggested), "the model file's general.sampling metadata"
    names = " ".join(str(metadata.get(k, "")) for k in ("general.basename", "general.name")).lower()
    if "smollm2" in names:
        return SMOLLM2_DEFAULTS, "the SmolLM2 model card"
    return LLAMA_CPP_DEFAULTS, "llama.cpp's defaults"


def resolve(request: MessagesRequest, defaults: Sampling, guard: Guard = Guard()) -> Sampling:
    """The settings `request` gets: its own values where given, else the defaults (see the module)."""
    temperature = defaults.temperature if request.temperature is None else request.temperature
    settings = replace(
        defaults,
        temperature=temperature,
        top_k=defaults.top_k if request.top_k is None else request.top_k,
        top_p=defaults.top_p if request.top_p is None else request.top_p,
    )
    asked_penalty = request.extra.get("repeat_penalty")
    asked_dry = request.extra.get("dry_multiplier")
    if temperature <= 0 and request.temperature is not None:  # greedy asked for: no guard unless asked too
        settings = settings.unguarded()
    else:
        if guard.repeat_penalty is not None:
            settings = replace(settings, repeat_penalty=guard.repeat_penalty)
        if guard.dry_multiplier is not None:
            settings = replace(settings, dry_multiplier=guard.dry_multiplier)
    if asked_penalty is not None:
        settings = replace(settings, repeat_penalty=float(asked_penalty))
    if asked_dry is not None:
        settings = replace(settings, dry_multiplier=float(asked_dry))
    return settings


def _add(chain: Any, stage: Any) -> None:
    if not stage:
        raise EngineError("llama.cpp refused a sampler stage")
    llama_cpp.llama_sampler_chain_add(chain, stage)


def build_chain(vocab: Any, settings: Sampling, seed: int, grammar: str | None = None) -> Any:
    """A native sampler chain for `settings` (the caller frees it with `llama_sampler_free`).

    Order: grammar (the rest then only sees tokens it allows), top-k (so the penalties look at
    few candidates), penalties, DRY, temperature, top-p and min-p on the tempered distribution
    (as transformers applies a model card's settings), then the seeded draw; greedy is an argmax.
    """
    params = llama_cpp.llama_sampler_chain_default_params()
    params.no_perf = True
    chain = llama_cpp.llama_sampler_chain_init(params)
    try:
        if grammar is not None:
            constraint = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
            if not constraint:
                raise EngineError("llama.cpp rejected the tool call grammar")
            llama_cpp.llama_sampler_chain_add(chain, constraint)
        if settings.top_k > 0 and not (settings.greedy and not settings.guarded):
            _add(chain, llama_cpp.llama_sampler_init_top_k(settings.top_k))
        if settings.repeat_penalty != 1.0:
            n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
            _add(chain, llama_cpp.llama_sampler_init_penalties(
                n_vocab, settings.repeat_last_n, settings.repeat_penalty, 0.0, 0.0))  # fmt: skip
        if settings.dry_multiplier > 0:
            breakers = (ctypes.c_char_p * len(DRY_BREAKERS))(*(b.encode() for b in DRY_BREAKERS))
            _add(chain, llama_cpp.llama_sampler_init_dry(
                vocab, settings.dry_multiplier, settings.dry_base, settings.dry_allowed_length,
                settings.dry_last_n, breakers, len(DRY_BREAKERS)))  # fmt: skip
        if settings.greedy:
            _add(chain, llama_cpp.llama_sampler_init_greedy())
            return chain
        _add(chain, llama_cpp.llama_sampler_init_temp(settings.temperature))
        if settings.top_p < 1.0:
            _add(chain, llama_cpp.llama_sampler_init_top_p(settings.top_p, 1))
        if settings.min_p > 0:
            _add(chain, llama_cpp.llama_sampler_init_min_p(settings.min_p, 1))
        _add(chain, llama_cpp.llama_sampler_init_dist(seed))
    except BaseException:
        llama_cpp.llama_sampler_free(chain)
        raise
    return chain


class Sampler:
    """One sequence's sampler: a native chain, sampled at the sequence's row of the last batch."""

    def __init__(self, chain: Any) -> None:
        self.chain = chain

    def sample(self, ctx: Any, row: int) -> int:
        """The next token from the logits at `row` (the chain records it)."""
        return int(llama_cpp.llama_sampler_sample(self.chain, ctx, row))

    def free(self) -> None:
        """Free the native chain."""
        llama_cpp.llama_sampler_free(self.chain)


class ConstrainedSampler(Sampler):
    """Samples under a grammar the way llama.cpp's own sampler does: take the unconstrained choice,
    and only when the grammar rejects it sample again with the grammar applied (masking all 49k
    candidates every step costs more than the decode itself). Both chains see every chosen token."""

    def __init__(self, free_chain: Any, constrained_chain: Any) -> None:
        super().__init__(constrained_chain)
        self.free_chain = free_chain
        self.grammar = llama_cpp.llama_sampler_chain_get(constrained_chain, 0)  # owned by the chain
        self._candidate = llama_cpp.llama_token_data()
        self._array = llama_cpp.llama_token_data_array(ctypes.pointer(self._candidate), 1, -1, False)

    def sample(self, ctx: Any, row: int) -> int:
        """The next token at `row`, one the grammar accepts (and has been told about)."""
        token = int(llama_cpp.llama_sampler_sample(self.free_chain, ctx, row))
        self._candidate.id, self._candidate.logit, self._candidate.p = llama_cpp.llama_token(token), 0.0, 0.0
        self._array.size, self._array.selected, self._array.sorted = 1, -1, False
        llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(self._array))
        if self._candidate.logit != -math.inf:
            llama_cpp.llama_sampler_accept(self.chain, token)
            return token
        token = int(llama_cpp.llama_sampler_sample(self.chain, ctx, row))
        llama_cpp.llama_sampler_accept(self.free_chain, token)  # its history stays the reply's
        return token

    def free(self) -> None:
        """Free both chains (and the grammar with its chain)."""
        llama_cpp.llama_sampler_free(self.free_chain)
        llama_cpp.llama_sampler_free(self.chain)
