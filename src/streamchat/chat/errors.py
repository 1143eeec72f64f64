"""What went wrong talking to the API, in one line a person can act on."""

from __future__ import annotations

import anthropic
import httpx2 as httpx


def one_line(text: str, limit: int = 300) -> str:
    """`text` on one line (whitespace collapsed), cut to `limit` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def describe_error(exc: BaseException, base_url: str = "") -> tuple[str, bool]:
    """(one-line message, retryable) for an exception raised while talking to the API."""
    if isinstance(exc, anthropic.APITimeoutError):
        return f"the request to {base_url} timed out", True
    if isinstance(exc, anthropic.APIConnectionError):
        cause: BaseException = exc
        while cause.__cause__ is not None:
            cause = cause.__cause__
        detail = str(cause) or type(cause).__name__
        return one_line(f"cannot connect to {base_url}: {detail}"), True
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        body = exc.body if isinstance(exc.body, dict) else {}
        error = body.get("error") if isinstance(body.get("error"), dict) else body
        kind = str(error.get("type") or "") if isinstance(error, dict) else ""
        message = str(error.get("message") or "") if isinstance(error, dict) else ""
        message = message or exc.message
        labels = {
            "authentication_error": "authentication failed", "permission_error": "permission denied",
            "not_found_error": "not found", "invalid_request_error": "invalid request",
            "rate_limit_error": "rate limited", "overloaded_error": "the API is overloaded",
            "api_error": "API error", "request_too_large": "request too large",
        }  # fmt: skip
        label = labels.get(kind, kind or "API error")
        if 200 <= status < 300:  # an `event: error` after the stream started
            return one_line(f"{label} mid-stream: {message}"), kind in ("api_error", "overloaded_error", "")
        retryable = status in (408, 409, 429) or status >= 500
        return one_line(f"{label} ({status}): {message}"), retryable
    if isinstance(exc, anthropic.APIError):
        return one_line(exc.message), True
    if isinstance(exc, (httpx.HTTPError, OSError)):  # while reading the body: the connection broke
        return one_line(f"connection lost: {exc or type(exc).__name__}"), True
    return one_line(str(exc) or type(exc).__name__), False  # our own refusal (ValueError), not the network
