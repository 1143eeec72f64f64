"""Continuous batching: one compute thread decodes every running reply of one llama.cpp context.

Each step the thread takes new replies from its inbox, drops the ones whose caller left, gives
waiting replies a free slot (the one whose cached tokens share the longest prefix with the reply's
prompt), builds ONE batch — one row per decoding reply first, then the short prompts whole (a
bounded burst) and a small budget of tokens of the longer ones, oldest first — calls
`llama_decode` once, and samples each reply's next token with its own sampler at its own row.

Each slot is one llama.cpp sequence with a KV buffer of its own (`n_ctx` cells, the window), so
every reply may use the whole window and no reply ever waits for a neighbour's cells. A slot's
cells stay cached after its reply ends, for the next reply that continues them; a reply that
shares only an opening with another slot's cache (a common system prompt) gets that opening
copied into its own slot when that is cheaper than reading it.

llama.cpp splits a batch over per-sequence buffers into micro-batches of consecutive sequence
ids, the same number of tokens each: so the rows go in sequence-id order, and new replies take a
free slot next to the running ones, keeping the decoding sequences one run of ids where they can.

Faults stay local: an exception while handling one reply ends that reply only (its cells are
freed), and a failed decode is retried one reply at a time, so only the replies that fail alone
get the error.

OpenMP keeps a team of worker threads per calling thread, and while two teams are alive on two
cores libgomp stops spinning at barriers: decoding gets a third slower. So every llama.cpp compute
call of the engine happens on this one thread; parts cross to the callers through queues.
"""

from __future__ import annotations

import ctypes
import logging
import queue
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import llama_cpp

from .base import EngineError
from .llama_model import LoadedModel
from .sequence import END, ReplySequence, Slot

_log = logging.getLogger("streamchat.engines.llama")
_T = TypeVar("_T")


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:  # the usual case (the new prompt extends the cached one), compared in C
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo] and a[:hi] != b[:hi]: bisect, each probe compared in C
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


@dataclass
class KVStats:
    """What the KV cells hold (read on the compute thread, so it is one consistent moment)."""

    n_ctx: int  # cells per slot: each reply's window
    used: int  # cells held by any slot
    running: int  # cells held by slots of running replies
    slots: list[int]  # tokens cached per slot (each at most n_ctx)
    consistent: bool  # the engine's accounting equals llama.cpp's own positions, slot by slot
    replies_running: int
    replies_waiting: int
    evaluated: int  # tokens decoded since the start (prompt and generated): what reuse saves


class _Rows:
    """The step's batch: which reply fed which tokens, and where its logits are."""

    __slots__ = ("fed", "logits_row", "seq")

    def __init__(self, seq: ReplySequence, fed: list[int], logits_row: int) -> None:
        self.seq = seq
        self.fed = fed
        self.logits_row = logits_row  # -1: no logits this step (a prompt not read to its end)


class BatchScheduler:
    """The compute thread of one context: replies in, parts out (see the module)."""

    def __init__(self, model: LoadedModel, *, parallel: int, prompt_budget: int,
                 first_part_pause: float = 0.0) -> None:  # fmt: skip
        if parallel < 1:
            raise ValueError("parallel must be >= 1")
        self.model = model
        self.parallel = parallel
        self.prompt_budget = max(1, min(prompt_budget, model.n_batch))
        self.first_part_pause = first_part_pause
        # tokens: below that, copying a shared prefix costs more than reading it (the copy grows with
        # the window), and a cache that loses fewer to a new prompt is its continuation (`_pick_slot`)
        self.share_at_least = max(8, model.n_ctx // 1024)
        self.slots = [Slot(i) for i in range(model.n_seq_max)]
        self._inbox: queue.SimpleQueue[ReplySequence | Callable[[], None] | None] = queue.SimpleQueue()
        self._waiting: deque[ReplySequence] = deque()
        self._running: list[ReplySequence] = []
        self._stopped = False
        self._step = 0
        self._evaluated = 0
        self._batch = llama_cpp.llama_batch_init(model.n_batch, 0, 1)
        self._token_address = ctypes.addressof(self._batch.token.contents)
        self._pos_address = ctypes.addressof(self._batch.pos.contents)
        self._thread = threading.Thread(target=self._serve, name="llama-compute", daemon=True)
        self._thread.start()

    # -- the callers' side ---------------------------------------------------------------------

    def submit(self, seq: ReplySequence) -> None:
        """Queue a reply; its parts arrive on `seq.out`."""
        if self._stopped:
            raise EngineError("the engine is closed")
        self._inbox.put(seq)

    def call(self, job: Callable[[], _T], timeout: float | None = None) -> _T:
        """Run `job` on the compute thread between steps and return its result."""
        done: Future[_T] = Future()

        def run() -> None:
            try:
                done.set_result(job())
            except BaseException as exc:
                done.set_exception(exc)

        self._inbox.put(run)
        return done.result(timeout)

    def stats(self) -> KVStats:
        """The KV cells and the replies, as the compute thread sees them."""
        return self.call(self._stats, timeout=30)

    def stop(self, timeout: float | None = None) -> bool:
        """End the thread after the replies it holds stop; True once it has ended."""
        self._stopped = True
        self._inbox.put(None)
        if timeout is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def free(self) -> None:
        """Free the batch (after `stop` returned True)."""
        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None

    # -- the compute thread --------------------------------------------------------------------

    def _serve(self) -> None:
        stopping = False
        while True:
            block = not self._waiting and not self._running
            if stopping and block:
                return
            try:
                item = self._inbox.get(block=block and not stopping)
            except queue.Empty:
                item = _NOTHING
            while item is not _NOTHING:
                if item is None:
                    stopping = True
                elif isinstance(item, ReplySequence):
                    self._waiting.append(item)
                else:
                    item()  # type: ignore[operator]
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    item = _NOTHING
            if self._waiting or self._running:
                try:
                    self._one_step()
                except Exception as exc:  # a bug of ours: fail what runs, keep serving
                    _log.exception("batch step failed")
                    self._fail_all(exc)

    def _one_step(self) -> None:
        self._step += 1
        self._drop_halted()
        self._admit()
        rows = self._build()
        if not rows:
            return
        first_parts = [r.seq for r in rows if not r.seq.first_part_sent]
        self._decode_and_sample(rows)
        if self.first_part_pause and any(s.first_part_sent for s in first_parts):
            # the threads carrying a first token to its client get a core before the next decode
            time.sleep(self.first_part_pause)

    def _drop_halted(self) -> None:
        for seq in [s for s in self._waiting if s.halted()]:
            self._finish(seq)
        for seq in [s for s in self._running if s.halted()]:
            self._finish(seq)  # its cells stay cached: every token in them was evaluated

    def _finish(self, seq: ReplySequence, *, forget: bool = False) -> None:
        """Take `seq` out of the scheduler, free its sampler, release its slot (`forget`: and its cells)."""
        if seq in self._running:
            self._running.remove(seq)
        elif seq in self._waiting:
            self._waiting.remove(seq)
        slot = seq.slot
        if slot is not None:
            if forget:
                self._clear(slot)
            slot.owner, slot.last_used, seq.slot = None, self._step, None
        seq.sampler.free()
        seq.out.put(END)  # harmless after a Finish or an error: the caller stops at the first

    def _fail(self, seq: ReplySequence, error: BaseException) -> None:
        seq.fail(error)
        self._finish(seq, forget=True)  # what its cells hold is not known after a failure

    def _fail_all(self, error: BaseException) -> None:
        for seq in [*self._running, *self._waiting]:
            self._fail(seq, EngineError(f"the engine failed: {error}"))
        llama_cpp.llama_memory_clear(self.model.memory, True)
        for slot in self.slots:
            slot.cached = []

    # -- slots and cells -----------------------------------------------------------------------

    def _clear(self, slot: Slot) -> None:
        llama_cpp.llama_memory_seq_rm(self.model.memory, slot.seq_id, -1, -1)
        slot.cached = []

    def _trim(self, slot: Slot, keep: int) -> None:
        if keep < len(slot.cached):
            if keep == 0 or not llama_cpp.llama_memory_seq_rm(self.model.memory, slot.seq_id, keep, -1):
                self._clear(slot)  # a partial removal the memory cannot do: start over
            else:
                del slot.cached[keep:]

    def _used(self) -> int:
        return sum(len(slot.cached) for slot in self.slots)

    def _pick_slot(self, tokens: list[int]) -> Slot | None:
        """A free slot for `tokens`, holding the longest prefix of them any slot has cached.

        A free slot whose cache the prompt continues (the same conversation's earlier turn) is taken,
        losing at most a short tail. A cache that shares only part of itself (another conversation
        with the same system prompt, a reply being regenerated) is kept: the reply takes a free slot
        next to the running ones (llama.cpp splits a step into one micro-batch per run of sequence
        ids: 4 rows on ids 0,2,5,7 took 46% longer than on 0-3 here), among those one that loses
        nothing (an empty one, or one holding just a prefix of the prompt; else the least recently
        used), and the shared prefix is copied into it when that saves at least
        `share_at_least` tokens. llama.cpp copies a sequence's whole buffer to another (the next
        decode does it: ~35 ms for 8,192 cells of the built-in model here, about what reading 8
        prompt tokens costs), then the copy is cut back to the shared prefix. So interleaved
        conversations keep their caches.
        """
        free = [s for s in self.slots if s.owner is None]
        if not free:
            return None
        shared = {s.seq_id: common_prefix(s.cached, tokens) if s.cached else 0 for s in self.slots}
        source = max(self.slots, key=lambda s: (shared[s.seq_id], s.owner is None))
        most = shared[source.seq_id]
        if most and source.owner is None and len(source.cached) - most < self.share_at_least:
            slot = source  # its own continuation (a tail that re-tokenizes differently is lost)
        else:
            running = {s.seq_id for s in self.slots if s.owner is not None}

            def rank(s: Slot) -> tuple[int, bool, int, bool, int]:
                ids = running | {s.seq_id}  # llama.cpp decodes each run of ids as a micro-batch
                runs = sum(1 for i in ids if i - 1 not in ids)
                if shared[s.seq_id] == len(s.cached):  # extended, nothing lost: the best, lowest id
                    return runs, False, -shared[s.seq_id], bool(s.cached), s.seq_id
                return runs, True, 0, True, s.last_used  # else the least recently used

            slot = min(free, key=rank)
            if most - shared[slot.seq_id] >= self.share_at_least:
                self._copy(source, slot, most)
                shared[slot.seq_id] = most
        self._trim(slot, min(shared[slot.seq_id], len(tokens) - 1))  # the last token: evaluated for logits
        return slot

    def _copy(self, source: Slot, slot: Slot, keep: int) -> None:
        """`slot` holds the first `keep` tokens of `source`'s cache (llama.cpp copies whole buffers
        between sequences: all of it, then the rest removed)."""
        memory = self.model.memory
        llama_cpp.llama_memory_seq_cp(memory, source.seq_id, slot.seq_id, -1, -1)
        slot.cached = source.cached[:]
        self._trim(slot, keep)

    def _admit(self) -> None:
        while self._waiting and len(self._running) < self.parallel:
            slot = self._pick_slot(self._waiting[0].tokens)
            if slot is None:
                return
            seq = self._waiting.popleft()
            slot.owner, slot.last_used, seq.slot = seq, self._step, slot
            self._running.append(seq)

    # -- one step ------------------------------------------------------------------------------

    def _build(self) -> list[_Rows]:
        for seq in self._running:
            slot = seq.slot
            assert slot is not None
            if len(slot.cached) >= len(seq.tokens):  # restarted as a tool call: back into the prompt
                self._trim(slot, len(seq.tokens) - 1)
        decoding = [s for s in self._running if s.todo == 1]
        takes = [(seq, 1) for seq in decoding]
        room = self.model.n_batch - len(takes)
        reading = [s for s in self._running if s.todo > 1]  # oldest first
        if decoding:  # short prompts whole (a bounded burst), then a small slice of the rest
            full = min(room, self.prompt_budget * _BURST)
            burst, longer = full, []
            for seq in reading:
                if seq.read_in_parts or seq.todo > min(full, self.prompt_budget * _SHORT):
                    longer.append(seq)
                elif seq.todo <= burst:
                    takes.append((seq, seq.todo))
                    burst -= seq.todo
                    room -= seq.todo
                # else a short prompt the burst has no room left for: read whole in a later step
                # (oldest first, so it comes), not sliced over several
            reading, room = longer, min(room, self.prompt_budget)
        for seq in reading:
            if room <= 0:
                break
            take = min(seq.todo, room)
            takes.append((seq, take))
            room -= take
            if take < seq.todo:
                seq.read_in_parts = True
        takes.sort(key=lambda t: t[0].slot.seq_id)  # type: ignore[union-attr]  # see the module
        rows: list[_Rows] = []
        n = 0
        for seq, take in takes:
            rows.append(self._add(seq, n, take))
            n += take
        self._batch.n_tokens = n
        return rows

    def _add(self, seq: ReplySequence, at: int, count: int) -> _Rows:
        """Put `count` of the reply's unevaluated tokens into the batch at row `at`."""
        slot = seq.slot
        assert slot is not None
        start = len(slot.cached)
        fed = seq.tokens[start : start + count]
        wants_logits = start + count == len(seq.tokens)
        self._fill(at, slot.seq_id, fed, start, wants_logits)
        return _Rows(seq, fed, at + count - 1 if wants_logits else -1)

    def _fill(self, at: int, seq_id: int, tokens: list[int], pos: int, logits_last: bool) -> None:
        count = len(tokens)
        batch = self._batch
        ctypes.memmove(self._token_address + 4 * at, array("i", tokens).tobytes(), 4 * count)
        ctypes.memmove(self._pos_address + 4 * at, array("i", range(pos, pos + count)).tobytes(), 4 * count)
        n_seq_id, seq_ids, logits = batch.n_seq_id, batch.seq_id, batch.logits
        for i in range(at, at + count):
            n_seq_id[i] = 1
            seq_ids[i][0] = seq_id
            logits[i] = 0
        if logits_last:
            logits[at + count - 1] = 1

    def preload(self, tokens: list[int]) -> None:
        """Evaluate `tokens` into the slots' caches, on the compute thread (the engine's warm-up: the
        first decode allocates buffers and starts threads; the prefix stays cached for new replies).
        Every slot gets it when all fit one batch, so no reply has to wait for a copy of it; a
        longer prefix goes to the first slot only."""

        def job() -> None:
            slots = self.slots if len(tokens) * len(self.slots) <= self.model.n_batch else self.slots[:1]
            for slot in slots:
                self._clear(slot)
            try:
                for start in range(0, len(tokens), self.model.n_batch):
                    chunk = tokens[start : start + self.model.n_batch]
                    last = start + len(chunk) == len(tokens)
                    for i, slot in enumerate(slots):
                        self._fill(i * len(chunk), slot.seq_id, chunk, start, last)
                    self._batch.n_tokens = len(chunk) * len(slots)
                    status = llama_cpp.llama_decode(self.model.ctx, self._batch)
                    if status != 0:
                        raise EngineError(f"llama_decode failed with status {status}")
                    for slot in slots:
                        slot.cached += chunk
            except BaseException:
                for slot in slots:
                    self._clear(slot)
                raise
            for slot in slots:
                slot.last_used = self._step

        self.call(job)

    def _decode_and_sample(self, rows: list[_Rows]) -> None:
        status = llama_cpp.llama_decode(self.model.ctx, self._batch)
        if status == 0:
            self._after_decode(rows)
            return
        self._undo(rows)
        if len(rows) == 1:
            self._fail(rows[0].seq, EngineError(f"llama_decode failed with status {status}"))
            return
        _log.warning("llama_decode failed with status %d for a batch of %d replies: one at a time",
                     status, len(rows))  # fmt: skip
        for row in rows:  # only the replies that fail alone get the error
            one = self._add(row.seq, 0, len(row.fed))
            self._batch.n_tokens = len(row.fed)
            status = llama_cpp.llama_decode(self.model.ctx, self._batch)
            if status == 0:
                self._after_decode([one])
            else:
                self._undo([one])
                self._fail(row.seq, EngineError(f"llama_decode failed with status {status}"))

    def _undo(self, rows: list[_Rows]) -> None:
        # a failed decode may leave some of its micro-batches in the cells: back to what was cached
        for row in rows:
            slot = row.seq.slot
            if slot is not None:
                llama_cpp.llama_memory_seq_rm(self.model.memory, slot.seq_id, len(slot.cached), -1)

    def _after_decode(self, rows: list[_Rows]) -> None:
        ctx, model = self.model.ctx, self.model
        for row in rows:
            seq, slot = row.seq, row.seq.slot
            assert slot is not None
            slot.cached += row.fed
            slot.last_used = self._step
            self._evaluated += len(row.fed)
            if row.logits_row < 0:
                continue
            try:
                token = seq.sampler.sample(ctx, row.logits_row)
                goes_on = seq.accept(token, model.is_eog(token), model.piece(token))
            except Exception as exc:  # this reply's fault: end it alone
                _log.exception("a reply failed")
                self._fail(seq, exc if isinstance(exc, EngineError) else EngineError(str(exc)))
                continue
            if not goes_on:
                self._finish(seq)

    def _stats(self) -> KVStats:
        # a reply whose caller has left is as good as gone: drop it now, not at the next step (the
        # compute thread may be mid-decode when the caller leaves, and run this job before that step)
        self._drop_halted()
        memory = self.model.memory
        consistent = all(
            llama_cpp.llama_memory_seq_pos_max(memory, s.seq_id) + 1 == len(s.cached)
            and (not s.cached or llama_cpp.llama_memory_seq_pos_min(memory, s.seq_id) == 0)
            for s in self.slots
        )
        return KVStats(
            n_ctx=self.model.n_ctx,
            used=self._used(),
            running=sum(len(s.cached) for s in self.slots if s.owner is not None),
            slots=[len(s.cached) for s in self.slots],
            consistent=consistent,
            replies_running=len(self._running),
            replies_waiting=len(self._waiting),
            evaluated=self._evaluated,
        )


_NOTHING: Any = object()
# While replies decode, a prompt of at most _SHORT x prompt_budget tokens (a chat turn, most new
# chats) is read whole in one step, up to _BURST x prompt_budget such tokens a step: new replies
# start at once and the decoding ones see one longer step (~0.1 s for a 32-token turn here); one
# that finds the step's burst spent is read whole in the next step, not sliced over three; a
# longer prompt is read prompt_budget tokens a step, so their gaps stay small while it is read.
_SHORT = 4
_BURST = 16
