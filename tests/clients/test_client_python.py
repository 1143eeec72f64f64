"""Python frameworks nobody here wrote, unchanged, against a streamchat server on 127.0.0.1:
LangChain's `ChatAnthropic` and pydantic-ai's `AnthropicModel` (script engine: exact words)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import pydantic
from client_harness import RequestLog
from server_harness import API_KEY

MODEL = "claude-sonnet-4-5"  # a name the frameworks know (structured outputs, tools); the server answers any
WEATHER_INPUT = {"city": "Oslo", "unit": "celsius"}


class GetWeather(pydantic.BaseModel):
    """Get the current weather in a city."""

    city: str
    unit: str


class City(pydantic.BaseModel):
    name: str
    country: str
    population: int


def counted(url: str, **body: Any) -> int:
    """The server's own count for a request (the SDK's count_tokens)."""
    client = anthropic.Anthropic(base_url=url, api_key=API_KEY, max_retries=0)
    return client.messages.count_tokens(model=MODEL, **body).input_tokens


def test_langchain_streams_text_with_usage_metadata(serve: Any) -> None:
    from langchain_anthropic import ChatAnthropic

    text = "Streamed to LangChain, chunk by chunk."
    served = serve(text, chunk=5)
    llm = ChatAnthropic(model=MODEL, base_url=served.url, api_key=API_KEY, max_retries=0, max_tokens=256)
    chunks = list(llm.stream("Say something."))
    assert len(chunks) > 3  # it really streamed
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    assert total.text == text
    usage = total.usage_metadata
    assert usage is not None
    expected_input = counted(served.url, messages=[{"role": "user", "content": "Say something."}])
    assert usage["input_tokens"] == expected_input
    assert usage["output_tokens"] == -(-len(text) // 5)  # one token per scripted delta
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert total.response_metadata.get("stop_reason") == "end_turn"


def test_langchain_bind_tools_with_a_forced_tool(serve: Any) -> None:
    from langchain_anthropic import ChatAnthropic

    script = [{"type": "tool_use", "id": "toolu_01LangChain", "name": "GetWeather", "input": WEATHER_INPUT}]
    served = serve(script, chunk=6)
    llm = ChatAnthropic(model=MODEL, base_url=served.url, api_key=API_KEY, max_retries=0, max_tokens=256)
    bound = llm.bind_tools([GetWeather], tool_choice="GetWeather")
    reply = bound.invoke("Weather in Oslo?")
    assert reply.tool_calls == [
        {"name": "GetWeather", "args": WEATHER_INPUT, "id": "toolu_01LangChain", "type": "tool_call"}
    ]
    assert reply.usage_metadata and reply.usage_metadata["output_tokens"] > 0
    seen = served.engine.runs[-1]
    assert seen.prompt == "Weather in Oslo?"
    # streamed, the tool call arrives in pieces and adds up to the same call
    chunks = list(bound.stream("Weather in Oslo?"))
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    assert total.tool_calls and total.tool_calls[0]["args"] == WEATHER_INPUT


def _pydantic_ai_model(url: str) -> Any:
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.providers.anthropic import AnthropicProvider

    return AnthropicModel(MODEL, provider=AnthropicProvider(base_url=url, api_key=API_KEY))


def test_pydantic_ai_streams_text(serve: Any) -> None:
    from pydantic_ai import Agent

    text = "Hello from pydantic-ai, over streamchat."
    served = serve(text, chunk=4)
    agent = Agent(_pydantic_ai_model(served.url), instructions="Be brief.")

    async def run() -> tuple[list[str], Any]:
        async with agent.run_stream("Greet me.") as result:
            deltas = [d async for d in result.stream_text(delta=True, debounce_by=None)]
            return deltas, result.usage

    deltas, usage = asyncio.run(run())
    assert len(deltas) > 2 and "".join(deltas) == text
    assert usage.output_tokens == -(-len(text) // 4)
    assert usage.input_tokens > 0


def test_pydantic_ai_structured_output(serve: Any) -> None:
    """`NativeOutput` asks for `output_config.format`; the scripted JSON comes back as a `City`."""
    from pydantic_ai import Agent, NativeOutput

    city = {"name": "Oslo", "country": "Norway", "population": 709000}
    engine = RequestLog(json.dumps(city), chunk=9)
    served = serve(engine=engine)
    agent = Agent(_pydantic_ai_model(served.url), output_type=NativeOutput(City))
    result = agent.run_sync("Tell me about Oslo.")
    assert result.output == City(**city)
    schema = engine.requests[-1].output_format
    assert schema is not None and set(schema["properties"]) == {"name", "country", "population"}


def test_pydantic_ai_tool_output(serve: Any) -> None:
    """The default output mode: a `final_result` tool call whose input is the `City`."""
    from pydantic_ai import Agent

    city = {"name": "Bergen", "country": "Norway", "population": 291000}
    script = [{"type": "tool_use", "id": "toolu_01Final", "name": "final_result", "input": city}]
    served = serve(script, chunk=8)
    agent = Agent(_pydantic_ai_model(served.url), output_type=City)
    result = agent.run_sync("Tell me about Bergen.")
    assert result.output == City(**city)
