"""From a Messages request to the model's prompt text, through the GGUF file's own chat template.

The request's turns become `{"role", "content"}` chat messages (the shape every Hugging Face chat
template expects); tools become a section of the system message; the template renders the whole.

History conventions (the same forms the engine expects back from the model):
- an assistant `tool_use` block is written as the call form `{"name": ..., "input": {...}}`;
- a `tool_result` block is a user-side message part `Tool result for NAME:` + its content;
- `thinking` / `redacted_thinking` blocks are dropped, as the API itself drops earlier turns'
  thinking from the context (and a small model only gets confused by them);
- a mid-conversation `system` message is a template message of role `system` where it stands;
- `output_config.format` adds its JSON schema to the system message (the reply is also held to
  it by a grammar; the model writes better values when it knows the fields).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..api.request import Block, MessagesRequest

ChatMessage = dict[str, str]

# Used when a GGUF file carries no `tokenizer.chat_template` (ChatML, as SmolLM2 and Qwen use).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

CALL_FORM = '{"name": "<tool name>", "input": {<arguments matching the tool\'s input_schema>}}'


class _GenerationTags(jinja2.ext.Extension):
    """Accepts Hugging Face's `{% generation %}` tag (used by some templates for training masks)."""

    tags = {"generation"}  # noqa: RUF012 (typed by jinja2 as an instance attribute)

    def parse(self, parser: Any) -> Any:
        next(parser.stream)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:  # fmt: skip
    # the filter as transformers defines it (Jinja's own escapes HTML and sorts keys)
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)  # fmt: skip


def _raise(message: str) -> None:
    raise ValueError(f"chat template: {message}")


class ChatTemplate:
    """A Jinja2 chat template rendered the way Hugging Face transformers renders it."""

    def __init__(self, source: str, *, bos_token: str = "", eos_token: str = "") -> None:
        extensions = [_GenerationTags, jinja2.ext.loopcontrols]
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=extensions)
        env.filters["tojson"] = _tojson
        self.source = source
        self.bos_token = bos_token
        self.eos_token = eos_token
        self._template = env.from_string(source)

    def render(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True) -> str:
        """The prompt text for `messages` (special tokens appear as their text)."""
        return self._template.render(
            messages=list(messages),
            bos_token=self.bos_token,
            eos_token=self.eos_token,
            add_generation_prompt=add_generation_prompt,
            raise_exception=_raise,
            strftime_now=lambda fmt: dt.datetime.now().strftime(fmt),
        )

    @functools.cached_property
    def generation_prompt(self) -> str:
        """What the template appends to open the assistant's turn (e.g. `<|im_start|>assistant\\n`)."""
        probe = [{"role": "user", "content": "\x00"}]
        try:
            closed, opened = self.render(probe, add_generation_prompt=False), self.render(probe)
        except (jinja2.TemplateError, ValueError):  # a template with its own rules about turns
            return ""
        return opened[len(closed) :] if opened.startswith(closed) else ""


def call_text(name: str, arguments: Mapping[str, Any]) -> str:
    """A tool call in the form the model is told to use (and in which history shows it)."""
    return json.dumps({"name": name, "input": arguments}, ensure_ascii=False)


def tools_section(tools: Sequence[Block]) -> str:
    """The system-prompt section describing each tool and how to call one."""
    lines = [
        "# Tools",
        "",
        "You can call one of these tools instead of answering in text. To call a tool, reply with only "
        "one JSON object on a single line, in this form:",
        CALL_FORM,
        "The tool's result comes back in the next user message.",
    ]
    for tool in tools:
        lines += ["", f"## {tool['name']}"]
        if tool.get("description"):
            lines.append(str(tool["description"]))
        schema = tool.get("input_schema") or {"type": "object"}
        lines.append("input_schema: " + json.dumps(schema, ensure_ascii=False))
    return "\n".join(lines)


def _result_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        else:
            parts.append(f"[{block.get('type', 'content')}]")
    return "\n".join(parts)


def format_section(schema: Mapping[str, Any]) -> str:
    """The system-prompt section asking for a reply in a structured output format."""
    return ("# Output format\n\nReply with only one JSON value, no other text, valid for this JSON schema:\n"
            + json.dumps(schema, ensure_ascii=False))  # fmt: skip


def chat_messages(request: MessagesRequest, *, with_tools: bool) -> list[ChatMessage]:
    """The request as template messages (a final assistant turn included, as it is)."""
    sections = [request.system] if request.system else []
    if with_tools and request.tools:
        sections.append(tools_section(request.tools))
    if request.output_format is not None:
        sections.append(format_section(request.output_format))
    system = "\n\n".join(sections)
    out: list[ChatMessage] = [{"role": "system", "content": system}] if system else []
    names: dict[str, str] = {}  # tool_use id -> tool name, for the results that answer them
    for message in request.messages:
        parts: list[str] = []
        for block in message.content:
            kind = block.get("type")
            if kind == "text":
                parts.append(block["text"])
            elif kind == "tool_use":
                names[block["id"]] = block["name"]
                parts.append(call_text(block["name"], block.get("input") or {}))
            elif kind == "tool_result":
                name = names.get(block.get("tool_use_id", ""), "the tool")
                label = "Tool error for" if block.get("is_error") else "Tool result for"
                parts.append(f"{label} {name}:\n{_result_text(block.get('content'))}")
            # thinking, redacted_thinking and media are not part of a text-only prompt
        joiner = "\n" if message.role == "assistant" else "\n\n"
        out.append({"role": message.role, "content": joiner.join(parts)})
    return out


@dataclass(frozen=True)
class PromptText:
    """The rendered prompt and how the reply starts."""

    text: str
    prefill: str  # the final assistant turn's text, which the reply continues
    in_thinking: bool  # the prompt leaves the reply inside an open `<think>` block


def render_prompt(template: ChatTemplate, request: MessagesRequest, *, with_tools: bool) -> PromptText:
    """Render `request`; a final assistant turn stays open so the reply continues its text."""
    messages = chat_messages(request, with_tools=with_tools)
    prefill = request.prefill
    if request.messages[-1].role == "assistant":
        messages = messages[:-1]  # rendered open below: no end-of-turn after the prefill
    text = template.render(messages, add_generation_prompt=True) + prefill
    opening = template.generation_prompt + prefill  # reasoning models' templates may open `<think>` here
    return PromptText(text, prefill, opening.rfind("<think>") > opening.rfind("</think>"))
