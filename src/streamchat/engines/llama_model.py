"""A GGUF model loaded through llama.cpp's C API: weights, vocabulary, metadata, one context.

The engine talks to llama.cpp directly (llama-cpp-python's ctypes bindings) rather than through
the high-level `Llama` class, because serving several sequences needs context settings that class
does not expose (`n_seq_max`, `kv_unified`) and nothing else it does (its own batch, its own cache).

The KV cache is split per sequence (`kv_unified` off): each of the `n_seq_max` sequences has its
own buffer of `n_ctx` cells, so every reply gets the whole window, and a sequence's attention reads
only its own cells. One shared pool (unified) let long and short replies share cells, but every
row of a batched step then attends over the cells of all sequences: measured here, an 8-row decode
step took 20-26% longer on one pool than on per-sequence buffers (docs/benchmarks.md).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from pathlib import Path
from typing import Any

import llama_cpp

_log = logging.getLogger("streamchat.engines.llama")
_log.addHandler(logging.NullHandler())  # without logging configured, nothing reaches stderr

_LOG_LEVELS = {1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}  # ggml_log_level
_backend = threading.Lock()
_backend_ready = False


@llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
def _llama_log(level: int, text: bytes, user_data: Any) -> None:
    _log.log(_LOG_LEVELS.get(level, logging.DEBUG), "%s", text.decode("utf-8", "replace").rstrip())


def _init_backend() -> None:
    global _backend_ready
    with _backend:
        if not _backend_ready:
            # llama.cpp writes its logs to stderr by default; into `logging` they stay off the terminal
            llama_cpp.llama_log_set(_llama_log, ctypes.c_void_p(0))
            llama_cpp.llama_backend_init()
            _backend_ready = True


_amx: bool | None = None
# llama.cpp's own defaults, as shipped: model_params() starts from them even where it is installed
# in their place (high_level_llama; the benchmarks' exported trees)
_shipped_defaults = llama_cpp.llama_model_default_params


def amx_build() -> bool:
    """Whether this llama.cpp build carries its AMX matrix multiply (built with -march=native on a
    CPU with AMX, e.g. a Sapphire Rapids Xeon)."""
    global _amx
    if _amx is None:
        _init_backend()
        _amx = b"AMX_INT8 = 1" in llama_cpp.llama_print_system_info()
    return _amx


def model_params() -> Any:
    """llama.cpp's default model parameters, without its extra buffer types on an AMX build. Its AMX
    matrix multiply crashes the process (SIGSEGV at `ldtilecfg`: the tile configuration it builds on
    the stack is invalid, llama.cpp issues 20824 and 26954) at the first batch of more than one token,
    i.e. the first prompt. Without the extra buffer types the weights stay in the plain CPU buffer and
    the usual AVX-512 kernels run; weight repacking goes too, which the built-in Q4_1 model never has
    (llama.cpp repacks only Q4_0, Q4_K, IQ4_NL and a few others). `llama-server --no-repack` is the
    same setting."""
    params = _shipped_defaults()
    if amx_build():
        params.use_extra_bufts = False
    return params


def high_level_llama(path: str, **kwargs: Any) -> Any:
    """llama-cpp-python's high-level `llama_cpp.Llama` for `path`, loaded with `model_params()` (as
    shipped it takes the AMX path too): the tests' reference and the benchmarks' stock arm."""
    import llama_cpp.llama_cpp as bindings  # the module whose defaults `Llama.__init__` reads

    shipped = bindings.llama_model_default_params
    bindings.llama_model_default_params = model_params
    try:
        return llama_cpp.Llama(path, **kwargs)
    finally:
        bindings.llama_model_default_params = shipped


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


def _text_of(call: Any, *args: Any) -> str:
    """A string from a llama.cpp `(..., char * buf, size_t size) -> length` call, buffer grown as needed."""
    size = 256
    while True:
        buffer = ctypes.create_string_buffer(size)
        n = int(call(*args, buffer, size))
        if n < 0:
            return ""
        if n < size:
            return buffer.value.decode("utf-8", "replace")
        size = n + 1


class LoadedModel:
    """Weights, vocabulary and metadata of one GGUF file (read-only after loading: any thread may
    tokenize), and the one context the engine's compute thread decodes with: `n_seq_max` sequences
    of `n_ctx` KV cells each (llama.cpp pads `n_ctx` up to a multiple of 256)."""

    def __init__(self, path: Path, *, n_ctx: int, n_seq_max: int, n_batch: int, n_threads: int,
                 n_threads_batch: int, flash_attn: bool) -> None:  # fmt: skip
        _init_backend()
        self.model = llama_cpp.llama_model_load_from_file(str(path).encode(), model_params())
        if not self.model:
            raise ValueError(f"llama.cpp could not load the model file {path}")
        try:
            self.vocab = llama_cpp.llama_model_get_vocab(self.model)
            self.metadata = self._metadata()
            self.n_ctx_train = int(llama_cpp.llama_model_n_ctx_train(self.model))
            cparams = llama_cpp.llama_context_default_params()
            cparams.n_ctx = n_ctx * n_seq_max  # llama.cpp divides it between the sequences
            cparams.n_batch = cparams.n_ubatch = n_batch
            cparams.n_seq_max = n_seq_max
            cparams.kv_unified = False  # a buffer of n_ctx cells per sequence (see the module)
            cparams.n_threads, cparams.n_threads_batch = n_threads, n_threads_batch
            on, off = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED, llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
            cparams.flash_attn_type = on if flash_attn else off
            cparams.no_perf = True
            self.ctx = llama_cpp.llama_init_from_model(self.model, cparams)
            if not self.ctx:
                gib = n_seq_max * n_ctx * self.kv_cell_bytes / 2**30
                raise ValueError(f"llama.cpp could not create {n_seq_max} sequences of {n_ctx} tokens "
                                 f"for {path} (a KV cache of {gib:.1f} GiB)")
        except BaseException:
            llama_cpp.llama_model_free(self.model)
            raise
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.n_ctx = int(llama_cpp.llama_n_ctx_seq(self.ctx))  # cells per sequence: each reply's window
        self.n_batch = int(llama_cpp.llama_n_batch(self.ctx))
        self.n_seq_max = int(llama_cpp.llama_n_seq_max(self.ctx))
        self.n_threads = n_threads
        self.bos = int(llama_cpp.llama_vocab_bos(self.vocab))
        self.eos = int(llama_cpp.llama_vocab_eos(self.vocab))
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.vocab))
        self._pieces: dict[int, bytes] = {}
        self._piece_buffer = ctypes.create_string_buffer(256)

    @property
    def kv_cell_bytes(self) -> int:
        """Bytes of one KV cell (keys and values of one token in every layer, f16)."""
        model = self.model
        heads = max(1, int(llama_cpp.llama_model_n_head(model)))
        head_dim = int(llama_cpp.llama_model_n_embd(model)) // heads
        kv_heads = int(llama_cpp.llama_model_n_head_kv(model))
        return 2 * int(llama_cpp.llama_model_n_layer(model)) * head_dim * kv_heads * 2

    def _metadata(self) -> dict[str, str]:
        count = int(llama_cpp.llama_model_meta_count(self.model))
        return {
            _text_of(llama_cpp.llama_model_meta_key_by_index, self.model, i):
                _text_of(llama_cpp.llama_model_meta_val_str_by_index, self.model, i)
            for i in range(count)
        }  # fmt: skip

    def token_text(self, token: int) -> str:
        """A token's text as the vocabulary spells it (special tokens included)."""
        if token < 0:
            return ""
        return bytes(llama_cpp.llama_vocab_get_text(self.vocab, token) or b"").decode("utf-8", "replace")

    def tokenize(self, text: str, *, add_bos: bool) -> list[int]:
        """Tokens of `text`; special tokens written as text are parsed as such."""
        data = text.encode("utf-8")
        capacity = len(data) + 8
        while True:
            tokens = (llama_cpp.llama_token * capacity)()
            n = int(llama_cpp.llama_tokenize(self.vocab, data, len(data), tokens, capacity, add_bos, True))
            if n >= 0:
                return list(tokens[:n])
            capacity = -n

    def is_eog(self, token: int) -> bool:
        """End of generation (end of turn, end of text)."""
        return bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))

    def piece(self, token: int) -> bytes:
        """The token's bytes (remembered: most tokens recur)."""
        piece = self._pieces.get(token)
        if piece is not None:
            return piece
        buffer = self._piece_buffer
        size = llama_cpp.llama_token_to_piece(self.vocab, token, buffer, len(buffer), 0, False)
        if size < 0:
            buffer = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self.vocab, token, buffer, len(buffer), 0, False)
        piece = self._pieces[token] = buffer.raw[:size]
        return piece

    def close(self) -> None:
        """Free the context and the weights (nothing may use them afterwards)."""
        if self.ctx:
            llama_cpp.llama_free(self.ctx)
            self.ctx = None
        if self.model:
            llama_cpp.llama_model_free(self.model)
            self.model = None
