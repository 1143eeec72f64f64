"""What a streaming reply tells its view (terminal or web), one small event at a time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

BlockKind = Literal["text", "thinking", "tool_use"]
Status = Literal["complete", "interrupted", "error"]


@dataclass(frozen=True)
class BlockStart:
    """A content block began (`name` is the tool's name for tool_use).

    `prefix` is set on the first text block of a continued reply (`Conversation.continue_reply`): the
    text the message already had, which the deltas continue; a view draws it first.
    """

    kind: BlockKind
    name: str | None = None
    prefix: str = ""


@dataclass(frozen=True)
class Delta:
    """Streamed content: text, thinking, or a piece of a tool call's input JSON."""

    kind: BlockKind
    text: str


@dataclass(frozen=True)
class BlockEnd:
    """The open block finished (for tool_use, `input` is the parsed input)."""

    kind: BlockKind
    input: dict[str, Any] | None = None


@dataclass(frozen=True)
class UsageUpdate:
    """Live token usage of the request in flight (from message_start and message_delta)."""

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


@dataclass(frozen=True)
class ToolCall:
    """The model asked to run a tool; the conversation's `confirm` callback decides."""

    id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class ToolResult:
    """A tool ran (or was declined); its result goes back to the model."""

    id: str
    name: str
    output: str
    is_error: bool = False


@dataclass(frozen=True)
class WindowNotice:
    """Messages left out of the context window for this request (shown to the user)."""

    dropped: int
    dropped_tokens: int | None
    reason: str


@dataclass(frozen=True)
class TurnEnd:
    """The reply ended: why, its usage summed over every request of the turn, and its cost."""

    status: Status
    stop_reason: str | None
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost: float | None = None  # None: unknown price ("n/a")
    error: str | None = None  # one line, for status "error"
    retryable: bool = False


ReplyEvent = BlockStart | Delta | BlockEnd | UsageUpdate | ToolCall | ToolResult | WindowNotice | TurnEnd


@dataclass
class SessionTotals:
    """Running totals for everything this process sent."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost: float | None = 0.0  # None once any turn had an unknown price
    turns: int = 0
    per_model: dict[str, int] = field(default_factory=dict)  # model -> tokens (input, output, cache) used
