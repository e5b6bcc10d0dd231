"""Errors as the caller's SDK expects them: OpenAI's `{"error": {message, type, param, code}}` on
/v1/chat/completions and the rest, Anthropic's `{"type": "error", "error": {type, message}}` on
/v1/messages; and how a router's error kind becomes an HTTP status. Pure."""

from dataclasses import dataclass
from typing import Any

from schemas.completion import ErrorKind, ResultError


@dataclass(frozen=True)
class ApiError:
    status: int
    message: str
    type: str = "invalid_request_error"  # OpenAI's error.type
    param: str | None = None
    code: str | None = None
    retry_after_s: float | None = None

    def openai(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}

    def anthropic(self) -> dict[str, Any]:
        # docs.anthropic.com/en/api/errors: the type follows the status.
        return {"type": "error", "error": {"type": ANTHROPIC_TYPES.get(self.status, "api_error"),
                                           "message": self.message}}

    def headers(self) -> dict[str, str]:
        if self.retry_after_s is None:
            return {}
        return {"Retry-After": str(max(1, round(self.retry_after_s)))}


ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                   404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                   503: "overloaded_error", 504: "timeout_error"}


def invalid(message: str, *, param: str | None = None, code: str | None = None,
            status: int = 400) -> ApiError:
    return ApiError(status, message, param=param, code=code)


# What the caller's HTTP status is when the router answers with an error.
# 4xx: the request (or its payer) is at fault and asking again unchanged will not help, except
# 429 after Retry-After. 5xx: the providers behind us failed; 502 when one answered badly,
# 503 when none could answer, 504 when the time ran out.
_STATUS: dict[ErrorKind, tuple[int, str]] = {
    ErrorKind.INVALID_REQUEST: (400, "invalid_request_error"),
    ErrorKind.BAD_REQUEST: (400, "invalid_request_error"),
    ErrorKind.CONTEXT_TOO_LONG: (400, "invalid_request_error"),
    ErrorKind.CONTENT_POLICY: (400, "invalid_request_error"),
    ErrorKind.NO_ROUTE: (404, "invalid_request_error"),
    ErrorKind.BUDGET_EXHAUSTED: (429, "insufficient_quota"),
    ErrorKind.LIMITED: (429, "rate_limit_error"),
    ErrorKind.RATE_LIMITED: (503, "server_error"),
    ErrorKind.AUTH: (502, "server_error"),  # our key at the vendor was refused: not the caller's
    ErrorKind.SERVER_ERROR: (502, "server_error"),
    ErrorKind.MALFORMED_RESPONSE: (502, "server_error"),
    ErrorKind.CONNECTION: (502, "server_error"),
    ErrorKind.EXHAUSTED: (503, "server_error"),
    ErrorKind.TIMEOUT: (504, "server_error"),
    ErrorKind.EXPIRED: (504, "server_error"),
    ErrorKind.CANCELLED: (499, "server_error"),
}


def from_result(error: ResultError | None) -> ApiError:
    if error is None:
        return ApiError(502, "the router answered with an error but gave no reason", type="server_error")
    status, type_ = _STATUS.get(error.kind, (502, "server_error"))
    code = "context_length_exceeded" if error.kind is ErrorKind.CONTEXT_TOO_LONG else str(error.kind)
    return ApiError(status, error.message, type=type_, code=code, retry_after_s=error.retry_after_s)


NO_ROUTER = ApiError(503, "no router is serving requests right now (none answers on the bus)",
                     type="server_error", code="no_router")
SHUTTING_DOWN = ApiError(503, "this gateway instance is shutting down; retry", type="server_error",
                         code="shutting_down", retry_after_s=1)


def router_timeout(seconds: float) -> ApiError:
    return ApiError(504, f"no answer from the router within {seconds:g}s", type="server_error",
                    code="timeout")
