"""What every wire format offers the app: parse a request, render answers, streams and errors."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.simulator.logic import Answer, ChatRequest


@dataclass(frozen=True)
class Failure:
    """An HTTP error exactly as the vendor would send it."""

    status: int
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


class WireFormat(Protocol):
    """Implemented by the modules openai_format and anthropic_format."""

    CHAT_PATH: str  # under the vendor's prefix
    REQUEST_ID_HEADER: str

    def new_request_id(self) -> str: ...

    def check_headers(self, headers: Mapping[str, str]) -> Failure | None: ...

    def parse(self, body: Any) -> ChatRequest | Failure: ...

    def not_found(self, method: str, path: str) -> Failure: ...

    def unavailable(self) -> Failure: ...

    def rate_limited(self, model: str | None, retry_after_s: int) -> Failure: ...

    def server_error(self) -> Failure: ...

    def context_too_long(self, tokens: int, window: int) -> Failure: ...

    def garbage(self, stream: bool) -> tuple[str, bytes]: ...

    def error_in_ok(self) -> dict[str, Any]: ...

    def stream_error_frames(self) -> list[bytes]: ...

    def malformed_frame(self) -> bytes: ...

    def completion(self, request: ChatRequest, answer: Answer, created: int) -> dict[str, Any]: ...

    def stream_frames(self, request: ChatRequest, answer: Answer, created: int) -> tuple[list[bytes], int]: ...

    def models(self) -> dict[str, Any]: ...
