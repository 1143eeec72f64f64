"""Validation of Messages API requests, answered the way the real API answers them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import InvalidRequestError

Role = Literal["user", "assistant"]
Block = dict[str, Any]

_BLOCK_TYPES = {
    "text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking",
    "server_tool_use", "web_search_tool_result", "search_result",
}  # fmt: skip


@dataclass(frozen=True)
class Message:
    """One turn; string content is normalised to a single text block."""

    role: Role
    content: tuple[Block, ...]


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
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def prefill(self) -> str:
        """Text of a final assistant turn, which the reply continues."""
        last = self.messages[-1]
        if last.role != "assistant":
            return ""
        return "".join(b.get("text", "") for b in last.content if b.get("type") == "text")

    @property
    def thinking_enabled(self) -> bool:
        return self.thinking is not None and self.thinking.get("type") in ("enabled", "adaptive")

    def has_media(self) -> bool:
        """True when any turn holds an image or a document (a text-only model refuses them)."""
        return any(_has_media(b) for m in self.messages for b in m.content)


def _has_media(block: Block) -> bool:
    if block.get("type") in ("image", "document"):
        return True
    if block.get("type") == "tool_result" and isinstance(block.get("content"), list):
        return any(_has_media(b) for b in block["content"] if isinstance(b, dict))
    return False


def parse_json_body(raw: bytes) -> Any:
    """Decode a request body, answering malformed JSON like the API."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"There was an issue with the JSON body of your request: {exc}") from None


def _fail(path: str, message: str) -> InvalidRequestError:
    return InvalidRequestError(f"{path}: {message}")


def _number(body: dict[str, Any], name: str, low: float, high: float | None) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(name, "Input should be a valid number")
    if value < low:
        raise _fail(name, f"Input should be greater than or equal to {low:g}")
    if high is not None and value > high:
        raise _fail(name, f"Input should be less than or equal to {high:g}")
    return float(value)


def _integer(body: dict[str, Any], name: str, *, required: bool, low: int) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            raise _fail(name, "Field required")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise _fail(name, "Input should be a valid integer")
    if value < low:
        raise _fail(name, f"Input should be greater than or equal to {low}")
    return value


def _block(path: str, block: Any) -> Block:
    if not isinstance(block, dict):
        raise _fail(path, "Input should be a valid dictionary")
    kind = block.get("type")
    if kind not in _BLOCK_TYPES:
        message = f"Input tag {kind!r} found using 'type' does not match any of the expected tags"
        raise _fail(f"{path}.type", message)
    if kind == "text":
        if not isinstance(block.get("text"), str):
            raise _fail(f"{path}.text", "Field required")
        if not block["text"]:
            raise InvalidRequestError("messages: text content blocks must be non-empty")
    elif kind == "tool_use":
        if not isinstance(block.get("id"), str) or not block["id"]:
            raise _fail(f"{path}.id", "Field required")
        if not isinstance(block.get("name"), str) or not block["name"]:
            raise _fail(f"{path}.name", "Field required")
        if not isinstance(block.get("input"), dict):
            raise _fail(f"{path}.input", "Input should be a valid dictionary")
    elif kind == "tool_result":
        if not isinstance(block.get("tool_use_id"), str):
            raise _fail(f"{path}.tool_use_id", "Field required")
        content = block.get("content")
        if isinstance(content, list):
            for i, inner in enumerate(content):
                _block(f"{path}.content.{i}", inner)
        elif content is not None and not isinstance(content, str):
            raise _fail(f"{path}.content", "Input should be a valid string or list")
    elif kind == "thinking":
        if not isinstance(block.get("thinking"), str):
            raise _fail(f"{path}.thinking", "Field required")
        if not isinstance(block.get("signature"), str):
            raise _fail(f"{path}.signature", "Field required")
    return block


def _content(path: str, role: Role, content: Any) -> tuple[Block, ...]:
    if isinstance(content, str):
        if not content:
            raise InvalidRequestError("messages: text content blocks must be non-empty")
        return ({"type": "text", "text": content},)
    if not isinstance(content, list):
        raise _fail(f"{path}.content", "Input should be a valid string or list")
    if not content and role == "user":
        raise InvalidRequestError(f"{path}: all messages must have non-empty content")
    return tuple(_block(f"{path}.content.{i}", b) for i, b in enumerate(content))


def _messages(raw: Any) -> tuple[Message, ...]:
    if raw is None:
        raise _fail("messages", "Field required")
    if not isinstance(raw, list):
        raise _fail("messages", "Input should be a valid list")
    if not raw:
        raise InvalidRequestError("messages: at least one message is required")
    parsed: list[Message] = []
    for i, item in enumerate(raw):
        path = f"messages.{i}"
        if not isinstance(item, dict):
            raise _fail(path, "Input should be a valid dictionary")
        role = item.get("role")
        if role not in ("user", "assistant"):
            raise _fail(f"{path}.role", "Input should be 'user' or 'assistant'")
        if "content" not in item:
            raise _fail(f"{path}.content", "Field required")
        content = _content(path, role, item["content"])
        if parsed and parsed[-1].role == role:  # the API merges consecutive same-role turns
            parsed[-1] = Message(role, parsed[-1].content + content)
        else:
            parsed.append(Message(role, content))
    if parsed[0].role != "user":
        raise InvalidRequestError('messages: first message must use the "user" role')
    _check_tool_pairs(parsed)
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
        results = [b.get("tool_use_id") for b in message.content if b.get("type") == "tool_result"]
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
    if isinstance(raw, list):
        parts = []
        for i, block in enumerate(raw):
            is_text = isinstance(block, dict) and block.get("type") == "text"
            if not is_text or not isinstance(block.get("text"), str):
                raise _fail(f"system.{i}", "Input should be a text block")
            parts.append(block["text"])
        return "\n\n".join(parts)
    raise _fail("system", "Input should be a valid string or list")


def _tools(raw: Any) -> tuple[Block, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail("tools", "Input should be a valid list")
    names: set[str] = set()
    for i, tool in enumerate(raw):
        if not isinstance(tool, dict):
            raise _fail(f"tools.{i}", "Input should be a valid dictionary")
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise _fail(f"tools.{i}.name", "Field required")
        if name in names:
            raise InvalidRequestError(f"tools: Tool names must be unique. Duplicate: {name}")
        names.add(name)
        if tool.get("type") in (None, "custom"):
            schema = tool.get("input_schema")
            if not isinstance(schema, dict):
                raise _fail(f"tools.{i}.input_schema", "Field required")
            if schema.get("type") != "object":
                raise _fail(f"tools.{i}.input_schema.type", "Input should be 'object'")
    return tuple(raw)


def _tool_choice(raw: Any, tools: tuple[Block, ...]) -> Block | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("type") not in ("auto", "any", "tool", "none"):
        expected = "'auto', 'any', 'tool' or 'none'"
        raise _fail("tool_choice", f"Input tag found using 'type' does not match {expected}")
    if raw["type"] in ("any", "tool") and not tools:
        raise InvalidRequestError("tool_choice: may only be specified while providing tools")
    if raw["type"] == "tool":
        names = {t.get("name") for t in tools}
        if raw.get("name") not in names:
            raise InvalidRequestError(f"tool_choice: tool {raw.get('name')!r} was not found in tools")
    return raw


def _thinking(raw: Any, max_tokens: int, require_budget: bool) -> Block | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("type") not in ("enabled", "disabled", "adaptive"):
        expected = "'enabled', 'disabled' or 'adaptive'"
        raise _fail("thinking", f"Input tag found using 'type' does not match {expected}")
    if raw["type"] == "enabled":
        budget = raw.get("budget_tokens")
        if isinstance(budget, bool) or not isinstance(budget, int):
            raise _fail("thinking.enabled.budget_tokens", "Field required")
        if budget < 1024:
            raise _fail("thinking.enabled.budget_tokens", "Input should be greater than or equal to 1024")
        if require_budget and budget >= max_tokens:
            raise InvalidRequestError("`max_tokens` must be greater than `thinking.budget_tokens`")
    return raw


# Extra body fields a local engine reads (the API ignores unknown fields; these are checked like its own)
SAMPLING_EXTENSIONS = {"repeat_penalty": (1.0, 2.0), "dry_multiplier": (0.0, 5.0)}


def _extensions(body: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {k: v for k, v in body.items() if k == "metadata"}
    for name, (low, high) in SAMPLING_EXTENSIONS.items():
        value = _number(body, name, low, high)
        if value is not None:
            found[name] = value
    return found


def parse_messages_request(body: Any, *, count_only: bool = False) -> MessagesRequest:
    """Validate a Messages body (`count_only` for count_tokens: no max_tokens, no sampling).

    Unknown fields are ignored, as the API does.
    """
    if not isinstance(body, dict):
        raise InvalidRequestError("Request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _fail("model", "Field required")
    max_tokens = 0 if count_only else (_integer(body, "max_tokens", required=True, low=1) or 0)
    messages = _messages(body.get("messages"))
    stops = body.get("stop_sequences") or []
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise _fail("stop_sequences", "Input should be a list of non-empty strings")
    if any(not s.strip() for s in stops):
        raise InvalidRequestError("stop_sequences: each stop sequence must contain non-whitespace")
    stream = body.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise _fail("stream", "Input should be a valid boolean")
    tools = _tools(body.get("tools"))
    top_k = _integer(body, "top_k", required=False, low=0)
    return MessagesRequest(
        model=model,
        messages=messages,
        max_tokens=max_tokens,
        system=_system(body.get("system")),
        stop_sequences=tuple(stops),
        temperature=_number(body, "temperature", 0.0, 1.0),
        top_p=_number(body, "top_p", 0.0, 1.0),
        top_k=top_k,
        stream=bool(stream),
        tools=tools,
        tool_choice=_tool_choice(body.get("tool_choice"), tools),
        thinking=_thinking(body.get("thinking"), max_tokens, not count_only),
        extra=_extensions(body),
    )
