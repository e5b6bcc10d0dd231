"""What the `control` and `provider-health` KV buckets hold: keys and values every router obeys."""

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

KILLSWITCH_KEY = "killswitch"  # in bucket `control`; deleting the key releases it too


class Killswitch(BaseModel):
    engaged: bool
    reason: str = ""
    by: str | None = None  # who or what engaged it (an operator, cost-guard)
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class ProviderHealth(BaseModel):
    """Bucket `provider-health`, key = provider name; written by the health monitor."""

    state: Literal["up", "degraded", "down"]
    reason: str = ""
    since: datetime = Field(default_factory=lambda: datetime.now(UTC))
