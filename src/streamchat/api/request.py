"""Validation of Messages API requests, answered the way the real API answers them.

Two layers: every field's type is checked against the installed SDK's own definitions
(`typecheck`, GA types, or the beta ones for `?beta=true`); then the rules types cannot say
(turn order, where a system message may stand, tool_use/tool_result pairs, budgets) are checked
here, and the body becomes a `MessagesRequest`. Unknown fields are ignored, as the API does.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import InvalidRequestError
from .jsonbody import decode_body
from .typecheck import Shape, shape_of

Role = Literal["user", "assistant", "system"]
Block = dict[str, Any]

EFFORTS = ("low", "medium", "high", "xhigh", "max")
# accepted as the API validates them; a local model has no use for them (see the README)
NO_EFFECT_FIELDS = ("metadata", "service_tier", "speed", "inference_geo", "cache_control", "container",
                    "diagnostics", "context_management")  # fmt: skip
_MEDIA = ("image", "document")
_INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class Message:
    """One turn; string content is normalised to a single text block.

    `role` "system" is a mid-conversation system message (text blocks only), kept where it stands.
    """

    role: Role
    content: tuple[Block, ...]

    @property
    def text(self) -> str:
        """The text of its text blocks, joined."""
        return "".join(b["text"] for b in self.content if b.get("type") == "text")


@dataclass(frozen=True)
class MessagesRequest:
    """A validated `POST /v1/messages` (or count_tokens) body."""

    model: str
    messages: tuple[Message, ...]
    max_tokens: int = 0
    system: str = ""
    stop_sequences: tuple[str, ...] = ()
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stream: bool = False
    tools: tuple[Block, ...] = ()
    tool_choice: Block | None = None
    thinking: Block | None = None
    output_format: dict[str, Any] | None = None  # output_config.format.schema: the reply is JSON for it
    effort: str | None = None  # output_config.effort
    extra: dict[str, Any] = field(default_factory=dict)  # fields without an API effect; the guard
    media_path: str | None = None  # where the first image or document block is, in the body as sent

    @property
    def prefill(self) -> str:
        """Text of a final assistant turn, which the reply continues."""
        last = self.messages[-1]
        return last.text if last.role == "assistant" else ""

    @property
    def thinking_enabled(self) -> bool:
        return self.thinking is not None and self.thinking.get("type") in ("enabled", "adaptive")

    def has_media(self) -> bool:
        """True when any turn holds an image or a document (a text-only model refuses them)."""
        return self.media_path is not None


def _media_path(raw: list[dict[str, Any]]) -> str | None:
    """The path of the first image or document block, inside tool results too."""
    for i, message in enumerate(raw):
        content = message["content"]
        for j, block in enumerate(content if isinstance(content, list) else ()):
            if block["type"] in _MEDIA:
                return f"messages.{i}.content.{j}"
            inner = block.get("content") if block["type"] == "tool_result" else None
            for k, part in enumerate(inner if isinstance(inner, list) else ()):
                if part["type"] in _MEDIA:
                    return f"messages.{i}.content.{j}.content.{k}"
    return None


def parse_json_body(raw: bytes) -> Any:
    """Decode a request body, answering malformed JSON like the API (see `jsonbody`)."""
    return decode_body(raw)


@functools.cache
def _shape(count_only: bool, beta: bool) -> Shape:
    # imported here: the SDK's type modules take a moment to import, and only the server needs them
    if beta:
        from anthropic.types.beta import message_count_tokens_params as beta_count
        from anthropic.types.beta import message_create_params as beta_create

        beta_body = beta_count.MessageCountTokensParams if count_only else beta_create.MessageCreateParamsBase
        return shape_of(beta_body)
    from anthropic.types import message_count_tokens_params as count
    from anthropic.types import message_create_params as create

    return shape_of(count.MessageCountTokensParams if count_only else create.MessageCreateParamsBase)


def load_request_shapes() -> None:
    """Import and read the SDK's request types now: a server calls it as it starts, else its first
    request waits for them (~2 s here)."""
    for count_only in (False, True):
        for beta in (False, True):
            _shape(count_only, beta)


def _fail(path: str, message: str) -> InvalidRequestError:
    return InvalidRequestError(f"{path}: {message}")


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(name, "Input should be a valid number")
    if value < low:
        raise _fail(name, f"Input should be greater than or equal to {low:g}")
    if value > high:
        raise _fail(name, f"Input should be less than or equal to {high:g}")
    return float(value)


def _top_k(body: dict[str, Any]) -> int | None:
    value = body.get("top_k")
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail("top_k", "Input should be a valid integer")
    if value < 0:
        raise _fail("top_k", "Input should be greater than or equal to 0")
    return min(value, _INT32_MAX)  # larger keeps every candidate, as this does


def _text_blocks(content: list[Block]) -> None:
    for block in content:
        if block["type"] == "text" and not block["text"]:
            raise InvalidRequestError("messages: text content blocks must be non-empty")


def _content(path: str, role: str, content: Any) -> tuple[Block, ...]:
    if isinstance(content, str):
        if not content:
            raise InvalidRequestError("messages: text content blocks must be non-empty")
        return ({"type": "text", "text": content},)
    if not content and role != "assistant":
        raise InvalidRequestError(f"{path}: all messages must have non-empty content")
    _text_blocks(content)
    return tuple(content)


def _ends_in_server_tool_use(message: Message | None) -> bool:
    return bool(message and message.role == "assistant" and message.content
                and message.content[-1].get("type") == "server_tool_use")  # fmt: skip


def _check_system_placement(i: int, raw: list[dict[str, Any]], previous: Message | None) -> None:
    """Where the API lets a mid-conversation system message stand."""
    if previous is None:
        raise InvalidRequestError('messages: first message must use the "user" role')
    if previous.role != "user" and not _ends_in_server_tool_use(previous):
        raise InvalidRequestError(
            f"messages.{i}: a system message must immediately follow a user message "
            "(or an assistant message ending in server tool use)"
        )
    if i + 1 < len(raw) and raw[i + 1]["role"] != "assistant":
        raise InvalidRequestError(
            f"messages.{i}: a system message must be the last message or be followed by an assistant message"
        )


def _messages(raw: list[dict[str, Any]]) -> tuple[Message, ...]:
    if not raw:
        raise InvalidRequestError("messages: at least one message is required")
    parsed: list[Message] = []
    for i, item in enumerate(raw):
        role = item["role"]
        content = _content(f"messages.{i}", role, item["content"])
        previous = parsed[-1] if parsed else None
        if role == "system":
            _check_system_placement(i, raw, previous)
            parsed.append(Message("system", content))
        elif previous is not None and previous.role == role:  # the API merges consecutive same-role turns
            parsed[-1] = Message(role, previous.content + content)
        else:
            parsed.append(Message(role, content))
    if parsed[0].role != "user":
        raise InvalidRequestError('messages: first message must use the "user" role')
    _check_tool_pairs([m for m in parsed if m.role != "system"])
    last = parsed[-1]
    if last.role == "assistant" and last.content:
        final = last.content[-1]
        if final.get("type") == "text" and final["text"] != final["text"].rstrip():
            raise InvalidRequestError("messages: final assistant content cannot end with trailing whitespace")
    return tuple(parsed)


def _check_tool_pairs(messages: list[Message]) -> None:
    for i, message in enumerate(messages):
        if message.role != "assistant":
            continue
        ids = [b["id"] for b in message.content if b.get("type") == "tool_use"]
        if not ids:
            continue
        following = messages[i + 1] if i + 1 < len(messages) else None
        next_blocks = following.content if following else ()
        answered = {b.get("tool_use_id") for b in next_blocks if b.get("type") == "tool_result"}
        missing = [x for x in ids if x not in answered]
        if missing:
            raise InvalidRequestError(
                f"messages.{i + 1 if following else i}: `tool_use` ids were found without `tool_result` "
                f"blocks immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
                "corresponding `tool_result` block in the next message."
            )
    for i, message in enumerate(messages):
        if message.role != "user":
            continue
        results = [b["tool_use_id"] for b in message.content if b.get("type") == "tool_result"]
        if not results:
            continue
        previous = messages[i - 1] if i else None
        known = {b["id"] for b in (previous.content if previous else ()) if b.get("type") == "tool_use"}
        stray = [x for x in results if x not in known]
        if stray:
            raise InvalidRequestError(
                f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: {stray[0]}. "
                "Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
            )


def _system(raw: Any) -> str:
    if raw is None:
        return ""
    if isinstance(raw, str):
        return raw
    return "\n\n".join(block["text"] for block in raw)


def _tools(raw: list[Block] | None) -> tuple[Block, ...]:
    if not raw:
        return ()
    names: set[str] = set()
    named: list[Block] = []
    for i, tool in enumerate(raw):
        name = tool.get("name")
        if name is None:  # a server toolset: accepted, and nothing here can run it
            continue
        named.append(tool)
        if not name:
            raise _fail(f"tools.{i}.name", "String should have at least 1 character")
        if name in names:
            raise InvalidRequestError(f"tools: Tool names must be unique. Duplicate: {name}")
        names.add(name)
        if tool.get("type") in (None, "custom") and tool["input_schema"].get("type") != "object":
            raise _fail(f"tools.{i}.input_schema.type", "Input should be 'object'")
    return tuple(named)


def _tool_choice(raw: Block | None, tools: tuple[Block, ...]) -> Block | None:
    if raw is None:
        return None
    if raw["type"] in ("any", "tool") and not tools:
        raise InvalidRequestError("tool_choice: may only be specified while providing tools")
    if raw["type"] == "tool" and raw["name"] not in {t.get("name") for t in tools}:
        raise InvalidRequestError(f"tool_choice: tool {raw['name']!r} was not found in tools")
    return raw


def _thinking(raw: Block | None, max_tokens: int, require_budget: bool) -> Block | None:
    if raw is None:
        return None
    if raw["type"] == "enabled":
        budget = raw["budget_tokens"]
        if budget < 1024:
            raise _fail("thinking.enabled.budget_tokens", "Input should be greater than or equal to 1024")
        if require_budget and budget >= max_tokens:
            raise InvalidRequestError("`max_tokens` must be greater than `thinking.budget_tokens`")
    return raw


# Extra body fields a local engine reads (the API ignores unknown fields; these are checked like its own)
SAMPLING_EXTENSIONS = {"repeat_penalty": (1.0, 2.0), "dry_multiplier": (0.0, 5.0)}


def _extensions(body: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {k: body[k] for k in NO_EFFECT_FIELDS if k in body}
    for name, (low, high) in SAMPLING_EXTENSIONS.items():
        value = _number(body, name, low, high)
        if value is not None:
            found[name] = value
    return found


def _output_format(config: dict[str, Any], prefill: str) -> dict[str, Any] | None:
    fmt = config.get("format")
    if fmt is None:
        return None
    if prefill:
        raise InvalidRequestError(
            "output_config.format: structured outputs cannot be combined with a prefilled assistant message"
        )
    schema: dict[str, Any] = fmt["schema"]
    return schema


def parse_messages_request(body: Any, *, count_only: bool = False, beta: bool = False) -> MessagesRequest:
    """Validate a Messages body (`count_only` for count_tokens: no max_tokens, no sampling).

    `beta` checks the body against the SDK's beta types (requests to `?beta=true`).
    Unknown fields are ignored, as the API does.
    """
    if not isinstance(body, dict):
        raise InvalidRequestError("Request body must be a JSON object")
    if (problem := _shape(count_only, beta).problem(body)) is not None:
        raise InvalidRequestError(str(problem))
    model = body["model"]
    if not model:
        raise _fail("model", "String should have at least 1 character")
    max_tokens = 0 if count_only else body["max_tokens"]
    if max_tokens < 0:
        raise _fail("max_tokens", "Input should be greater than or equal to 0")
    messages = _messages(body["messages"])
    # count_tokens takes neither field (its types lack them): there, like any unknown field, ignored
    stops = [] if count_only else list(body.get("stop_sequences") or ())
    if not all(stops):
        raise _fail("stop_sequences", "Input should be a list of non-empty strings")
    if any(not s.strip() for s in stops):
        raise InvalidRequestError("stop_sequences: each stop sequence must contain non-whitespace")
    stream = False if count_only else body.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise _fail("stream", "Input should be a valid boolean")
    tools = _tools(body.get("tools"))
    config = body.get("output_config") or {}
    prefill = messages[-1].text if messages[-1].role == "assistant" else ""
    return MessagesRequest(
        model=model,
        messages=messages,
        max_tokens=max_tokens,
        system=_system(body.get("system")),
        stop_sequences=tuple(stops),
        temperature=_number(body, "temperature", 0.0, 1.0),
        top_p=_number(body, "top_p", 0.0, 1.0),
        top_k=_top_k(body),
        stream=bool(stream),
        tools=tools,
        tool_choice=_tool_choice(body.get("tool_choice"), tools),
        thinking=_thinking(body.get("thinking"), max_tokens, not count_only),
        output_format=_output_format(config, prefill),
        effort=config.get("effort"),
        extra=_extensions(body),
        media_path=_media_path(body["messages"]),
    )
