"""The real server over the llama.cpp engine with the built-in model: many streams, limits, faults, leaks."""

from __future__ import annotations

import asyncio
import gc
import random
import threading
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2 as httpx
import psutil
import pytest
from server_harness import API_KEY, wait_until

from streamchat.engines.llama import LlamaEngine
from streamchat.server import ServerSettings, ServerThread, create_app
from streamchat.server.app import MessagesAPI

HEADERS = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
STORY = [{"role": "user", "content": "Write a long story about a dragon and a knight."}]


class LlamaServer:
    def __init__(self, engine: LlamaEngine, **settings: Any) -> None:
        self.engine = engine
        self.app = create_app(engine, ServerSettings(**settings))
        self.thread = ServerThread(self.app)
        self.url = self.thread.start()
        self.api: MessagesAPI = self.app.app.state.api

    def client(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.url, api_key=API_KEY, max_retries=0,
                                   _strict_response_validation=True)  # fmt: skip

    def idle(self) -> bool:
        admission = self.api.admission
        return self.api.generations_running == 0 and admission.active == 0 and admission.waiting == 0

    def stop(self) -> None:
        self.thread.stop()


@pytest.fixture(scope="module")
def server() -> Iterator[LlamaServer]:
    engine = LlamaEngine(n_ctx=2048, parallel=4, seed=3)
    served = LlamaServer(engine, max_queue=16)
    yield served
    served.stop()
    engine.close()


def test_a_prompt_that_does_not_fit_gets_a_400_and_its_neighbour_streams_on(server: LlamaServer) -> None:
    client = server.client()
    too_long = [{"role": "user", "content": "Tell me about dragons. " * 500}]
    with client.messages.stream(
        model="any", max_tokens=60, extra_body={"temperature": 0}, messages=STORY
    ) as neighbour:
        first = next(t for t in neighbour.text_stream if t)
        with pytest.raises(anthropic.BadRequestError) as caught:
            client.messages.create(model="any", max_tokens=10, messages=too_long)
        rest = "".join(neighbour.text_stream)
        message = neighbour.get_final_message()
    assert caught.value.status_code == 400 and "prompt is too long" in str(caught.value)
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 60
    assert (first + rest).strip() and message.content[0].text == first + rest  # type: ignore[union-attr]


def test_beyond_parallel_and_the_queue_a_request_gets_529(server: LlamaServer) -> None:
    engine = LlamaEngine(n_ctx=1024, parallel=2)
    small = LlamaServer(engine, max_queue=1)
    body = {"model": "any", "max_tokens": 2000, "stream": True, "messages": STORY}

    async def main() -> tuple[int, str | None, list[int]]:
        async with httpx.AsyncClient(base_url=small.url, headers=HEADERS, timeout=60) as http:
            running = [asyncio.create_task(http.send(http.build_request("POST", "/v1/messages", json=body),
                                                     stream=True)) for _ in range(2)]  # fmt: skip
            responses = [await task for task in running]
            await asyncio.to_thread(wait_until, lambda: small.api.admission.active == 2)
            queued = asyncio.create_task(http.post("/v1/messages", json=body))
            await asyncio.to_thread(wait_until, lambda: small.api.admission.waiting == 1)
            refused = await http.post("/v1/messages", json=body)
            for response in responses:
                await response.aclose()
            queued.cancel()
            return refused.status_code, refused.headers.get("retry-after"), [r.status_code for r in responses]

    try:
        status, retry_after, started = asyncio.run(main())
        assert status == 529 and retry_after is not None and started == [200, 200]
        wait_until(small.idle, timeout=30, what="the aborted streams to end")
        assert engine.kv_stats().running == 0
    finally:
        small.stop()
        engine.close()


def _prompts(rng: random.Random) -> list[list[dict[str, str]]]:
    words = [
        "river",
        "stone",
        "lantern",
        "orbit",
        "violin",
        "harbor",
        "maple",
        "comet",
        "desert",
        "signal",
        "garden",
        "copper",
    ]
    prompts = []
    for i in range(24):
        text = " ".join(rng.choice(words) for _ in range(rng.choice((3, 12, 60))))
        prompts.append([{"role": "user", "content": f"{i}: Tell a story with these words: {text}"}])
    return prompts


async def _abort_storm(url: str, count: int, seed: int) -> dict[str, int]:
    """`count` requests, 8 at a time, each abandoned at a random point (queued, prefilling, decoding)."""
    rng = random.Random(seed)
    prompts = _prompts(rng)
    outcome = {"aborted": 0, "finished": 0, "refused": 0}
    gate = asyncio.Semaphore(8)

    async def one(http: httpx.AsyncClient) -> None:
        body = {
            "model": "any",
            "max_tokens": rng.randint(4, 24),
            "stream": True,
            "messages": rng.choice(prompts),
        }
        stop_after = rng.randint(0, 24)  # SSE lines read before leaving; 0 leaves before the response
        async with gate:
            try:
                if stop_after == 0:
                    task = asyncio.create_task(http.post("/v1/messages", json=body))
                    await asyncio.sleep(rng.random() * 0.05)
                    task.cancel()
                    outcome["aborted"] += 1
                    return
                async with http.stream("POST", "/v1/messages", json=body) as response:
                    if response.status_code == 529:
                        outcome["refused"] += 1
                        return
                    seen = 0
                    async for _line in response.aiter_lines():
                        seen += 1
                        if seen >= stop_after:
                            outcome["aborted"] += 1
                            return
                    outcome["finished"] += 1
            except asyncio.CancelledError:
                outcome["aborted"] += 1

    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=120,
                                 limits=httpx.Limits(max_keepalive_connections=0)) as http:  # fmt: skip
        await asyncio.gather(*(one(http) for _ in range(count)))
    return outcome


def _native_threads() -> int:
    return psutil.Process().num_threads()


@pytest.fixture(scope="module")
def storm_server() -> Iterator[LlamaServer]:
    # a small prompt budget: short prompts (so 1,000 streams fit CI's time) still take several steps
    # to read, so many streams are abandoned mid-prompt as well as queued and decoding
    engine = LlamaEngine(n_ctx=1024, parallel=4, seed=3, prompt_budget=16)
    served = LlamaServer(engine, max_queue=16)
    yield served
    served.stop()
    engine.close()


def test_a_thousand_streams_aborted_at_random_points_leak_nothing(storm_server: LlamaServer) -> None:
    server = storm_server
    asyncio.run(_abort_storm(server.url, 60, seed=1))  # warm-up: lazily started threads, caches, pools
    wait_until(server.idle, timeout=60, what="the warm-up to settle")
    gc.collect()
    threads_before, native_before = threading.active_count(), _native_threads()
    rss_before = psutil.Process().memory_info().rss

    outcome = asyncio.run(_abort_storm(server.url, 1000, seed=2))
    assert outcome["aborted"] >= 900 and sum(outcome.values()) == 1000

    wait_until(server.idle, timeout=60, what="every aborted generation to end")
    wait_until(
        lambda: threading.active_count() <= threads_before, timeout=30, what="the relay threads to exit"
    )
    stats = server.engine.kv_stats()
    assert stats.replies_running == 0 and stats.replies_waiting == 0 and stats.running == 0
    assert stats.consistent and max(stats.slots) <= stats.n_ctx  # idle caches only, as llama.cpp agrees
    gc.collect()
    assert _native_threads() <= native_before
    growth = psutil.Process().memory_info().rss - rss_before
    assert growth < 40 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB over 1,000 aborted streams"

    # every cell can still be had: a prompt of nearly the whole window is answered
    client = server.client()
    window = server.engine.context_window

    def prompt(repeats: int) -> list[dict[str, str]]:
        return [{"role": "user", "content": "river stone " * repeats}]

    def count(repeats: int) -> int:
        return client.messages.count_tokens(model="any", messages=prompt(repeats)).input_tokens  # type: ignore[arg-type]

    per_repeat = (count(200) - count(100)) / 100
    repeats = int(100 + (window - 40 - count(100)) / per_repeat)
    assert window - 80 < count(repeats) < window - 4
    reply = client.messages.create(
        model="any", max_tokens=4, extra_body={"temperature": 0}, messages=prompt(repeats)
    )  # type: ignore[arg-type]
    # greedy on this prompt may end at once (0 tokens): what shows every cell was had is that the
    # whole prompt was admitted and is now held in the pool at once
    assert reply.stop_reason in ("max_tokens", "end_turn")
    assert reply.usage.input_tokens == count(repeats)
    after = server.engine.kv_stats()
    assert after.consistent and reply.usage.input_tokens <= max(after.slots) <= after.n_ctx
