"""The llama.cpp engine: a GGUF model (default: the built-in SmolLM2-135M-Instruct) via llama-cpp-python.

The model is loaded with the high-level `Llama` class (file, context, tokenizer, metadata); each
reply is generated with the low-level API, one `llama_decode` of one token per step and a native
sampler chain, so the per-token Python work is a handful of C calls (no logits copied to Python).

- Threads: all compute runs on one long-lived thread of the engine's (see `_ComputeThread`).
- Prompt: the GGUF file's `tokenizer.chat_template`, rendered with Jinja2 (`engines.prompt`).
- KV cache reuse: the tokens held in the cache are remembered; a new prompt only evaluates what
  follows the longest common prefix, so a multi-turn chat pays only for its new turn.
- Sampling: the request's `temperature` (API default 1.0; 0 is greedy), `top_k`, `top_p`.
- Output: UTF-8 decoded incrementally; a leading `<think>...</think>` becomes thinking; stop
  sequences cut the visible text (a possible start of one is held back) (`engines.output`).
- Structured outputs: `output_config.format` holds the text to a grammar built from its schema.
- Tools: `tool_choice` any/tool generate a call constrained by a grammar built from the input
  schemas (`engines.grammar`); `auto` lets the model answer, and turns a reply that starts with
  the call form into a constrained call; `none` leaves the tools out of the prompt.
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import math
import os
import queue
import random
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import jinja2
import llama_cpp

from ..api.errors import InvalidRequestError, new_id
from ..api.request import Block, MessagesRequest
from ..api.stream import BlockStop, Finish, Part
from ..config import builtin_model_path
from .base import EngineError
from .grammar import output_format_grammar, tool_call_grammar
from .output import JsonValueEnd, ReplyText, ToolCallReader, utf8_decoder
from .prompt import CHATML_TEMPLATE, ChatTemplate, PromptText, render_prompt

_log = logging.getLogger(__name__)
_log.addHandler(logging.NullHandler())  # without logging configured, nothing reaches stderr

_QUANT_SUFFIX = re.compile(r"[.\-_]((?:I?Q\d|TQ\d|F16|F32|BF16)[\w]*)$", re.IGNORECASE)
_LOG_LEVELS = {1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}  # ggml_log_level
_PROMPT_CHUNK = 128  # prompt tokens per decode: cancel is checked between chunks (no slower than 512)
_END = object()  # ends a job's output queue

Halted = Callable[[], bool]


@llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
def _llama_log(level: int, text: bytes, user_data: Any) -> None:
    _log.log(_LOG_LEVELS.get(level, logging.DEBUG), "%s", text.decode("utf-8", "replace").rstrip())


def _route_llama_logs() -> None:
    # llama.cpp writes its logs to stderr by default; into `logging` they stay off the terminal
    llama_cpp.llama_log_set(_llama_log, ctypes.c_void_p(0))


def model_names(path: Path) -> tuple[str, str]:
    """A stable model id and a display name from the file name (`X.Q4_1.gguf` -> `x`, `X (local, Q4_1)`)."""
    stem = path.name.removesuffix(".gguf")
    match = _QUANT_SUFFIX.search(stem)
    base = stem[: match.start()] if match else stem
    model_id = re.sub(r"[^a-z0-9._-]+", "-", base.lower()).strip("-") or "local-model"
    details = f"local, {match.group(1)}" if match else "local"
    return model_id, f"{base} ({details})"


def available_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads() -> tuple[int, int]:
    """Threads for decoding one token and for prompt batches (small models gain nothing past a few)."""
    cpus = available_cpus()
    return max(1, min(cpus, 4)), max(1, min(cpus, 8))


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    if a[:n] == b[:n]:  # the usual case (the new prompt extends the cached one), compared in C
        return n
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass(frozen=True)
class Prompt:
    """A request's rendered prompt, its tokens, and what the reply may be."""

    text: PromptText
    tokens: list[int]
    tool_mode: str  # "none" (text only) | "auto" (text, or a call the model starts) | "forced"
    tools: tuple[Block, ...]  # the tools a call may use


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


class _KVSequence:
    """The context's one sequence: the tokens in its KV cache, extended one decode at a time."""

    def __init__(self, llm: llama_cpp.Llama) -> None:
        self.ctx = llm.ctx
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.n_ctx = int(llama_cpp.llama_n_ctx(self.ctx))
        self.chunk = min(int(llm.n_batch), _PROMPT_CHUNK)
        self.tokens: list[int] = []
        self._one = (llama_cpp.llama_token * 1)()
        self._one_batch = llama_cpp.llama_batch_get_one(self._one, 1)  # reused for every generated token

    @property
    def full(self) -> bool:
        """No room for another token."""
        return len(self.tokens) >= self.n_ctx

    def load(self, prompt: Sequence[int], halted: Halted) -> bool:
        """Make the cache hold `prompt` with its last token's logits ready; False when halted."""
        if not prompt:
            raise EngineError("the prompt is empty")
        keep = _common_prefix(self.tokens, prompt)
        if keep == len(prompt):
            keep -= 1  # the last token is evaluated again: its logits start the reply
        if keep < len(self.tokens):
            if not llama_cpp.llama_memory_seq_rm(self.memory, -1, keep, -1):
                llama_cpp.llama_memory_clear(self.memory, True)  # partial removal unsupported (recurrent)
                keep = 0
            del self.tokens[keep:]
        for start in range(keep, len(prompt), self.chunk):
            if halted():
                return False
            chunk = list(prompt[start : start + self.chunk])
            array = (llama_cpp.llama_token * len(chunk))(*chunk)
            self._check(llama_cpp.llama_decode(self.ctx, llama_cpp.llama_batch_get_one(array, len(chunk))))
            self.tokens += chunk
        return True

    def push(self, token: int) -> None:
        """Evaluate one generated token."""
        self._one[0] = token
        self._check(llama_cpp.llama_decode(self.ctx, self._one_batch))
        self.tokens.append(token)

    def _check(self, status: int) -> None:
        if status != 0:
            self.reset()
            raise EngineError(f"llama_decode failed with status {status}")

    def reset(self) -> None:
        """Forget everything (after a failure the cache's content is unknown)."""
        llama_cpp.llama_memory_clear(self.memory, True)
        self.tokens = []


class _ConstrainedSampler:
    """Samples under a grammar the way llama.cpp's own sampler does: take the unconstrained choice,
    and only when the grammar rejects it sample again with the grammar applied (masking all 49k
    candidates every step costs more than the decode itself)."""

    def __init__(self, free_chain: Any, constrained_chain: Any) -> None:
        self.free_chain = free_chain
        self.chain = constrained_chain
        self.grammar = llama_cpp.llama_sampler_chain_get(constrained_chain, 0)  # owned by the chain
        self._candidate = llama_cpp.llama_token_data()
        self._array = llama_cpp.llama_token_data_array(ctypes.pointer(self._candidate), 1, -1, False)

    def sample(self, ctx: Any) -> int:
        """The next token, one the grammar accepts (and has been told about)."""
        token = int(llama_cpp.llama_sampler_sample(self.free_chain, ctx, -1))
        self._candidate.id, self._candidate.logit, self._candidate.p = llama_cpp.llama_token(token), 0.0, 0.0
        self._array.size, self._array.selected, self._array.sorted = 1, -1, False
        llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(self._array))
        if self._candidate.logit != -math.inf:
            llama_cpp.llama_sampler_accept(self.grammar, token)
            return token
        return int(llama_cpp.llama_sampler_sample(self.chain, ctx, -1))

    def free(self) -> None:
        """Free both chains (and the grammar with its chain)."""
        llama_cpp.llama_sampler_free(self.free_chain)
        llama_cpp.llama_sampler_free(self.chain)


class _TokenSteps:
    """The per-token loop both reply paths share: sample, stop at end of generation, yield the token's
    bytes, stop at `limit` tokens or a full context, else evaluate the token and go on.

    Iterate it for the bytes; `reason` then says why it ended ("end_turn", "max_tokens",
    "model_context_window_exceeded"; None when halted or when the caller stopped early, in which case
    the last token is not evaluated, as a stop should leave it).
    """

    def __init__(self, engine: LlamaEngine, sample: Callable[[], int], halted: Halted, limit: int) -> None:
        self._engine = engine
        self._sample = sample
        self._halted = halted
        self._limit = limit
        self.reason: str | None = None

    def __iter__(self) -> Iterator[bytes]:
        # the loop runs once per token: everything it touches is a local
        engine, sample, halted, limit = self._engine, self._sample, self._halted, self._limit
        seq, vocab, pieces = engine._seq, engine._vocab, engine._pieces
        is_eog = llama_cpp.llama_vocab_is_eog
        produced = 0
        while not halted():
            token = sample()
            if is_eog(vocab, token):
                self.reason = "end_turn"
                return
            produced += 1
            piece = pieces.get(token)
            yield piece if piece is not None else engine.piece(token)
            if produced >= limit:
                self.reason = "max_tokens"
                return
            if seq.full:
                self.reason = "model_context_window_exceeded"
                return
            seq.push(token)


class _ComputeThread:
    """The one thread that runs this engine's llama.cpp compute; jobs run in order, one at a time.

    OpenMP keeps a team of worker threads per calling thread, and while two teams are alive on two
    cores libgomp stops spinning at barriers: decoding gets a third slower. With every decode on this
    one thread that cannot happen (the server calls `generate` on a new thread per request), and a
    job's parts cross to the caller through a queue (a few microseconds a token).

    `first_part_pause`: after a job's first part, the thread sleeps that long before decoding on.
    When decoding occupies every core, the threads that carry the first part to the client (the
    caller's, the server's event loop, the client itself) otherwise wait for a core behind the next
    token's decode: 2 ms here saves ~5 ms of time to first token (measured through the server).
    """

    def __init__(self, first_part_pause: float = 0.0) -> None:
        self.first_part_pause = first_part_pause
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Iterator[Part]], queue.SimpleQueue[object]] | None]
        self._jobs = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="llama-compute", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], Iterator[Part]]) -> queue.SimpleQueue[object]:
        """Queue `job`; its parts, then an exception or `_END`, arrive on the returned queue."""
        out: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._jobs.put((job, out))
        return out

    def _serve(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, out = item
            pause = self.first_part_pause
            try:
                for part in job():
                    out.put(part)
                    if pause:
                        time.sleep(pause)
                        pause = 0.0
            except BaseException as exc:  # re-raised in the caller's thread
                out.put(exc)
            else:
                out.put(_END)

    def stop(self, timeout: float | None = None) -> bool:
        """End the thread after the queued jobs; True once it has ended."""
        self._jobs.put(None)
        if timeout is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()


class LlamaEngine:
    """A local GGUF model behind the `Engine` interface, one generation at a time."""

    max_concurrency: int | None = 1
    accepts_media = False

    def __init__(self, model_path: str | Path | None = None, *, n_ctx: int = 8192, seed: int = 0,
                 n_threads: int | None = None, flash_attn: bool = True) -> None:  # fmt: skip
        """Load `model_path` (None: the built-in model) with an `n_ctx`-token context.

        `flash_attn` is llama.cpp's own default (its server enables it on CPU) and decodes faster;
        llama-cpp-python turns it off unless asked. `seed` seeds the per-request sampling seeds.
        """
        path = Path(model_path) if model_path is not None else builtin_model_path()
        if not path.is_file():
            raise FileNotFoundError(f"no model file at {path}")
        _route_llama_logs()
        threads, batch_threads = default_threads()
        self._llm = llama_cpp.Llama(
            str(path), n_ctx=n_ctx, n_threads=n_threads or threads,
            n_threads_batch=n_threads or batch_threads, flash_attn=flash_attn, verbose=False,
        )  # fmt: skip
        self.model_path = str(path)
        self.model_id, self.display_name = model_names(path)
        self._vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        self._seq = _KVSequence(self._llm)
        self.context_window = self._seq.n_ctx
        self.template = ChatTemplate(
            str(self._llm.metadata.get("tokenizer.chat_template") or CHATML_TEMPLATE),
            bos_token=self._token_text(llama_cpp.llama_vocab_bos(self._vocab)),
            eos_token=self._token_text(llama_cpp.llama_vocab_eos(self._vocab)),
        )
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        self._seeds = random.Random(seed)  # a reproducible series of per-request seeds
        decode_threads = int(self._llm.n_threads)
        self._compute = _ComputeThread(first_part_pause=0.002 if decode_threads >= available_cpus() else 0.0)
        weakref.finalize(self, self._compute.stop)  # an engine dropped without close() ends its thread
        self._closed = False
        self._pieces: dict[int, bytes] = {}
        self._piece_buffer = ctypes.create_string_buffer(256)
        self._memo: tuple[MessagesRequest, Prompt] | None = None
        self._grammars: dict[str, str] = {}
        self._warm_up()

    def _warm_up(self) -> None:
        # the first decode allocates buffers and starts threads: pay it at load, not in the first reply,
        # and leave the template's opening (e.g. a default system prompt) in the cache for reuse
        try:
            head = self.template.render([{"role": "user", "content": "\x00"}]).split("\x00")[0]
        except (jinja2.TemplateError, ValueError):
            head = ""
        tokens = self.tokenize(head)[: self.context_window - 1] or [
            max(0, llama_cpp.llama_vocab_bos(self._vocab))
        ]

        def load() -> Iterator[Part]:
            self._seq.load(tokens, lambda: False)
            yield from ()

        if isinstance(failure := self._compute.submit(load).get(), Exception):
            _log.warning("warm-up failed: %s", failure)  # the first request will report it

    # -- prompt ----------------------------------------------------------------------------------

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return bytes(llama_cpp.llama_vocab_get_text(self._vocab, token) or b"").decode("utf-8", "replace")

    def tokenize(self, text: str) -> list[int]:
        """Tokens of a rendered prompt (special tokens written as text are parsed as such)."""
        bos = self.template.bos_token
        add_bos = self._add_bos and not (bos and text.startswith(bos))
        tokens: list[int] = self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)
        return tokens

    def prompt(self, request: MessagesRequest) -> Prompt:
        """The request's prompt (the last one is remembered: the server counts, then generates)."""
        if self._closed:
            raise EngineError("the engine is closed")
        memo = self._memo
        if memo is not None and memo[0] is request:
            return memo[1]
        mode, tools = tool_plan(request)
        try:
            text = render_prompt(self.template, request, with_tools=mode != "none")
        except (jinja2.TemplateError, ValueError) as exc:
            raise InvalidRequestError(f"the model's chat template refused this conversation: {exc}") from None
        prompt = Prompt(text, self.tokenize(text.text), mode, tools)
        self._memo = (request, prompt)
        return prompt

    def count_tokens(self, request: MessagesRequest) -> int:
        """Exact input tokens: the whole rendered prompt, template and tools included."""
        return len(self.prompt(request).tokens)

    # -- generation ------------------------------------------------------------------------------

    def piece(self, token: int) -> bytes:
        """The token's bytes (remembered: most tokens recur)."""
        buffer = self._piece_buffer
        size = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, False)
        if size < 0:
            buffer = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, False)
        piece = self._pieces[token] = buffer.raw[:size]
        return piece

    def _sampler(self, request: MessagesRequest, grammar: str | None = None) -> Any:
        params = llama_cpp.llama_sampler_chain_default_params()
        params.no_perf = True
        chain = llama_cpp.llama_sampler_chain_init(params)
        if grammar is not None:  # first: the others then only see tokens the grammar allows
            constraint = llama_cpp.llama_sampler_init_grammar(self._vocab, grammar.encode(), b"root")
            if not constraint:
                llama_cpp.llama_sampler_free(chain)
                raise EngineError("llama.cpp rejected the grammar")
            llama_cpp.llama_sampler_chain_add(chain, constraint)
        temperature = 1.0 if request.temperature is None else request.temperature
        if temperature <= 0:
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
            return chain
        if request.top_k:  # before temperature: same result (it keeps an order), fewer candidates after
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_top_k(request.top_k))
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_temp(temperature))
        if request.top_p is not None and request.top_p < 1.0:  # nucleus of the tempered distribution
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_top_p(request.top_p, 1))
        seed = self._seeds.getrandbits(32)
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_dist(seed))
        return chain

    def generate(self, request: MessagesRequest, cancel: threading.Event) -> Iterator[Part]:
        """Stream the reply: text/thinking deltas, or one tool call; then `Finish` (none if cancelled).

        The work runs on the engine's compute thread; closing this generator early stops it there
        within a token, and the next generation waits for that.
        """
        prompt = self.prompt(request)
        left = threading.Event()  # the caller stopped iterating

        def halted() -> bool:
            return cancel.is_set() or left.is_set()

        out = self._compute.submit(lambda: self._run(request, prompt, halted))
        try:
            while (item := out.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                if halted():
                    return
                yield cast(Part, item)
        finally:
            left.set()

    def _run(self, request: MessagesRequest, prompt: Prompt, halted: Halted) -> Iterator[Part]:
        if len(prompt.tokens) >= self.context_window:
            yield Finish("model_context_window_exceeded", 0)
        elif prompt.tool_mode == "forced":
            yield from self._call(request, prompt, halted, 0)
        else:
            yield from self._reply(request, prompt, halted)

    def _reply(self, request: MessagesRequest, prompt: Prompt, halted: Halted) -> Iterator[Part]:
        detect = prompt.tool_mode == "auto" and not prompt.text.prefill and request.output_format is None
        reply = ReplyText(stops=request.stop_sequences, thinking=prompt.text.in_thinking,
                          tool_names=[str(t["name"]) for t in prompt.tools] if detect else ())  # fmt: skip
        # structured outputs: the text path, with a sampler held to the format's grammar
        formatted = self._format_sampler(request) if request.output_format is not None else None
        sampler = formatted.free_chain if formatted is not None else self._sampler(request)
        produced = 0
        try:
            if not self._seq.load(prompt.tokens, halted):
                return
            ctx = self._seq.ctx
            sample = functools.partial(llama_cpp.llama_sampler_sample, sampler, ctx, -1)
            if formatted is not None:
                sample = functools.partial(formatted.sample, ctx)
            ended = JsonValueEnd() if formatted is not None else None
            steps = _TokenSteps(self, sample, halted, request.max_tokens)
            decode, feed = utf8_decoder().decode, reply.feed
            for piece in steps:
                produced += 1
                text = decode(piece)
                yield from feed(text)
                if reply.stop_sequence is not None:
                    yield Finish("stop_sequence", produced, reply.stop_sequence)
                    return
                if reply.called or (ended is not None and ended.feed(text) is not None):
                    break
            else:
                if steps.reason is None:  # halted
                    return
        finally:
            if formatted is not None:
                formatted.free()
            else:
                llama_cpp.llama_sampler_free(sampler)
        if not reply.called:
            yield from feed(decode(b"", True))
            yield from reply.flush()  # may still find the start of a call in what it held
        if reply.called:  # the reply began a call: generate it again, constrained to a valid one
            yield from self._call(request, prompt, halted, produced)
        elif reply.stop_sequence is not None:
            yield Finish("stop_sequence", produced, reply.stop_sequence)
        else:
            yield Finish(steps.reason or "end_turn", produced)

    def _grammar(self, tools: tuple[Block, ...]) -> str:
        key = repr(tools)
        grammar = self._grammars.get(key)
        if grammar is None:
            if len(self._grammars) > 32:
                self._grammars.clear()
            grammar = self._grammars[key] = tool_call_grammar(tools)
        return grammar

    def _format_sampler(self, request: MessagesRequest) -> _ConstrainedSampler:
        """Samplers for a reply held to `output_config.format` (the grammar is built once per schema)."""
        schema = request.output_format or {}
        key = "format:" + json.dumps(schema, sort_keys=True)
        grammar = self._grammars.get(key)
        if grammar is None:
            if len(self._grammars) > 32:
                self._grammars.clear()
            grammar = self._grammars[key] = output_format_grammar(schema)
        return _ConstrainedSampler(self._sampler(request), self._sampler(request, grammar))

    def _call(
        self, request: MessagesRequest, prompt: Prompt, halted: Halted, produced: int
    ) -> Iterator[Part]:
        """One tool call, `{"name": ..., "input": ...}` under a grammar, streamed as tool_use parts."""
        reader = ToolCallReader(new_id("toolu_"))
        sampler = _ConstrainedSampler(
            self._sampler(request), self._sampler(request, self._grammar(prompt.tools))
        )
        try:
            if not self._seq.load(prompt.tokens, halted):
                return
            ctx = self._seq.ctx
            steps = _TokenSteps(self, lambda: sampler.sample(ctx), halted, request.max_tokens - produced)
            decode = utf8_decoder().decode
            for piece in steps:
                produced += 1
                yield from reader.feed(decode(piece))
                if reader.done:
                    break
            else:
                if steps.reason is None:  # halted
                    return
        finally:
            sampler.free()
        if reader.name is not None:
            yield BlockStop()
        yield Finish("tool_use" if reader.done else steps.reason or "end_turn", produced)

    def close(self) -> None:
        """Free the model (after the running generation, if any, has stopped)."""
        if self._closed:
            return
        self._closed = True
        if self._compute.stop(timeout=10):
            self._llm.close()
        else:  # a generation still runs: freeing under it would crash the process
            _log.warning("the model was not freed: a generation did not stop within 10 s")
