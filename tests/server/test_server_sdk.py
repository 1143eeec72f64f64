"""The official Python SDK, unchanged, against a real local server: streams, replies, tools, thinking."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from typing import Any

import anthropic
import pytest
from server_harness import USER, wait_until

MODEL_ID = "streamchat-script"
HELLO = "Hello from the **script** engine, streamed in small pieces."

TOOL_INPUT = {"city": "Paris", "unit": "celsius", "days": [1, 2, 3]}
TOOL_ID = "toolu_01ScriptedWeatherCall00"
THINKING = "The user asks about the weather; I should call the tool."
ANSWER = "Let me look that up."
THINK_TEXT_TOOL = [
    {"type": "thinking", "thinking": THINKING},
    {"type": "text", "text": ANSWER},
    {"type": "tool_use", "id": TOOL_ID, "name": "get_weather", "input": TOOL_INPUT},
]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather forecast for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def deltas(text: str, chunk: int) -> int:
    return math.ceil(len(text) / chunk)


def test_sync_stream_text_stream_and_final_message(serve: Any) -> None:
    served = serve(HELLO, chunk=3)
    client = served.client()
    with client.messages.stream(model="my-local-model", max_tokens=1024, messages=USER) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
        text = stream.get_final_text()
    assert "".join(pieces) == HELLO == text
    assert len(pieces) == deltas(HELLO, 3) and all(len(p) <= 3 for p in pieces)
    assert final.model == MODEL_ID  # any model name is accepted; the loaded one is reported
    assert final.role == "assistant" and final.type == "message" and final.id.startswith("msg_")
    assert final.stop_reason == "end_turn" and final.stop_sequence is None
    assert final.usage.output_tokens == len(pieces)
    assert final.usage.input_tokens == client.messages.count_tokens(model="x", messages=USER).input_tokens


def test_sync_stream_events_and_snapshot_mid_stream(serve: Any) -> None:
    served = serve(HELLO, chunk=5)
    seen: list[str] = []
    snapshots: list[str] = []
    with served.client().messages.stream(model="any", max_tokens=1024, messages=USER) as stream:
        for event in stream:
            seen.append(event.type)
            if event.type == "text":
                snapshot = stream.current_message_snapshot
                assert snapshot.stop_reason is None
                assert snapshot.content[0].type == "text"
                assert snapshot.content[0].text == event.snapshot
                snapshots.append(snapshot.content[0].text)
    assert seen[0] == "message_start" and seen[-1] == "message_stop"
    assert seen.count("text") == deltas(HELLO, 5) == seen.count("content_block_delta")
    assert seen.count("content_block_start") == 1 == seen.count("content_block_stop")
    assert snapshots[0] == HELLO[:5] and snapshots[-1] == HELLO
    assert all(a != b and b.startswith(a) for a, b in itertools.pairwise(snapshots))


def test_async_stream(serve: Any) -> None:
    served = serve(HELLO, chunk=4)

    async def main() -> tuple[list[str], anthropic.types.Message, str]:
        client = served.async_client()
        try:
            async with client.messages.stream(model="any", max_tokens=1024, messages=USER) as stream:
                pieces = [p async for p in stream.text_stream]
                final = await stream.get_final_message()
                text = await stream.get_final_text()
            return pieces, final, text
        finally:
            await client.close()

    pieces, final, text = asyncio.run(main())
    assert "".join(pieces) == HELLO == text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == len(pieces)


def test_async_create_stream_and_snapshot(serve: Any) -> None:
    served = serve(THINK_TEXT_TOOL, chunk=6)

    async def main() -> list[str]:
        client = served.async_client()
        try:
            kinds = []
            stream = await client.messages.create(model="any", max_tokens=1024, messages=USER, stream=True)
            async for event in stream:
                kinds.append(event.type)
            async with client.messages.stream(model="any", max_tokens=1024, messages=USER) as mstream:
                async for event in mstream:
                    if event.type == "input_json":
                        assert mstream.current_message_snapshot.content[2].type == "tool_use"
                final = await mstream.get_final_message()
            assert final.content[2].input == TOOL_INPUT  # type: ignore[union-attr]
            return kinds
        finally:
            await client.close()

    kinds = asyncio.run(main())
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]


def expected_raw_sequence(chunk: int) -> list[tuple[str, str | int | None]]:
    """The API's event order for THINK_TEXT_TOOL: (type, delta type or block index)."""
    payload = json.dumps(TOOL_INPUT)
    seq: list[tuple[str, str | int | None]] = [("message_start", None), ("content_block_start", 0)]
    seq += [("content_block_delta", "thinking_delta")] * deltas(THINKING, chunk)
    seq += [("content_block_delta", "signature_delta"), ("content_block_stop", 0), ("content_block_start", 1)]
    seq += [("content_block_delta", "text_delta")] * deltas(ANSWER, chunk)
    seq += [("content_block_stop", 1), ("content_block_start", 2)]
    seq += [("content_block_delta", "input_json_delta")] * deltas(payload, chunk)
    seq += [("content_block_stop", 2), ("message_delta", None), ("message_stop", None)]
    return seq


def test_create_stream_true_raw_event_sequence(serve: Any) -> None:
    chunk = 7
    served = serve(THINK_TEXT_TOOL, chunk=chunk)
    client = served.client()
    stream = client.messages.create(
        model="any",
        max_tokens=4096,
        messages=USER,
        tools=[WEATHER_TOOL],
        stream=True,
        thinking={"type": "enabled", "budget_tokens": 2048},
    )
    events = list(stream)
    got: list[tuple[str, str | int | None]] = []
    for event in events:
        if event.type == "content_block_delta":
            got.append((event.type, event.delta.type))
        elif event.type in ("content_block_start", "content_block_stop"):
            got.append((event.type, event.index))
        else:
            got.append((event.type, None))
    assert got == expected_raw_sequence(chunk)

    start = events[0]
    assert start.type == "message_start"
    assert start.message.content == [] and start.message.stop_reason is None
    assert start.message.usage.output_tokens == 0 and start.message.usage.cache_read_input_tokens == 0
    blocks = [e.content_block for e in events if e.type == "content_block_start"]
    assert blocks[0].type == "thinking" and blocks[0].thinking == "" and blocks[0].signature == ""
    assert blocks[1].type == "text" and blocks[1].text == ""
    assert blocks[2].type == "tool_use" and blocks[2].input == {} and blocks[2].id == TOOL_ID
    json_parts = [
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    ]
    assert len(json_parts) >= 2 and json.loads("".join(json_parts)) == TOOL_INPUT
    delta = events[-2]
    assert delta.type == "message_delta"
    assert delta.delta.stop_reason == "tool_use" and delta.delta.stop_sequence is None
    expected_tokens = deltas(THINKING, chunk) + deltas(ANSWER, chunk) + len(json_parts)
    assert delta.usage.output_tokens == expected_tokens
    assert delta.usage.input_tokens == start.message.usage.input_tokens


def test_tool_use_and_thinking_through_message_stream(serve: Any) -> None:
    served = serve(THINK_TEXT_TOOL, chunk=4)
    client = served.client()
    kinds: list[str] = []
    json_snapshots: list[object] = []
    with client.messages.stream(model="any", max_tokens=4096, messages=USER, tools=[WEATHER_TOOL]) as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "input_json":
                json_snapshots.append(event.snapshot)
        final = stream.get_final_message()
    assert kinds.count("thinking") == deltas(THINKING, 4) and kinds.count("signature") == 1
    assert kinds.count("input_json") >= 2
    assert json_snapshots[-1] == TOOL_INPUT
    thinking, text, tool = final.content
    assert thinking.type == "thinking" and thinking.thinking == THINKING and thinking.signature
    assert text.type == "text" and text.text == ANSWER
    assert tool.type == "tool_use" and tool.id == TOOL_ID and tool.name == "get_weather"
    assert tool.input == TOOL_INPUT
    assert final.stop_reason == "tool_use"

    # The reply goes back as history with its tool result: the next turn is accepted.
    follow_up = [
        *USER,
        {"role": "assistant", "content": final.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": TOOL_ID, "content": "18C"}]},
    ]
    assert client.messages.create(model="any", max_tokens=64, messages=follow_up).content


def test_non_streaming_create_equals_streamed_final_message(serve: Any) -> None:
    served = serve(THINK_TEXT_TOOL, chunk=5)
    client = served.client()
    created = client.messages.create(model="any", max_tokens=4096, messages=USER, tools=[WEATHER_TOOL])
    with client.messages.stream(model="any", max_tokens=4096, messages=USER, tools=[WEATHER_TOOL]) as stream:
        streamed = stream.get_final_message()
    assert isinstance(created, anthropic.types.Message)
    assert created.id != streamed.id
    fields = {"id"}
    assert created.model_dump(exclude=fields) == anthropic.types.Message.model_validate(
        streamed.model_dump(exclude={"content"}) | {"content": [b.model_dump() for b in streamed.content]}
    ).model_dump(exclude=fields)
    assert created.usage.service_tier == "standard"


def test_stop_sequence(serve: Any) -> None:
    served = serve("one two STOP three four", chunk=2)
    client = served.client()
    with client.messages.stream(
        model="any", max_tokens=100, messages=USER, stop_sequences=["nope", "STOP"]
    ) as s:
        final = s.get_final_message()
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == "STOP"
    assert final.content[0].text == "one two "  # type: ignore[union-attr]
    created = client.messages.create(model="any", max_tokens=100, messages=USER, stop_sequences=["STOP"])
    assert created.stop_reason == "stop_sequence" and created.stop_sequence == "STOP"


def test_max_tokens(serve: Any) -> None:
    served = serve("abcdefghijklmnop", chunk=2)
    client = served.client()
    with client.messages.stream(model="any", max_tokens=3, messages=USER) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert pieces == ["ab", "cd", "ef"]
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 3
    created = client.messages.create(model="any", max_tokens=3, messages=USER)
    assert created.stop_reason == "max_tokens" and created.content[0].text == "abcdef"  # type: ignore[union-attr]


def test_max_tokens_inside_tool_input(serve: Any) -> None:
    """Cut mid-JSON, the non-streaming reply still folds (partial input), as the SDK's stream does."""
    served = serve(THINK_TEXT_TOOL[2:], chunk=4)
    client = served.client()
    created = client.messages.create(model="any", max_tokens=4, messages=USER, tools=[WEATHER_TOOL])
    with client.messages.stream(model="any", max_tokens=4, messages=USER, tools=[WEATHER_TOOL]) as stream:
        streamed = stream.get_final_message()
    assert created.stop_reason == streamed.stop_reason == "max_tokens"
    assert created.content[0].type == "tool_use" and streamed.content[0].type == "tool_use"
    assert created.content[0].input == streamed.content[0].input


def test_prefill_is_continued(serve: Any) -> None:
    served = serve("Hello from the script engine.", chunk=4)
    client = served.client()
    prefilled = [*USER, {"role": "assistant", "content": "Hello from"}]
    with client.messages.stream(model="any", max_tokens=100, messages=prefilled) as stream:
        text = stream.get_final_text()
    assert text == " the script engine."
    created = client.messages.create(model="any", max_tokens=100, messages=prefilled)
    assert created.content[0].text == " the script engine."  # type: ignore[union-attr]


def test_engine_failure_mid_stream(serve: Any) -> None:
    served = serve(
        [{"type": "text", "text": "partial answer"}, {"type": "error", "message": "GPU on fire"}], chunk=4
    )
    client = served.client()
    received: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:  # noqa: SIM117
        with client.messages.stream(model="any", max_tokens=100, messages=USER) as stream:
            for text in stream.text_stream:
                received.append(text)
    assert "".join(received) == "partial answer"  # everything before the failure arrived
    assert "GPU on fire" in str(caught.value)
    assert isinstance(caught.value.body, dict) and caught.value.body["error"]["type"] == "api_error"
    assert caught.value.body["request_id"] == caught.value.response.headers["request-id"]

    # Non-streaming, the same failure is a 500 api_error.
    with pytest.raises(anthropic.InternalServerError) as failed:
        client.messages.create(model="any", max_tokens=100, messages=USER)
    assert failed.value.status_code == 500 and "GPU on fire" in str(failed.value)

    # The slot was freed: the server goes on serving.
    wait_until(served.idle, what="the slot to be released")
    assert client.messages.count_tokens(model="any", messages=USER).input_tokens > 0


def test_unknown_body_fields_and_any_model_name(serve: Any) -> None:
    served = serve(HELLO)
    client = served.client()
    reply = client.messages.create(
        model="claude-opus-4-1-20250805",
        max_tokens=100,
        messages=USER,
        metadata={"user_id": "u-1"},
        system="Be brief.",
        service_tier="auto",
        # this SDK no longer has sampling keywords: they go in the body as-is
        extra_body={"some_future_field": {"nested": True}, "temperature": 0.2, "top_p": 0.9, "top_k": 5},
    )
    assert reply.model == MODEL_ID and reply.content[0].text == HELLO  # type: ignore[union-attr]


def test_count_tokens(serve: Any) -> None:
    served = serve(HELLO)
    client = served.client()
    short = client.messages.count_tokens(model="any", messages=USER)
    longer = client.messages.count_tokens(
        model="any", messages=USER, system="A much longer system prompt " * 10, tools=[WEATHER_TOOL]
    )
    assert isinstance(short, anthropic.types.MessageTokensCount)
    assert 0 < short.input_tokens < longer.input_tokens
    reply = client.messages.create(model="any", max_tokens=10, messages=USER)
    assert reply.usage.input_tokens == short.input_tokens


def test_models_list_and_retrieve(serve: Any) -> None:
    served = serve(HELLO)
    client = served.client()
    models = list(client.models.list())
    assert [m.id for m in models] == [MODEL_ID]
    assert models[0].type == "model" and models[0].display_name == "Script engine"
    info = client.models.retrieve(MODEL_ID)
    assert info.id == MODEL_ID and info.created_at.year >= 2024
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.models.retrieve("claude-unknown-model")
    error = missing.value
    assert error.status_code == 404 and isinstance(error.body, dict)
    assert error.body["error"]["type"] == "not_found_error"
    assert error.request_id == error.response.headers["request-id"] == error.body["request_id"]


def test_beta_endpoints(serve: Any) -> None:
    """`client.beta.*` (anthropic-beta header); `?beta=true`, which other SDK versions add, is accepted."""
    served = serve(THINK_TEXT_TOOL, chunk=8)
    urls: list[str] = []
    http = anthropic.DefaultHttpxClient(event_hooks={"request": [lambda r: urls.append(str(r.url))]})
    client = served.client(http_client=http)
    betas: Any = ["interleaved-thinking-2025-05-14"]
    beta = {"beta": "true"}
    with client.beta.messages.stream(
        model="any", max_tokens=4096, messages=USER, tools=[WEATHER_TOOL], betas=betas
    ) as stream:
        streamed = stream.get_final_message()
    created = client.beta.messages.create(model="any", max_tokens=4096, messages=USER, extra_query=beta)
    raw = list(
        client.beta.messages.create(
            model="any", max_tokens=4096, messages=USER, stream=True, betas=betas, extra_query=beta
        )
    )
    counted = client.beta.messages.count_tokens(model="any", messages=USER, extra_query=beta)
    models = list(client.beta.models.list(extra_query=beta))
    info = client.beta.models.retrieve(MODEL_ID, extra_query=beta)
    assert isinstance(created, anthropic.types.beta.BetaMessage)
    assert streamed.content[2].input == TOOL_INPUT == created.content[2].input  # type: ignore[union-attr]
    assert raw[0].type == "message_start" and raw[-1].type == "message_stop"
    assert counted.input_tokens > 0 and models[0].id == info.id == MODEL_ID
    assert len(urls) == 6 and all(u.endswith("?beta=true") for u in urls[1:]), urls


def test_script_engine_random_chunks_are_seeded(serve: Any) -> None:
    served = serve(HELLO, chunk=0)  # 0: random 1-16 characters per delta, from the seed
    client = served.client()

    def pieces() -> list[str]:
        with client.messages.stream(model="any", max_tokens=1000, messages=USER) as stream:
            return list(stream.text_stream)

    first, second = pieces(), pieces()
    assert "".join(first) == HELLO and first == second
    assert all(1 <= len(p) <= 16 for p in first) and len({len(p) for p in first}) > 1


def test_script_engine_paces_deltas(serve: Any) -> None:
    """`rate` is deltas per second: 20 deltas at 100/s can't arrive in less than ~0.2 s (a lower bound)."""
    served = serve("x" * 20, chunk=1, rate=100)
    with served.client().messages.stream(model="any", max_tokens=100, messages=USER) as stream:
        next(iter(stream.text_stream))
        first = time.monotonic()
        rest = list(stream.text_stream)
        elapsed = time.monotonic() - first
    assert len(rest) == 19 and elapsed >= 0.18


def test_script_replies_follow_the_conversation(serve: Any) -> None:
    served = serve({"replies": ["First reply.", [{"type": "text", "text": "Second reply."}]]})
    client = served.client()
    one = client.messages.create(model="any", max_tokens=100, messages=USER)
    history = [*USER, {"role": "assistant", "content": one.content}, {"role": "user", "content": "More?"}]
    two = client.messages.create(model="any", max_tokens=100, messages=history)
    assert [one.content[0].text, two.content[0].text] == ["First reply.", "Second reply."]  # type: ignore[union-attr]
