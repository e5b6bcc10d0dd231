"""What the wire-format adapters share: one connection pool per provider, the chat call with its
rate-limit headroom, the models list, and one error taxonomy. A subclass says only how its vendor
spells the request and the answer (`body`, `parse`)."""

from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from services.providers._http import HttpPool
from services.providers._wire import model_ids
from services.providers.base import ChatAnswer, ChatCall, ProviderSpec
from services.providers.errors import classify_http_error
from services.providers.headroom import read_headroom


class HttpAdapter:
    def __init__(self, spec: ProviderSpec, *, url: str, models_url: str,
                 headers: dict[str, str]) -> None:
        self.spec = spec
        self._url = url
        self._models_url = models_url
        self._headers = headers
        self._pool = HttpPool(spec.max_connections)

    def __repr__(self) -> str:  # the headers hold the key: never show them
        return f"{type(self).__name__}(name={self.spec.name!r}, url={self._url!r})"

    def body(self, call: ChatCall) -> dict[str, Any]:
        raise NotImplementedError

    def parse(self, raw: bytes, *, requested_model: str, status: int) -> ChatAnswer:
        raise NotImplementedError

    async def complete(self, call: ChatCall, *, timeout: float) -> ChatAnswer:
        status, headers, raw = await self._pool.post(self._url, self._headers, self.body(call),
                                                     timeout=timeout)
        now = datetime.now(timezone.utc)
        headroom = read_headroom(headers, now=now)
        if 200 <= status < 300:
            answer = self.parse(raw, requested_model=call.model, status=status)
            return replace(answer, headroom=headroom) if headroom else answer
        error = classify_http_error(status, headers, raw, now=now, secret=self.spec.api_key)
        error.headroom = headroom
        raise error

    async def list_models(self, *, timeout: float) -> list[str]:
        """GET the vendor's models list (first page): the health monitor's free probe. Raises
        ProviderError like complete()."""
        status, headers, raw = await self._pool.get(self._models_url, self._headers, timeout=timeout)
        if 200 <= status < 300:
            return model_ids(raw, status=status)
        raise classify_http_error(
            status, headers, raw, now=datetime.now(timezone.utc), secret=self.spec.api_key
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
