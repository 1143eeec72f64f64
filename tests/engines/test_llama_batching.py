"""Continuous batching on the real built-in model: the scheduler, its slots and their KV cells.

Batched decoding is not bit-identical to decoding a prompt alone on CPU (the products reduce over
batches of other shapes), so greedy streams are checked against
an independent evaluation instead: llama-cpp-python's high-level API evaluates each stream's
prompt and generated tokens in one go, and every generated token must be the argmax there up to
numerical noise (measured at most ~0.6 logits; a token following another stream's context is off
by several logits).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import llama_cpp
import numpy as np
import pytest

from streamchat.api.request import parse_messages_request
from streamchat.api.stream import Finish, Part, TextDelta
from streamchat.config import builtin_model_path
from streamchat.engines.base import EngineError
from streamchat.engines.batching import BatchScheduler, common_prefix
from streamchat.engines.llama_model import LoadedModel, high_level_llama
from streamchat.engines.prompt import PromptText
from streamchat.engines.sampling import Sampler, Sampling, build_chain
from streamchat.engines.sequence import END, Prompt, ReplySequence

NOISE = 1.5  # logits: see the module docstring
QUESTIONS = ["Write a long story about a dragon and a knight.", "What is the capital of France?",
             "Explain recursion in Python.", "List ten fruits.", "Write a poem about the sea.",
             "How do airplanes fly?"]  # fmt: skip
STORY = "Write a long story about a lighthouse keeper and a storm."
NEXT_TURN = "<|im_end|>\n<|im_start|>user\nTell me more.<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def model() -> Iterator[LoadedModel]:
    loaded = LoadedModel(builtin_model_path(), n_ctx=1024, n_seq_max=8, n_batch=512, n_threads=2,
                         n_threads_batch=2, flash_attn=True)  # fmt: skip
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def scheduler(model: LoadedModel) -> Iterator[BatchScheduler]:
    running = BatchScheduler(model, parallel=4, prompt_budget=64)
    yield running
    assert running.stop(timeout=30)
    running.free()


@pytest.fixture(scope="module")
def reference() -> Iterator[llama_cpp.Llama]:
    """The same file through llama-cpp-python's high-level API, all logits kept."""
    llm = high_level_llama(str(builtin_model_path()), n_ctx=2048, logits_all=True, flash_attn=True,
                           n_threads=2, verbose=False)  # fmt: skip
    yield llm
    llm.close()


class Reply:
    """A sequence built as the engine builds one, and what came out of it."""

    def __init__(self, model: LoadedModel, text: str, *, max_tokens: int = 40, window: int = 1024,
                 tokens: list[int] | None = None) -> None:  # fmt: skip
        prompt_text = f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"
        self.prompt_tokens = tokens if tokens is not None else model.tokenize(prompt_text, add_bos=False)
        request = parse_messages_request({"model": "m", "max_tokens": max_tokens,
                                          "messages": [{"role": "user", "content": text}]})  # fmt: skip
        chain = build_chain(model.vocab, Sampling(temperature=0), 0)
        self.stop = threading.Event()
        prompt = Prompt(PromptText(prompt_text, "", False), self.prompt_tokens, "none", ())
        self.seq = ReplySequence(
            request,
            prompt,
            Sampler(chain),
            halted=self.stop.is_set,
            call_sampler=lambda: pytest.fail("no tool call here"),
            window=window,
        )
        self.parts: list[Part] = []
        self.error: BaseException | None = None
        self.on_part: Any = None

    def collect(self) -> None:
        """Read the output queue to its end (in the calling thread)."""
        while (item := self.seq.out.get()) is not END:
            if isinstance(item, BaseException):
                self.error = item
                continue
            self.parts.append(item)  # type: ignore[arg-type]
            if self.on_part is not None:
                self.on_part(self)

    @property
    def finish(self) -> Finish | None:
        last = self.parts[-1] if self.parts else None
        return last if isinstance(last, Finish) else None

    @property
    def generated(self) -> list[int]:
        return self.seq.tokens[len(self.prompt_tokens) :]

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextDelta))


def run_all(scheduler: BatchScheduler, replies: list[Reply]) -> None:
    readers = [threading.Thread(target=r.collect) for r in replies]
    for reader in readers:
        reader.start()
    for reply in replies:
        scheduler.submit(reply.seq)
    for reader in readers:
        reader.join(timeout=120)
        assert not reader.is_alive()


def worst_gap(reference: llama_cpp.Llama, reply: Reply) -> float:
    """How far below the argmax the reply's tokens are, on an independent single-stream evaluation."""
    tokens = reply.seq.tokens
    reference.reset()
    reference.eval(tokens)
    scores = np.asarray(reference.scores[: len(tokens)])
    start = len(reply.prompt_tokens)
    return max((float(scores[i - 1].max() - scores[i - 1][tokens[i]]) for i in range(start, len(tokens))),
               default=0.0)  # fmt: skip


def assert_idle_and_consistent(scheduler: BatchScheduler) -> None:
    stats = scheduler.stats()
    assert stats.replies_running == 0 and stats.replies_waiting == 0 and stats.running == 0
    assert stats.consistent and stats.used == sum(stats.slots) and max(stats.slots) <= stats.n_ctx


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 3, 4]) == 3
    assert common_prefix([1, 2, 3, 9], [1, 2, 3, 4]) == 3
    assert common_prefix([5], [1]) == 0 and common_prefix([], [1]) == 0
    long = list(range(1000))
    assert common_prefix(long, [*long[:617], -1, *long[618:]]) == 617


def test_batched_greedy_streams_each_follow_their_own_prompt(
    model: LoadedModel, scheduler: BatchScheduler, reference: llama_cpp.Llama
) -> None:
    replies = [Reply(model, q) for q in QUESTIONS]  # six for four places: two wait their turn
    run_all(scheduler, replies)
    for reply in replies:
        assert reply.error is None and reply.finish is not None
        assert reply.finish.stop_reason in ("end_turn", "max_tokens") and reply.text.strip()
        assert reply.finish.output_tokens == len(reply.generated) + (reply.finish.stop_reason == "max_tokens")
        assert worst_gap(reference, reply) < NOISE, reply.text
    assert_idle_and_consistent(scheduler)


def test_cancelling_one_stream_mid_batch_leaves_the_others_intact(
    model: LoadedModel, scheduler: BatchScheduler, reference: llama_cpp.Llama
) -> None:
    victim = Reply(model, STORY, max_tokens=500)
    replies = [victim, *(Reply(model, q, max_tokens=30) for q in QUESTIONS[1:4])]

    def stop_after_five(reply: Reply) -> None:
        if len(reply.parts) == 5:
            reply.stop.set()

    victim.on_part = stop_after_five
    run_all(scheduler, replies)
    assert victim.finish is None and 5 <= len(victim.parts) < 40  # stopped between steps, no Finish
    for reply in replies[1:]:
        assert reply.error is None and reply.finish is not None
        assert worst_gap(reference, reply) < NOISE
    assert_idle_and_consistent(scheduler)


def test_a_decode_failure_ends_only_the_reply_that_caused_it(
    model: LoadedModel, scheduler: BatchScheduler
) -> None:
    bad_tokens = model.tokenize("<|im_start|>user\nHello<|im_end|>\n", add_bos=False)
    bad = Reply(model, "Hello", tokens=[*bad_tokens, int(llama_cpp.llama_vocab_n_tokens(model.vocab)) + 7])
    good = [Reply(model, q, max_tokens=20) for q in QUESTIONS[:3]]
    run_all(scheduler, [*good, bad])
    assert isinstance(bad.error, EngineError) and "llama_decode" in str(bad.error) and bad.finish is None
    for reply in good:
        assert reply.error is None and reply.finish is not None and reply.text.strip()
    assert_idle_and_consistent(scheduler)


def test_a_follow_up_turn_evaluates_only_its_new_tokens(
    model: LoadedModel, scheduler: BatchScheduler
) -> None:
    """Three conversations interleaved: each second turn finds its first turn's cells in a slot."""
    firsts = [Reply(model, q, max_tokens=24) for q in QUESTIONS[1:4]]
    run_all(scheduler, firsts)
    before = scheduler.stats().evaluated
    follow_ups = []
    for first in firsts:
        history = first.seq.tokens  # prompt and reply, as the next turn's prompt starts
        turn = model.tokenize(NEXT_TURN, add_bos=False)
        follow_ups.append(Reply(model, "Tell me more.", max_tokens=8, tokens=[*history, *turn]))
    follow_ups.reverse()  # not in the order the slots were filled
    run_all(scheduler, follow_ups)
    evaluated = scheduler.stats().evaluated - before
    pairs = zip(follow_ups, reversed(firsts), strict=True)
    new_tokens = sum(len(r.prompt_tokens) - len(f.seq.tokens) for r, f in pairs)
    generated = sum(len(r.generated) for r in follow_ups)
    assert evaluated == new_tokens + generated  # not one token of any first turn again
    assert_idle_and_consistent(scheduler)


def test_interleaved_conversations_with_one_system_prompt_keep_their_own_caches(
    model: LoadedModel, scheduler: BatchScheduler
) -> None:
    """One request at a time, as chat users take turns: A, B, C start with the same system prompt
    (so each first turn finds the others' cells sharing its opening), then each follows up. A first
    turn must not take over another conversation's cache for the opening it shares: every follow-up
    evaluates only its new tokens. An unrelated request in between changes nothing."""
    system = "<|im_start|>system\nYou are a patient teacher who answers in plain words.<|im_end|>\n"

    def ask(tokens: list[int], text: str, max_tokens: int) -> tuple[Reply, int]:
        before = scheduler.stats().evaluated
        reply = Reply(model, text, max_tokens=max_tokens, tokens=tokens)
        run_all(scheduler, [reply])
        assert reply.error is None and reply.finish is not None
        return reply, scheduler.stats().evaluated - before

    opening = model.tokenize(system, add_bos=False)
    firsts = []
    for question in QUESTIONS[2:5]:
        text = f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
        turn = model.tokenize(text, add_bos=False)
        reply, evaluated = ask([*opening, *turn], question, 16)
        firsts.append(reply)
        assert evaluated < len(reply.prompt_tokens) + len(reply.generated)  # the opening came from a cache
    ask(model.tokenize("<|im_start|>user\nSay hi.<|im_end|>\n<|im_start|>assistant\n", add_bos=False),
        "Say hi.", 4)  # fmt: skip
    for first in firsts:
        tokens = [*first.seq.tokens, *model.tokenize(NEXT_TURN, add_bos=False)]
        reply, evaluated = ask(tokens, "Tell me more.", 4)
        assert evaluated == len(tokens) - len(first.seq.tokens) + len(reply.generated)
    assert_idle_and_consistent(scheduler)


def decoded_while_read(model: LoadedModel, scheduler: BatchScheduler, prompt: Reply) -> int:
    """Tokens a decoding stream gains from `prompt`'s submission to its first part (both run to
    their ends)."""
    decoding = Reply(model, STORY, max_tokens=200)
    seen: dict[str, int] = {}

    def note_progress(reply: Reply) -> None:
        if len(reply.parts) == 1:
            seen["answered"] = decoding.seq.produced

    prompt.on_part = note_progress
    reader = threading.Thread(target=decoding.collect)
    reader.start()
    scheduler.submit(decoding.seq)
    while decoding.seq.produced < 3:  # it is decoding
        threading.Event().wait(0.005)
    seen["submitted"] = decoding.seq.produced
    prompt_reader = threading.Thread(target=prompt.collect)
    prompt_reader.start()
    scheduler.submit(prompt.seq)
    prompt_reader.join(timeout=120)
    reader.join(timeout=120)
    assert prompt.finish is not None and decoding.finish is not None
    return seen["answered"] - seen["submitted"]


def test_a_long_prompt_is_read_in_chunks_while_others_decode(
    model: LoadedModel, scheduler: BatchScheduler
) -> None:
    long_text = "Summarise this: " + "The quick brown fox jumps over the lazy dog. " * 60
    long = Reply(model, long_text, max_tokens=4)
    assert len(long.prompt_tokens) > 600
    gained = decoded_while_read(model, scheduler, long)
    chunks = -(-len(long.prompt_tokens) // scheduler.prompt_budget)
    # one token for the decoding stream in every step that read a chunk of the long prompt
    assert gained >= chunks - 2
    assert_idle_and_consistent(scheduler)


def test_a_short_prompt_is_read_in_one_step_while_others_decode(
    model: LoadedModel, scheduler: BatchScheduler
) -> None:
    """A prompt of at most 4 x the budget (a chat turn) starts at once: the stream already decoding
    gains a token or two meanwhile, where reading it in budget-sized chunks would take 4 steps."""
    text = "Summarise this: " + "The quick brown fox jumps over the lazy dog. " * 20
    short = Reply(model, text, max_tokens=4)
    assert 3 * scheduler.prompt_budget < len(short.prompt_tokens) <= 4 * scheduler.prompt_budget
    # the step under way when it came, the step that read it whole and sampled its first token, and
    # one more its reader may be late by; in chunks, 4 steps would read it before its first token
    assert decoded_while_read(model, scheduler, short) <= 3
    assert_idle_and_consistent(scheduler)


def test_short_prompts_beyond_the_burst_wait_whole_for_the_next_step(
    model: LoadedModel, scheduler: BatchScheduler
) -> None:
    """Short prompts arriving together while a reply decodes: those the step's burst cannot hold
    are read whole in a later step, none of them sliced into budget-sized chunks."""
    decoding = Reply(model, STORY, max_tokens=120)
    shorts = [Reply(model, f"Summarise note {i}: " + f"Item {i} of the list is {i * 7} apples. " * 18,
                    max_tokens=2) for i in range(3)]  # fmt: skip
    budget = scheduler.prompt_budget
    assert all(3 * budget < len(r.prompt_tokens) <= 4 * budget for r in shorts)
    # together they do not fit one step: the burst is at most the batch beside the decoding row
    assert sum(len(r.prompt_tokens) for r in shorts) > model.n_batch - 1
    readers = [threading.Thread(target=r.collect) for r in [decoding, *shorts]]
    readers[0].start()
    scheduler.submit(decoding.seq)
    while decoding.seq.produced < 3:  # it is decoding
        threading.Event().wait(0.005)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # the compute thread waits between steps while all three are submitted
        held.set()
        release.wait(60)

    holder = threading.Thread(target=scheduler.call, args=(hold,))
    holder.start()
    assert held.wait(60)
    for reader, reply in zip(readers[1:], shorts, strict=True):
        reader.start()
        scheduler.submit(reply.seq)
    release.set()
    for thread in [holder, *readers]:
        thread.join(timeout=120)
    assert all(r.finish is not None for r in [decoding, *shorts])
    assert [r.seq.read_in_parts for r in shorts] == [False, False, False]
    assert_idle_and_consistent(scheduler)


def test_a_new_reply_takes_a_slot_next_to_the_running_one() -> None:
    """llama.cpp reads each run of consecutive sequence ids as its own micro-batch, so a reply that
    finds no cache of its own is put next to the running replies, not in the least recently used
    slot elsewhere (which would make every step two micro-batches)."""
    small = LoadedModel(builtin_model_path(), n_ctx=256, n_seq_max=8, n_batch=512, n_threads=2,
                        n_threads_batch=2, flash_attn=True)  # fmt: skip
    pool = BatchScheduler(small, parallel=4, prompt_budget=64)
    try:
        firsts = [Reply(small, f"Name a colour, number {i}.", max_tokens=2, window=256) for i in range(8)]
        for reply in firsts:  # one at a time: slots 0-7, in this order
            run_all(pool, [reply])
        for i in (0, 2):  # their conversations go on: slots 0 and 2 are the most recently used
            follow = [*firsts[i].seq.tokens, *small.tokenize(NEXT_TURN, add_bos=False)]
            run_all(pool, [Reply(small, "Tell me more.", max_tokens=2, window=256, tokens=follow)])
        assert all(pool.stats().slots)  # every slot holds a conversation: none is clean for a new one
        seen: dict[str, int] = {}

        def note_slot(name: str) -> Any:
            def note(reply: Reply) -> None:
                if len(reply.parts) == 1 and reply.seq.slot is not None:
                    seen[name] = reply.seq.slot.seq_id

            return note

        long = Reply(small, STORY, max_tokens=80, window=256)
        long.on_part = note_slot("long")
        reader = threading.Thread(target=long.collect)
        reader.start()
        pool.submit(long.seq)
        while long.seq.produced < 2:
            threading.Event().wait(0.005)
        second = Reply(small, "Explain recursion in Python.", max_tokens=4, window=256)
        second.on_part = note_slot("second")
        run_all(pool, [second])
        reader.join(timeout=120)
        assert seen["long"] == 1  # nothing ran: the least recently used slot
        assert seen["second"] in (0, 2)  # next to it, though slot 3 was used longer ago
        assert long.finish is not None and second.finish is not None
    finally:
        assert pool.stop(timeout=30)
        pool.free()
        small.close()


def test_every_reply_gets_its_whole_window_beside_the_others(reference: llama_cpp.Llama) -> None:
    """Three long replies at once in slots of 512 cells: together they hold far more than one
    window, none waits for another, and the one that reaches its window ends there alone."""
    small = LoadedModel(builtin_model_path(), n_ctx=512, n_seq_max=3, n_batch=512, n_threads=2,
                        n_threads_batch=2, flash_attn=True)  # fmt: skip
    pool = BatchScheduler(small, parallel=3, prompt_budget=64)
    events: list[tuple[str, int]] = []
    try:
        replies = [Reply(small, STORY + f" Chapter {i}.", max_tokens=330, window=512) for i in range(2)]
        edge = Reply(small, STORY + " Chapter 9.", max_tokens=2000, window=small.n_ctx)
        everyone = [*replies, edge]

        def note(reply: Reply) -> None:
            if len(reply.parts) == 1 or reply.finish is not None:
                events.append(("first" if len(reply.parts) == 1 else "end", everyone.index(reply)))

        for reply in everyone:
            reply.on_part = note
        run_all(pool, everyone)
        assert small.n_ctx == 512
        for reply in replies:
            assert reply.error is None and reply.finish is not None
            assert reply.finish.stop_reason in ("max_tokens", "end_turn")
            assert worst_gap(reference, reply) < NOISE
        assert edge.error is None and edge.finish is not None
        assert edge.finish.stop_reason == "model_context_window_exceeded" and len(edge.seq.tokens) == 512
        assert worst_gap(reference, edge) < NOISE
        assert sorted(events[:3]) == [("first", 0), ("first", 1), ("first", 2)]  # side by side
        stats = pool.stats()
        assert stats.consistent and stats.running == 0
        # each reply's cells are still cached in its own slot: more than one window in all
        assert sorted(stats.slots) == sorted(len(r.seq.tokens) for r in everyone)
        assert stats.used > small.n_ctx
    finally:
        assert pool.stop(timeout=30)
        pool.free()
        small.close()
