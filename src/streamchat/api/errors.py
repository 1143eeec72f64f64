"""Errors in the Messages API's own wire format and status codes."""

from __future__ import annotations

import secrets
from typing import Any

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def new_id(prefix: str, length: int = 24) -> str:
    """Return an id shaped like the API's (`msg_01…`, `req_01…`, `toolu_01…`)."""
    return prefix + "01" + "".join(secrets.choice(_ALPHABET) for _ in range(length - 2))


class APIError(Exception):
    """An error the API answers with a status code and `{"type":"error","error":{...}}`."""

    status: int = 500
    error_type: str = "api_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        """The JSON body the API sends for this error."""
        return error_body(self.error_type, self.message, request_id)


def error_body(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    """`{"type":"error","error":{"type":…,"message":…},"request_id":…}`."""
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


class InvalidRequestError(APIError):
    status = 400
    error_type = "invalid_request_error"


class AuthenticationError(APIError):
    status = 401
    error_type = "authentication_error"


class PermissionDeniedError(APIError):
    status = 403
    error_type = "permission_error"


class NotFoundError(APIError):
    status = 404
    error_type = "not_found_error"


class RequestTooLargeError(APIError):
    status = 413
    error_type = "request_too_large"


class RateLimitError(APIError):
    status = 429
    error_type = "rate_limit_error"


class InternalServerError(APIError):
    status = 500
    error_type = "api_error"


class OverloadedError(APIError):
    status = 529
    error_type = "overloaded_error"
