"""One generation at a time per model, a fair queue, 529 beyond it, and clients that leave early."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import anthropic
import httpx2 as httpx
import psutil
import pytest
from server_harness import API_KEY, USER, Served, wait_until

from streamchat.server.generation import MAX_BUFFERED_PARTS

LONG = "All work and no play makes Jack a dull boy. " * 2000
HEADERS = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}


def ask(served: Served, prompt: str, **options: Any) -> anthropic.types.Message:
    return served.client(**options).messages.create(
        model="any", max_tokens=64, messages=[{"role": "user", "content": prompt}]
    )


def generation_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "streamchat-generation"]


def test_disconnect_stops_the_generation_promptly(serve: Any) -> None:
    """Rate 100 deltas/s: at most 10 more deltas after the client closes means stopped within ~100 ms."""
    served = serve(LONG, chunk=1, rate=100)
    client = served.client()
    with client.messages.stream(model="any", max_tokens=100_000, messages=USER) as stream:
        texts = 0
        for event in stream:
            texts += event.type == "text"
            if texts == 3:
                break
        closed_at = time.monotonic()
    (run,) = served.engine.runs
    assert run.done.wait(5), "the engine thread kept generating after the client left"
    assert run.exited is not None and run.cancelled
    further = run.parts_after(closed_at)
    delay_ms = (run.exited - closed_at) * 1000
    print(f"\nengine stopped {delay_ms:.1f} ms after the client closed, {further} further deltas")
    assert further <= 10
    wait_until(served.idle, what="the slot to be released")
    wait_until(lambda: not generation_threads(), what="the generation thread to exit")


def test_disconnect_during_a_non_streaming_request_stops_the_generation(serve: Any) -> None:
    served = serve(LONG, chunk=1, rate=100)
    body = {"model": "any", "max_tokens": 100_000, "messages": USER}

    async def main() -> float:
        async with httpx.AsyncClient(base_url=served.url, headers=HEADERS, timeout=30) as http:
            request = asyncio.create_task(http.post("/v1/messages", json=body))
            await asyncio.to_thread(served.engine.wait_runs, 1)
            request.cancel()  # the client gives up: its connection closes
            closed_at = time.monotonic()
            with contextlib.suppress(asyncio.CancelledError):
                await request
            return closed_at

    closed_at = asyncio.run(main())
    (run,) = served.engine.runs
    assert run.done.wait(5) and run.cancelled and run.parts_after(closed_at) <= 10
    wait_until(served.idle)


def test_disconnect_frees_the_slot_for_the_next_queued_request(serve: Any) -> None:
    served = serve(LONG, chunk=1, rate=100, max_concurrency=1)
    client = served.client()
    with ThreadPoolExecutor(1) as pool:
        with client.messages.stream(
            model="any", max_tokens=100_000, messages=[{"role": "user", "content": "A"}]
        ) as a:
            next(iter(a.text_stream))
            queued: Future[anthropic.types.Message] = pool.submit(
                lambda: client.messages.create(
                    model="any", max_tokens=3, messages=[{"role": "user", "content": "B"}]
                )
            )
            wait_until(lambda: served.api.admission.waiting == 1, what="B to queue")
            assert len(served.engine.runs) == 1  # B waits while A holds the model
            closed_at = time.monotonic()
        runs = served.engine.wait_runs(2)
        reply = queued.result(timeout=10)
    assert [r.prompt for r in runs] == ["A", "B"]
    assert runs[0].cancelled and runs[0].exited is not None and runs[1].started >= runs[0].exited
    print(f"\nB started {(runs[1].started - closed_at) * 1000:.1f} ms after A's client closed")
    assert reply.stop_reason == "max_tokens" and reply.content[0].text == "All"  # type: ignore[union-attr]
    wait_until(served.idle)


def test_queue_is_fifo(serve: Any) -> None:
    served = serve("short reply", max_concurrency=1)
    served.engine.hold = {"A"}
    with ThreadPoolExecutor(4) as pool:
        replies = {"A": pool.submit(ask, served, "A")}
        served.engine.wait_runs(1)
        for position, prompt in enumerate("BCD", start=1):
            replies[prompt] = pool.submit(ask, served, prompt)
            wait_until(lambda n=position: served.api.admission.waiting == n, what=f"{prompt} to queue")
        assert [r.prompt for r in served.engine.runs] == ["A"]
        served.engine.release("A")
        results = {p: f.result(timeout=10) for p, f in replies.items()}
    assert [r.prompt for r in served.engine.runs] == ["A", "B", "C", "D"]
    runs = served.engine.runs
    assert all(runs[i].started >= runs[i - 1].exited for i in range(1, 4))  # type: ignore[operator]
    assert all(m.content[0].text == "short reply" for m in results.values())  # type: ignore[union-attr]
    wait_until(served.idle)


def test_queued_client_that_leaves_gives_up_its_place(serve: Any) -> None:
    served = serve("short reply", max_concurrency=1)
    served.engine.hold = {"A"}
    body = {"model": "any", "max_tokens": 50, "stream": True}

    async def main() -> list[int]:
        async with httpx.AsyncClient(base_url=served.url, headers=HEADERS, timeout=10) as http:

            async def post(prompt: str) -> int:
                response = await http.post(
                    "/v1/messages", json={**body, "messages": [{"role": "user", "content": prompt}]}
                )
                return response.status_code

            async def until(predicate: Any) -> None:
                await asyncio.to_thread(wait_until, predicate)

            a = asyncio.create_task(post("A"))
            await asyncio.to_thread(served.engine.wait_runs, 1)
            b = asyncio.create_task(post("B"))
            await until(lambda: served.api.admission.waiting == 1)
            c = asyncio.create_task(post("C"))
            await until(lambda: served.api.admission.waiting == 2)
            b.cancel()  # B's client goes away while queued
            await until(lambda: served.api.admission.waiting == 1)
            served.engine.release("A")
            return [await a, await c]

    assert asyncio.run(main()) == [200, 200]
    assert [r.prompt for r in served.engine.runs] == ["A", "C"]
    wait_until(served.idle)


def test_full_queue_is_529_with_retry_after(serve: Any) -> None:
    served = serve("short reply", max_concurrency=1, max_queue=1)
    served.engine.hold = {"A"}
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(ask, served, "A")
        served.engine.wait_runs(1)
        second = pool.submit(ask, served, "B")
        wait_until(lambda: served.api.admission.waiting == 1)
        overloaded_cls = getattr(anthropic, "OverloadedError", anthropic.APIStatusError)
        client = served.client(max_retries=0)
        for attempt in (
            lambda: client.messages.create(model="any", max_tokens=5, messages=USER),
            lambda: client.messages.stream(model="any", max_tokens=5, messages=USER).__enter__(),
        ):
            with pytest.raises(overloaded_cls) as caught:
                attempt()
            error = caught.value
            assert error.status_code == 529
            assert error.response.headers["retry-after"] == "1"
            assert isinstance(error.body, dict) and error.body["error"]["type"] == "overloaded_error"
            assert error.body["request_id"] == error.request_id == error.response.headers["request-id"]
        assert len(served.engine.runs) == 1 and served.api.admission.waiting == 1
        served.engine.release("A")
        assert first.result(timeout=10).content and second.result(timeout=10).content
    wait_until(served.idle)


def test_529_is_retried_by_the_sdk_until_the_slot_frees(serve: Any) -> None:
    served = serve("short reply", max_concurrency=1, max_queue=0)
    served.engine.hold = {"A"}
    statuses: list[int] = []
    overloaded = threading.Event()

    def on_response(response: httpx.Response) -> None:
        statuses.append(response.status_code)
        if response.status_code == 529:
            overloaded.set()

    http = anthropic.DefaultHttpxClient(event_hooks={"response": [on_response]})
    with ThreadPoolExecutor(2) as pool:
        holder = pool.submit(ask, served, "A")
        served.engine.wait_runs(1)
        retrying = pool.submit(ask, served, "B", max_retries=2, http_client=http)
        assert overloaded.wait(5)
        served.engine.release("A")  # the SDK waits retry-after (1 s) and tries again
        reply = retrying.result(timeout=15)
        holder.result(timeout=5)
    assert statuses == [529, 200]
    assert reply.content[0].text == "short reply"  # type: ignore[union-attr]
    assert [r.prompt for r in served.engine.runs] == ["A", "B"]


def test_a_client_that_stops_reading_holds_the_engine_not_memory(serve: Any) -> None:
    """Full speed: the engine waits on a bounded buffer instead of running the whole script into memory."""
    script = "x" * 1_000_000  # a delta per character: ~110 MB of SSE if it all ran
    served = serve(script, chunk=1)
    body = {"model": "any", "max_tokens": 10**7, "messages": USER, "stream": True}
    http = httpx.Client(base_url=served.url, headers=HEADERS, timeout=10)
    with http, http.stream("POST", "/v1/messages", json=body) as response:
        chunks = response.iter_bytes()  # kept: dropping the iterator would close the connection
        assert next(chunks).startswith(b"event: message_start")
        (run,) = served.engine.wait_runs(1)
        # The client reads no more: once socket buffers fill, the engine must stop producing.
        wait_until(
            lambda: bool(run.part_times) and time.monotonic() - run.part_times[-1] > 0.3,
            timeout=20,
            what="the engine to wait for the client",
        )
        produced = len(run.part_times)
        assert not run.done.is_set() and produced < len(script) // 5
        closed_at = time.monotonic()
        del chunks
    # at most the one buffer the loop was already draining when the client left
    assert run.done.wait(5) and run.cancelled and run.parts_after(closed_at) <= MAX_BUFFERED_PARTS + 1
    print(f"\nengine paused after {produced} of {len(script)} deltas; stopped on close")
    wait_until(served.idle)


def test_a_thousand_aborted_streams_leak_nothing(serve: Any) -> None:
    # 20,000 deltas/s: far faster than the client reads. (At full speed a pure-Python engine thread in
    # this same process hogs the GIL and each round trip costs ~20 ms of hand-offs, not server work.)
    served = serve(LONG, chunk=1, rate=20_000)
    served.engine.record_parts = False
    process = psutil.Process()
    body = {"model": "any", "max_tokens": 10**6, "messages": USER, "stream": True}
    threads_before = set(threading.enumerate())  # an earlier test's thread may still be ending

    def abort_streams(count: int) -> None:
        with httpx.Client(base_url=served.url, headers=HEADERS, timeout=10) as http:
            for _ in range(count):
                with http.stream("POST", "/v1/messages", json=body) as response:
                    assert response.status_code == 200
                    first = next(response.iter_bytes())
                    assert first.startswith(b"event: message_start")

    abort_streams(100)  # warm up allocator pools and caches
    wait_until(lambda: served.idle() and not generation_threads(), timeout=10)
    gc.collect()
    rss_before = process.memory_info().rss
    started = time.monotonic()
    abort_streams(1000)
    elapsed = time.monotonic() - started
    wait_until(
        lambda: served.idle() and not generation_threads(), timeout=10, what="every generation to stop"
    )
    gc.collect()
    rss_after = process.memory_info().rss
    mib = 2**20
    print(
        f"\n1000 aborted streams in {elapsed:.1f}s: RSS {rss_before / mib:.0f} -> {rss_after / mib:.0f} MiB"
    )
    assert served.api.generations_started == 1100
    assert all(run.done.is_set() for run in served.engine.runs)
    assert set(threading.enumerate()) - threads_before == set()  # no thread started here is left
    assert (rss_after - rss_before) / mib < 25
