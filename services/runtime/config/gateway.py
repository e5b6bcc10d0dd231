"""Gateway: the OpenAI-compatible front door, and the timeouts of every streamed answer."""

from pydantic import Field

from ._base import Strict


class StreamingConfig(Strict):
    """Timeouts of every streamed request, applied by the router's streaming path (for the
    gateway's callers and any bus caller of `llm.stream`). The route's `deadline_ms` bounds the
    wait for the first token (failover included), not the length of an answer."""

    # From sending a request to a member until its first token; None: the route's attempt_timeout_ms.
    first_token_timeout_ms: int | None = Field(default=None, gt=0)
    # Once tokens flow, the longest silence before the member counts as stalled.
    inter_token_timeout_ms: int = Field(default=10_000, gt=0)
    max_stream_ms: int = Field(default=600_000, gt=0)  # one stream, however healthy


class GatewayConfig(Strict):
    """The `gateway` section of lifeline.yaml (optional; every field has a default)."""

    # Refuse requests without a valid API key (401). A file without this field gets the safe
    # choice; the shipped lifeline.yaml turns it off so `make run` works with any SDK key.
    require_keys: bool = True
    max_body_bytes: int = Field(default=1_000_000, gt=0)  # a larger request body is a 413
    # How long past the route's deadline the gateway waits for a router (a router that died).
    router_grace_ms: int = Field(default=2_000, ge=0)
    # The key table is reread this often: the safety net under the `api-keys` KV watch, which
    # carries new and revoked keys to every instance at once.
    key_refresh_s: float = Field(default=30.0, gt=0)
    streaming: StreamingConfig = StreamingConfig()
