"""The llama.cpp engine: a GGUF model (default: the built-in SmolLM2-135M-Instruct), many replies at once.

- Batching: up to `parallel` replies are decoded together, one `llama_decode` per step for all of
  them, on one compute thread (`engines.batching`); each reply's state is one `ReplySequence`
  (`engines.sequence`), sampled by its own native chain at its own batch row (`engines.sampling`).
- Prompt: the GGUF file's `tokenizer.chat_template`, rendered with Jinja2 (`engines.prompt`).
- KV cache reuse: a new reply starts from the slot whose cached tokens share the longest prefix
  with its prompt, so a follow-up chat turn pays only for its new tokens.
- Sampling: the request's `temperature` / `top_p` / `top_k` where given, else the model's
  recommended settings, plus a repetition guard (`engines.sampling`).
- Output: UTF-8 decoded incrementally; a leading `<think>...</think>` becomes thinking; stop
  sequences cut the visible text (a possible start of one is held back) (`engines.output`).
- Structured outputs: `output_config.format` holds the text to a grammar built from its schema.
- Tools: `tool_choice` any/tool generate a call constrained by a grammar built from the input
  schemas (`engines.grammar`); `auto` lets the model answer, and turns a reply that starts with
  the call form into a constrained call; `none` leaves the tools out of the prompt.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import jinja2

from ..api.errors import InvalidRequestError
from ..api.request import Block, MessagesRequest
from ..api.stream import Finish, Part
from ..config import builtin_model_path
from . import PARALLEL_RANGE, PREFILL_CHUNK_RANGE
from .base import EngineError
from .batching import BatchScheduler, KVStats
from .grammar import output_format_grammar, tool_call_grammar
from .llama_model import LoadedModel, available_cpus, default_threads
from .prompt import CHATML_TEMPLATE, ChatTemplate, render_prompt
from .sampling import ConstrainedSampler, Guard, Sampler, Sampling, build_chain, model_defaults, resolve
from .sequence import END, Prompt, ReplySequence

__all__ = ["DEFAULT_PARALLEL", "LlamaEngine", "Prompt", "available_cpus", "default_threads", "model_names",
           "tool_plan"]  # fmt: skip

_log = logging.getLogger(__name__)
_log.addHandler(logging.NullHandler())

_QUANT_SUFFIX = re.compile(r"[.\-_]((?:I?Q\d|TQ\d|F16|F32|BF16)[\w]*)$", re.IGNORECASE)
DEFAULT_PARALLEL = 8  # replies decoded at once (see docs/benchmarks.md, "Many conversations at once")
PROMPT_BUDGET = 8  # prompt tokens per step while other replies decode (docs/benchmarks.md, prefill fairness)
N_BATCH = 512  # tokens per decode at most (llama.cpp's default)


def model_names(path: Path) -> tuple[str, str]:
    """A stable model id and a display name from the file name (`X.Q4_1.gguf` -> `x`, `X (local, Q4_1)`)."""
    stem = path.name.removesuffix(".gguf")
    match = _QUANT_SUFFIX.search(stem)
    base = stem[: match.start()] if match else stem
    model_id = re.sub(r"[^a-z0-9._-]+", "-", base.lower()).strip("-") or "local-model"
    details = f"local, {match.group(1)}" if match else "local"
    return model_id, f"{base} ({details})"


def tool_plan(request: MessagesRequest) -> tuple[str, tuple[Block, ...]]:
    """The tool mode and the tools a call may use, from `tools` and `tool_choice`."""
    if not request.tools:
        return "none", ()
    choice = (request.tool_choice or {}).get("type", "auto")
    if choice == "none":
        return "none", ()
    if choice == "any" and not request.prefill:
        return "forced", request.tools
    if choice == "tool" and not request.prefill:
        name = (request.tool_choice or {}).get("name")
        return "forced", tuple(t for t in request.tools if t.get("name") == name)
    return "auto", request.tools  # a prefilled reply is text that continues: no forced call


class LlamaEngine:
    """A local GGUF model behind the `Engine` interface, up to `parallel` replies decoded together."""

    accepts_media = False

    def __init__(self, model_path: str | Path | None = None, *, n_ctx: int = 8192, seed: int = 0,
                 n_threads: int | None = None, flash_attn: bool = True, parallel: int = DEFAULT_PARALLEL,
                 prompt_budget: int = PROMPT_BUDGET, repeat_penalty: float | None = None,
                 dry_multiplier: float | None = None) -> None:  # fmt: skip
        """Load `model_path` (None: the built-in model) with `parallel` slots of `n_ctx` KV cells.

        `n_ctx` is each reply's window; each slot has its own cells, so the KV cache holds
        `parallel` x `n_ctx` cells (23 KB a cell for the built-in model: 1.4 GiB at 8 x 8192).
        `parallel` replies are decoded at once (more wait in line); `repeat_penalty` and
        `dry_multiplier` set the repetition guard for requests that leave it out (None: the model's).
        `flash_attn` is llama.cpp's own default and decodes faster; `seed` seeds per-request seeds.
        """
        for name, value, (low, high) in (("parallel", parallel, PARALLEL_RANGE),
                                         ("prompt_budget", prompt_budget, PREFILL_CHUNK_RANGE)):  # fmt: skip
            if not low <= value <= high:
                raise ValueError(f"{name} must be {low} to {high}, not {value}")
        path = Path(model_path) if model_path is not None else builtin_model_path()
        if not path.is_file():
            raise FileNotFoundError(f"no model file at {path}")
        threads, batch_threads = default_threads()
        self._model = LoadedModel(
            path, n_ctx=n_ctx, n_seq_max=parallel, n_batch=N_BATCH,
            n_threads=n_threads or threads, n_threads_batch=n_threads or batch_threads, flash_attn=flash_attn,
        )  # fmt: skip
        self.model_path = str(path)
        self.model_id, self.display_name = model_names(path)
        self.max_concurrency: int | None = parallel
        self.prompt_budget = prompt_budget  # prompt tokens per step while other replies decode
        self.context_window = self._model.n_ctx
        model = self._model
        self.template = ChatTemplate(
            model.metadata.get("tokenizer.chat_template") or CHATML_TEMPLATE,
            bos_token=model.token_text(model.bos), eos_token=model.token_text(model.eos),
        )  # fmt: skip
        self.sampling_defaults, self.sampling_source = model_defaults(model.metadata)
        self._guard = Guard(repeat_penalty, dry_multiplier)
        self._seeds = random.Random(seed)  # a reproducible series of per-request seeds
        self._seed_lock = threading.Lock()
        busy = (n_threads or threads) >= available_cpus()
        self._scheduler = BatchScheduler(model, parallel=parallel, prompt_budget=prompt_budget,
                                         first_part_pause=0.002 if busy else 0.0)  # fmt: skip
        weakref.finalize(self, self._scheduler.stop)  # an engine dropped without close() ends its thread
        self._closed = False
        self._memo: deque[tuple[MessagesRequest, Prompt]] = deque(maxlen=32)
        self._grammars: dict[str, str] = {}
        self._warm_up()

    def _warm_up(self) -> None:
        # the template's opening (e.g. a default system prompt) stays cached: new replies share it
        try:
            head = self.template.render([{"role": "user", "content": "\x00"}]).split("\x00")[0]
        except (jinja2.TemplateError, ValueError):
            head = ""
        tokens = self.tokenize(head)[: self.context_window - 1] or [max(0, self._model.bos)]
        try:
            self._scheduler.preload(tokens)
        except EngineError as exc:
            _log.warning("warm-up failed: %s", exc)  # the first request will report it

    # -- prompt ----------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        """Tokens of a rendered prompt (special tokens written as text are parsed as such)."""
        bos = self.template.bos_token
        return self._model.tokenize(text, add_bos=self._model.add_bos and not (bos and text.startswith(bos)))

    def prompt(self, request: MessagesRequest) -> Prompt:
        """The request's prompt (recent ones are remembered: the server counts, then generates)."""
        if self._closed:
            raise EngineError("the engine is closed")
        for seen, prompt in reversed(list(self._memo)):  # several requests may be between count and generate
            if seen is request:
                return prompt
        mode, tools = tool_plan(request)
        try:
            text = render_prompt(self.template, request, with_tools=mode != "none")
        except (jinja2.TemplateError, ValueError) as exc:
            raise InvalidRequestError(f"the model's chat template refused this conversation: {exc}") from None
        prompt = Prompt(text, self.tokenize(text.text), mode, tools)
        self._memo.append((request, prompt))
        return prompt

    def count_tokens(self, request: MessagesRequest) -> int:
        """Exact input tokens: the whole rendered prompt, template and tools included."""
        return len(self.prompt(request).tokens)

    # -- generation ------------------------------------------------------------------------------

    def sampling(self, request: MessagesRequest) -> Sampling:
        """The sampling settings a reply to `request` gets (request, else server options, else model)."""
        return resolve(request, self.sampling_defaults, self._guard)

    def _seed(self) -> int:
        with self._seed_lock:
            return self._seeds.getrandbits(32)

    def _grammar(self, key: str, build: Callable[[], str]) -> str:
        grammar = self._grammars.get(key)
        if grammar is None:
            if len(self._grammars) > 32:
                self._grammars.clear()
            grammar = self._grammars[key] = build()
        return grammar

    def _constrained(self, settings: Sampling, grammar: str) -> ConstrainedSampler:
        """Samplers held to `grammar`, without the repetition guard (the grammar keeps them on track)."""
        vocab, plain, seed = self._model.vocab, settings.unguarded(), self._seed()
        free = build_chain(vocab, plain, seed)
        try:
            constrained = build_chain(vocab, plain, seed, grammar)
        except BaseException:
            Sampler(free).free()
            raise
        return ConstrainedSampler(free, constrained)

    def _call_sampler(self, settings: Sampling, tools: tuple[Block, ...]) -> Sampler:
        return self._constrained(settings, self._grammar(repr(tools), lambda: tool_call_grammar(tools)))

    def _format_sampler(self, settings: Sampling, schema: dict[str, Any]) -> Sampler:
        """Samplers for a reply held to `output_config.format` (the grammar is built once per schema)."""
        key = "format:" + json.dumps(schema, sort_keys=True)
        return self._constrained(settings, self._grammar(key, lambda: output_format_grammar(schema)))

    def generate(self, request: MessagesRequest, cancel: threading.Event) -> Iterator[Part]:
        """Stream the reply: text/thinking deltas, or one tool call; then `Finish` (none if cancelled).

        The reply is decoded on the engine's compute thread together with the others; closing this
        generator early drops it there before the next step.
        """
        prompt = self.prompt(request)
        if len(prompt.tokens) >= self.context_window:
            yield Finish("model_context_window_exceeded", 0)
            return
        settings = self.sampling(request)
        if prompt.tool_mode == "forced":
            sampler = self._call_sampler(settings, prompt.tools)
        elif request.output_format is not None:
            sampler = self._format_sampler(settings, request.output_format)
        else:
            sampler = Sampler(build_chain(self._model.vocab, settings, self._seed()))
        left = threading.Event()  # the caller stopped iterating

        def halted() -> bool:
            return cancel.is_set() or left.is_set()

        seq = ReplySequence(request, prompt, sampler, halted=halted, window=self.context_window,
                            call_sampler=lambda: self._call_sampler(settings, prompt.tools))  # fmt: skip
        self._scheduler.submit(seq)
        get = seq.out.get
        try:
            while (item := get()) is not END:
                if isinstance(item, BaseException):
                    raise item
                if halted():
                    return
                yield cast(Part, item)
        finally:
            left.set()

    def kv_stats(self) -> KVStats:
        """The KV cells: cached per slot, held by running replies, and their consistency."""
        return self._scheduler.stats()

    def close(self) -> None:
        """Free the model (after the running replies, if any, have stopped)."""
        if self._closed:
            return
        self._closed = True
        if self._scheduler.stop(timeout=10):
            self._scheduler.free()
            self._model.close()
        else:  # a reply still runs: freeing under it would crash the process
            _log.warning("the model was not freed: a generation did not stop within 10 s")
