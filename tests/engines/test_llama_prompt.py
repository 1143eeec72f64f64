"""Prompt rendering, tool plans and tool-call grammars of the llama engine (no model needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamchat.api.request import MessagesRequest, parse_messages_request
from streamchat.engines.grammar import tool_call_grammar
from streamchat.engines.llama import model_names, tool_plan
from streamchat.engines.prompt import CHATML_TEMPLATE, ChatTemplate, chat_messages, render_prompt

WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def request(**body: Any) -> MessagesRequest:
    return parse_messages_request({"model": "m", "max_tokens": 16, **body})


def test_history_renders_tool_calls_results_and_drops_thinking() -> None:
    req = request(
        system="Be brief.",
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "secret plan", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1",
                 "content": [{"type": "text", "text": "Sunny"}]},
                {"type": "text", "text": "And tomorrow?"},
            ]},
        ],
    )  # fmt: skip
    messages = chat_messages(req, with_tools=True)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"].startswith("Be brief.\n\n# Tools")
    assert (
        '## get_weather\nCurrent weather in a city.\ninput_schema: {"type": "object"'
        in messages[0]["content"]
    )
    assert messages[2]["content"] == 'Checking.\n{"name": "get_weather", "input": {"city": "Paris"}}'
    assert messages[3]["content"] == "Tool result for get_weather:\nSunny\n\nAnd tomorrow?"
    assert "secret plan" not in str(messages)
    assert chat_messages(req, with_tools=False)[0] == {"role": "system", "content": "Be brief."}


def test_prefill_leaves_the_assistant_turn_open() -> None:
    template = ChatTemplate(CHATML_TEMPLATE)
    req = request(messages=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}])
    prompt = render_prompt(template, req, with_tools=False)
    assert prompt.text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello"
    assert prompt.prefill == "Hello" and not prompt.in_thinking


def test_a_template_that_opens_thinking_starts_the_reply_inside_it() -> None:
    template = ChatTemplate(CHATML_TEMPLATE + "{% if add_generation_prompt %}<think>\n{% endif %}")
    prompt = render_prompt(template, request(messages=[{"role": "user", "content": "Hi"}]), with_tools=False)
    assert prompt.in_thinking and template.generation_prompt == "<|im_start|>assistant\n<think>\n"
    plain = ChatTemplate(CHATML_TEMPLATE)
    mention = request(messages=[{"role": "user", "content": "What does <think> do?"}])
    assert not render_prompt(plain, mention, with_tools=False).in_thinking
    thinking_prefill = request(
        messages=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "<think>Hmm"}]
    )
    assert render_prompt(plain, thinking_prefill, with_tools=False).in_thinking


def test_templates_may_use_hugging_face_extensions() -> None:
    source = (
        "{% for m in messages %}{% generation %}{{ m['content'] | tojson }}{% endgeneration %}"
        "{% if loop.index > 0 %}{% break %}{% endif %}{% endfor %}"
    )
    assert (
        ChatTemplate(source).render([{"role": "user", "content": "é"}, {"role": "user", "content": "x"}])
        == '"é"'
    )


def test_tool_plan_follows_tool_choice() -> None:
    now = {"name": "now", "input_schema": {"type": "object"}}
    user = [{"role": "user", "content": "Hi"}]
    assert tool_plan(request(messages=user)) == ("none", ())
    assert tool_plan(request(messages=user, tools=[WEATHER])) == ("auto", (WEATHER,))
    assert tool_plan(request(messages=user, tools=[WEATHER], tool_choice={"type": "none"})) == ("none", ())
    assert tool_plan(request(messages=user, tools=[WEATHER, now], tool_choice={"type": "any"}))[0] == "forced"
    only_now = {"type": "tool", "name": "now"}
    assert tool_plan(request(messages=user, tools=[WEATHER, now], tool_choice=only_now)) == ("forced", (now,))
    prefilled = [*user, {"role": "assistant", "content": "Sure"}]
    assert tool_plan(request(messages=prefilled, tools=[WEATHER], tool_choice={"type": "any"}))[0] == "auto"


def test_tool_call_grammar_binds_each_name_to_its_schema() -> None:
    def counter(name: str, kind: str) -> dict[str, Any]:  # same $defs name, different meaning
        schema = {
            "type": "object",
            "properties": {"k": {"$ref": "#/$defs/K"}},
            "$defs": {"K": {"type": kind}},
        }
        return {"name": name, "input_schema": schema}

    rules = dict(
        line.split(" ::= ", 1)
        for line in tool_call_grammar([counter("a", "integer"), counter("b", "string")]).splitlines()
    )
    assert rules["root"] == "alternative-0 | alternative-1"
    assert rules["alternative-0-name"] == '"\\"a\\""' and rules["alternative-0-input-k"] == "integer"
    assert rules["alternative-1-name"] == '"\\"b\\""' and rules["alternative-1-input-k"] == "string"
    assert rules["char"].startswith('[^"\\\\\\x7F\\x00-\\x1F]')  # no raw control characters in strings


def test_tool_call_grammar_for_one_tool_and_its_fallback_to_any_object() -> None:
    rules = dict(line.split(" ::= ", 1) for line in tool_call_grammar([WEATHER]).splitlines())
    assert rules["root"] == '"{" space name-kv "," space input-kv "}" space'
    assert rules["input"] == '"{" space input-city-kv "}" space'  # no properties beyond the schema's
    odd = {"name": "odd", "input_schema": {"type": "object", "properties": {"x": {"type": "frobnicate"}}}}
    rules = dict(line.split(" ::= ", 1) for line in tool_call_grammar([odd]).splitlines())
    assert rules["input"] == "object"


def test_model_names_come_from_the_file_name() -> None:
    assert model_names(Path("/m/SmolLM2-135M-Instruct.Q4_1.gguf")) == (
        "smollm2-135m-instruct", "SmolLM2-135M-Instruct (local, Q4_1)")  # fmt: skip
    assert model_names(Path("qwen2.5-0.5b-instruct-q8_0.gguf")) == (
        "qwen2.5-0.5b-instruct", "qwen2.5-0.5b-instruct (local, q8_0)")  # fmt: skip
    assert model_names(Path("My Model.gguf")) == ("my-model", "My Model (local)")
