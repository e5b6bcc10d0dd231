"""One turn as a record: a row of `turns`, and a line of `lifeline export` (JSON Lines).

The export format is this model's fields, one JSON object a line, keys sorted, timestamps in
ISO 8601 UTC. `lifeline import` reads exactly that back; unknown fields are refused, so a file
from a newer version says so instead of losing data quietly.
"""

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class TurnRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1)
    session_id: str | None = None
    at: AwareDatetime  # when the answer was ready
    route: str
    messages: list[dict[str, Any]]  # what the caller sent in this turn
    content: str | None = None  # what the answer said
    provider: str | None = None
    model: str | None = None
    tier: str | None = None
    fallback_depth: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    user_id: str | None = None
    key_id: str | None = None
    team_id: str | None = None
    region: str | None = None
    priority: str = "interactive"
    cached: bool = False
    attempts: int = 0
    metadata: dict[str, Any] = Field(default_factory=dict)
    event_id: str | None = None  # the llm.completed event it came from
    source: str | None = None  # the router instance that answered
    stored_at: AwareDatetime  # when the store wrote it


FIELDS = tuple(TurnRecord.model_fields)


def to_line(record: TurnRecord) -> str:
    """The canonical JSON line (no newline): the same turn always gives the same bytes."""
    return json.dumps(record.model_dump(mode="json"), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


class Checksum:
    """Equal for equal sets of turns, in any order: the sum of each canonical line's sha256
    (mod 2**256), so it streams, and needs no ordering the two databases might collate apart."""

    def __init__(self) -> None:
        self.total = 0
        self.count = 0

    def add(self, line: str) -> None:
        self.total = (self.total + int.from_bytes(hashlib.sha256(line.encode()).digest())) % 2**256
        self.count += 1

    def hexdigest(self) -> str:
        return f"{self.total:064x}"


def checksum(lines: Iterable[str]) -> str:
    summed = Checksum()
    for line in lines:
        summed.add(line)
    return summed.hexdigest()
