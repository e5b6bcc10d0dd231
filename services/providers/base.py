"""The provider port: what the router and the health monitor call, whatever the vendor."""

from dataclasses import dataclass, field
from typing import Literal, Protocol

from schemas.completion import ErrorKind
from services.providers.headroom import Headroom

ProviderKind = Literal["openai", "anthropic", "openai_compatible"]


@dataclass(frozen=True, kw_only=True)
class ProviderSpec:
    name: str  # our name for it ("openai", "anthropic", "local")
    kind: ProviderKind
    base_url: str  # openai kinds include /v1 ("https://api.openai.com/v1"); anthropic does not
    api_key: str | None = field(default=None, repr=False)  # never logged
    max_connections: int = 100  # this provider's own pool: a slow vendor cannot starve others


@dataclass(frozen=True, kw_only=True)
class ChatCall:
    model: str
    messages: list[dict[str, str]]  # [{"role", "content"}]; "system" is lifted out for Anthropic
    max_tokens: int | None = None
    temperature: float | None = None


@dataclass(frozen=True, kw_only=True)
class ChatAnswer:
    content: str
    model: str  # as reported by the vendor
    input_tokens: int
    output_tokens: int
    finish_reason: str  # normalised: "stop" | "length" | "content_filter" | "tool_calls" | vendor's own
    status_code: int = 200
    headroom: Headroom | None = None  # what the vendor's rate-limit headers say is left


class ProviderError(Exception):
    """A failed call, classified. `retry_after` is in seconds (from Retry-After or vendor headers)."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        headroom: Headroom | None = None,
    ) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after
        self.headroom = headroom  # rate-limit headers ride on errors too


class Provider(Protocol):
    spec: ProviderSpec

    async def complete(self, call: ChatCall, *, timeout: float) -> ChatAnswer:
        """One non-streaming chat call; `timeout` in seconds bounds the whole call.

        Raises ProviderError (never aiohttp or asyncio exceptions) on any failure.
        """
        ...

    async def list_models(self, *, timeout: float) -> list[str]:
        """The vendor's models list (ids): a free health probe. Raises ProviderError."""
        ...

    async def aclose(self) -> None: ...
