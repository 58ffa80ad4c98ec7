"""OpenAI-style API errors: {"error": {"message", "type", "param", "code"}} with an HTTP status."""
from __future__ import annotations

from typing import Dict, Optional


class ApiError(Exception):
    """An error answered to the client (never a crash): status, body and extra headers."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",  # noqa: A002
                 param: Optional[str] = None, code: Optional[str] = None,
                 headers: Optional[Dict[str, str]] = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad_request(message: str, param: Optional[str] = None, code: Optional[str] = "invalid_value") -> ApiError:
    return ApiError(400, message, param=param, code=code)
