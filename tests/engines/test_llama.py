"""The llama.cpp engine on the real built-in model (SmolLM2-135M-Instruct): no mocks."""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Generator, Iterator
from typing import Any, cast

import llama_cpp
import pytest
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from streamchat.api.request import MessagesRequest, parse_messages_request
from streamchat.api.stream import BlockStop, Finish, InputJsonDelta, Part, TextDelta, ToolUseStart
from streamchat.config import builtin_model_path
from streamchat.engines import engine_from_args
from streamchat.engines.base import EngineError
from streamchat.engines.llama import DEFAULT_PARALLEL, LlamaEngine
from streamchat.engines.output import utf8_decoder

QUESTION = [{"role": "user", "content": "Name three colours of the rainbow."}]
WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city name"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer"},
        },
        "required": ["city", "unit"],
    },
}
CLOCK = {
    "name": "get_time",
    "description": "Get the current time in a time zone.",
    "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
}


@pytest.fixture(scope="module")
def engine() -> Iterator[LlamaEngine]:
    loaded = LlamaEngine(n_ctx=2048, seed=7)
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def tokenizer() -> Iterator[llama_cpp.Llama]:
    """The same GGUF file, vocabulary only: an independent path to token counts."""
    vocab = llama_cpp.Llama(str(builtin_model_path()), vocab_only=True, verbose=False)
    yield vocab
    vocab.close()


def request(messages: list[dict[str, Any]] = QUESTION, **body: Any) -> MessagesRequest:
    return parse_messages_request({"model": "smollm2-135m-instruct", "max_tokens": 24, "temperature": 0,
                                   "messages": messages, **body})  # fmt: skip


def run(engine: LlamaEngine, req: MessagesRequest) -> tuple[list[Part], Finish]:
    parts = list(engine.generate(req, threading.Event()))
    finish = parts[-1]
    assert isinstance(finish, Finish) and not any(isinstance(p, Finish) for p in parts[:-1])
    return parts[:-1], finish


def text_of(parts: list[Part]) -> str:
    return "".join(p.text for p in parts if isinstance(p, TextDelta))


def test_identity_and_limits(engine: LlamaEngine) -> None:
    assert engine.model_id == "smollm2-135m-instruct"
    assert engine.display_name == "SmolLM2-135M-Instruct (local, Q4_1)"
    assert engine.context_window == 2048 and not engine.accepts_media
    assert engine.max_concurrency == DEFAULT_PARALLEL == 8  # the default chosen in docs/benchmarks.md
    assert engine.model_path == str(builtin_model_path())


def test_generates_text_with_sane_usage(engine: LlamaEngine) -> None:
    parts, finish = run(engine, request(max_tokens=40))
    assert text_of(parts).strip()
    assert finish.stop_reason in ("end_turn", "max_tokens") and 1 <= finish.output_tokens <= 40
    assert len(parts) <= finish.output_tokens  # at most one delta per generated token


def test_count_tokens_matches_llama_cpp_python_own_rendering(
    engine: LlamaEngine, tokenizer: llama_cpp.Llama
) -> None:
    meta = tokenizer.metadata
    formatter = Jinja2ChatFormatter(
        meta["tokenizer.chat_template"], eos_token="<|im_end|>", bos_token="<|im_start|>"
    )
    conversations = [
        ("", QUESTION),
        ("You are terse.", [*QUESTION, {"role": "assistant", "content": "Red, green, blue."},
                            {"role": "user", "content": "Now in French, s'il vous plaît: é, ü, 🐉"}]),
    ]  # fmt: skip
    for system, messages in conversations:
        chat: list[Any] = ([{"role": "system", "content": system}] if system else []) + messages
        rendered = formatter(messages=chat).prompt
        expected = len(tokenizer.tokenize(rendered.encode(), add_bos=False, special=True))
        assert engine.count_tokens(request(messages, system=system)) == expected


def test_greedy_is_deterministic_across_cache_reuse(engine: LlamaEngine) -> None:
    first = run(engine, request(max_tokens=30))
    second = run(engine, request(max_tokens=30))  # the prompt now comes from the KV cache
    assert text_of(first[0]) == text_of(second[0]) and first[1] == second[1]


def test_max_tokens_stops_with_exactly_that_many_tokens(engine: LlamaEngine) -> None:
    _, finish = run(
        engine, request([{"role": "user", "content": "Write a long story about a dragon."}], max_tokens=7)
    )
    assert (finish.stop_reason, finish.output_tokens) == ("max_tokens", 7)


def test_stop_sequence_from_a_greedy_reply(engine: LlamaEngine) -> None:
    story = [{"role": "user", "content": "Write a long story about a dragon."}]
    full = text_of(run(engine, request(story, max_tokens=40))[0])
    words = full.split()
    stop = words[len(words) // 2]  # a word from the middle of the reply
    parts, finish = run(engine, request(story, max_tokens=40, stop_sequences=[stop]))
    assert (finish.stop_reason, finish.stop_sequence) == ("stop_sequence", stop)
    assert text_of(parts) == full[: full.index(stop)]


def test_cancel_stops_between_tokens(engine: LlamaEngine) -> None:
    cancel = threading.Event()
    seen = []
    for part in engine.generate(
        request([{"role": "user", "content": "Count to one hundred."}], max_tokens=200), cancel
    ):
        seen.append(part)
        cancel.set()
    assert len(seen) <= 2 and not any(isinstance(p, Finish) for p in seen)
    assert run(engine, request(max_tokens=3))[1].output_tokens == 3  # the engine is free again


def test_a_generation_left_early_stops_and_frees_the_engine(engine: LlamaEngine) -> None:
    story = request([{"role": "user", "content": "Write a long story about a dragon."}], max_tokens=500)
    left = cast(Generator[Part, None, None], engine.generate(story, threading.Event()))
    assert isinstance(next(left), TextDelta)
    left.close()  # as the server does when the client goes away
    results: list[tuple[list[Part], Finish]] = []
    worker = threading.Thread(target=lambda: results.append(run(engine, request(max_tokens=4))))
    worker.start()  # from another thread, as the server calls it
    worker.join(timeout=30)
    assert results and results[0][1].output_tokens == 4


def check_weather_input(value: dict[str, Any]) -> None:
    """Validation by hand against WEATHER's schema (jsonschema is not installed)."""
    assert set(value) <= {"city", "unit", "days"} and {"city", "unit"} <= set(value)
    assert isinstance(value["city"], str) and value["unit"] in ("celsius", "fahrenheit")
    assert isinstance(value.get("days", 0), int)


def test_forced_tool_call_is_valid_and_streamed(engine: LlamaEngine) -> None:
    ask = [{"role": "user", "content": "What is the weather like in Paris today?"}]
    parts, finish = run(engine, request(ask, max_tokens=60, tools=[WEATHER, CLOCK],
                                        tool_choice={"type": "tool", "name": "get_weather"}))  # fmt: skip
    assert finish.stop_reason == "tool_use"
    start, deltas, stop = parts[0], parts[1:-1], parts[-1]
    assert isinstance(start, ToolUseStart) and start.name == "get_weather" and start.id.startswith("toolu_01")
    assert isinstance(stop, BlockStop) and all(isinstance(d, InputJsonDelta) for d in deltas)
    assert len(deltas) >= 3  # split as generated, not sent in one piece
    check_weather_input(json.loads("".join(d.partial_json for d in deltas)))  # type: ignore[union-attr]


def test_any_tool_call_picks_an_offered_tool(engine: LlamaEngine) -> None:
    ask = [{"role": "user", "content": "What time is it in Tokyo?"}]
    parts, finish = run(
        engine, request(ask, max_tokens=60, tools=[WEATHER, CLOCK], tool_choice={"type": "any"})
    )
    assert finish.stop_reason == "tool_use"
    start = parts[0]
    assert isinstance(start, ToolUseStart)
    value = json.loads("".join(p.partial_json for p in parts if isinstance(p, InputJsonDelta)))
    if start.name == "get_time":
        assert set(value) == {"zone"} and isinstance(value["zone"], str)
    else:
        check_weather_input(value)


def test_prefill_is_continued_not_repeated(engine: LlamaEngine) -> None:
    prefill = "The three colours are"
    req = request([*QUESTION, {"role": "assistant", "content": prefill}], max_tokens=12)
    assert engine.prompt(req).text.text.endswith("<|im_start|>assistant\n" + prefill)
    parts, finish = run(engine, req)
    reply = text_of(parts)
    assert reply.strip() and not reply.lstrip().startswith(prefill)
    assert finish.output_tokens >= 1


def test_context_window_exceeded() -> None:
    small = LlamaEngine(n_ctx=256)
    try:
        story = [{"role": "user", "content": "Write a very long story about a dragon. " * 20}]
        req = request(story, max_tokens=1000)
        prompt_tokens = small.count_tokens(req)
        _, finish = run(small, req)
        assert finish.stop_reason == "model_context_window_exceeded"
        # the cache filled up: the last token generated could not be evaluated
        assert prompt_tokens + finish.output_tokens == small.context_window + 1
    finally:
        small.close()
    with pytest.raises(EngineError):
        small.count_tokens(req)  # a closed engine refuses work rather than touch freed memory


def test_multibyte_characters_split_over_tokens_decode_whole(tokenizer: llama_cpp.Llama) -> None:
    text = "Café 🐉 — naïve 日本"
    tokens = tokenizer.tokenize(text.encode(), add_bos=False, special=False)
    pieces = [tokenizer.detokenize([t]) for t in tokens]
    partial = [p for p in pieces if p.decode("utf-8", "replace") != p.decode("utf-8", "ignore")]
    assert partial  # some characters are split over tokens
    decode = utf8_decoder().decode
    out = [decode(p) for p in pieces] + [decode(b"", True)]
    assert "".join(out) == text and "\ufffd" not in "".join(out)


def weather_turn(city: str, n: int) -> list[dict[str, Any]]:
    call = {
        "type": "tool_use",
        "id": f"toolu_{n}",
        "name": "get_weather",
        "input": {"city": city, "unit": "celsius"},
    }
    return [
        {"role": "user", "content": f"What's the weather in {city}?"},
        {"role": "assistant", "content": [call]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": f"toolu_{n}", "content": "Sunny, 20 C"}],
        },
        {"role": "assistant", "content": f"It is sunny and 20 C in {city}."},
    ]


FEW_SHOT = [*weather_turn("Paris", 1), *weather_turn("Rome", 2), *weather_turn("Berlin", 3),
            {"role": "user", "content": "What's the weather in London?"}]  # fmt: skip


def test_auto_turns_a_reply_that_starts_a_call_into_a_valid_tool_use(engine: LlamaEngine) -> None:
    # greedy, this history makes the model answer with the call form it saw three times
    parts, finish = run(engine, request(FEW_SHOT, max_tokens=60, tools=[WEATHER, CLOCK]))
    assert finish.stop_reason == "tool_use"
    assert isinstance(parts[0], ToolUseStart) and parts[0].name == "get_weather"
    check_weather_input(json.loads("".join(p.partial_json for p in parts if isinstance(p, InputJsonDelta))))


def test_tool_choice_none_answers_in_text(engine: LlamaEngine) -> None:
    req = request(FEW_SHOT, max_tokens=30, tools=[WEATHER, CLOCK], tool_choice={"type": "none"})
    assert "# Tools" not in engine.prompt(req).text.text
    parts, finish = run(engine, req)
    assert finish.stop_reason in ("end_turn", "max_tokens") and all(isinstance(p, TextDelta) for p in parts)


def test_the_builtin_model_answers_with_its_model_card_settings_by_default(engine: LlamaEngine) -> None:
    assert engine.sampling_source == "the SmolLM2 model card"  # read from the file's own metadata
    default = parse_messages_request({"model": "m", "max_tokens": 8, "messages": QUESTION})
    settings = engine.sampling(default)
    assert (settings.temperature, settings.top_p) == (0.2, 0.9) and settings.guarded
    assert engine.sampling(request()).greedy  # the tests' requests set temperature 0


def test_server_options_reach_the_engine() -> None:
    args = argparse.Namespace(engine="llama", model_path=None, n_ctx=256, parallel=2, repeat_penalty=1.0,
                              dry_multiplier=0.6, threads=None, seed=0)  # fmt: skip
    loaded = engine_from_args(args)
    try:
        assert isinstance(loaded, LlamaEngine) and loaded.max_concurrency == 2
        default = parse_messages_request({"model": "m", "max_tokens": 12, "messages": QUESTION})
        settings = loaded.sampling(default)
        assert (settings.repeat_penalty, settings.dry_multiplier) == (1.0, 0.6)
        _, finish = run(loaded, default)
        assert finish.output_tokens >= 1  # the DRY sampler runs
    finally:
        loaded.close()


def test_tool_calls_and_text_replies_decoded_in_one_batch(engine: LlamaEngine) -> None:
    ask = [{"role": "user", "content": "What is the weather like in Paris today?"}]
    forced = {"type": "tool", "name": "get_weather"}
    calls = [request(ask, max_tokens=60, tools=[WEATHER, CLOCK], tool_choice=forced) for _ in range(2)]
    texts = [request(max_tokens=30), request([{"role": "user", "content": "Write a poem about the sea."}])]
    results: dict[int, tuple[list[Part], Finish]] = {}
    workers = [threading.Thread(target=lambda i=i, r=r: results.__setitem__(i, run(engine, r)))
               for i, r in enumerate([*calls, *texts])]  # fmt: skip
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    for i in range(2):
        parts, finish = results[i]
        assert finish.stop_reason == "tool_use" and isinstance(parts[0], ToolUseStart)
        arguments = "".join(p.partial_json for p in parts if isinstance(p, InputJsonDelta))
        check_weather_input(json.loads(arguments))
    for i in range(2, 4):
        parts, finish = results[i]
        assert finish.stop_reason in ("end_turn", "max_tokens") and text_of(parts).strip()
        assert all(isinstance(p, TextDelta) for p in parts)
    stats = engine.kv_stats()
    assert stats.running == 0 and stats.consistent
