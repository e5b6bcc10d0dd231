"""The conversation store's tables (SQLAlchemy Core). Migrations: ./migrations (Alembic branch
"conversation_store"); change both together."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON, BigInteger, Boolean, Column, DateTime, Dialect, Float, ForeignKey, Index, Integer,
    MetaData, String, Table, Text, UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Always an aware UTC datetime in Python. SQLite keeps no offset, so it stores naive UTC and
    gets UTC attached when read; PostgreSQL keeps timestamptz."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# BIGINT on PostgreSQL; SQLite autoincrements only an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

# One row per session id: whose it is and when it was active.
conversations = Table(
    "conversations", metadata,
    Column("id", String, primary_key=True),  # the session id
    Column("user_id", String, index=True),  # the first user seen in the session
    Column("started_at", UtcDateTime, nullable=False),
    Column("last_at", UtcDateTime, nullable=False),
)

# One row per answered request: the question as sent and the answer as given.
turns = Table(
    "turns", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("request_id", String, nullable=False),
    Column("session_id", String, ForeignKey("conversations.id", ondelete="CASCADE")),
    Column("at", UtcDateTime, nullable=False),  # when the answer was ready (llm.completed)
    Column("route", String, nullable=False),
    Column("messages", JSON, nullable=False),  # what the caller sent in this turn
    Column("content", Text),  # what the answer said
    Column("provider", String),
    Column("model", String),
    Column("tier", String),
    Column("fallback_depth", Integer),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("user_id", String),
    Column("key_id", String),
    Column("team_id", String),
    Column("region", String),
    Column("priority", String, nullable=False),
    Column("cached", Boolean, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("event_id", String),  # the llm.completed event's id
    Column("source", String),  # the router instance that answered
    Column("stored_at", UtcDateTime, nullable=False),
    UniqueConstraint("request_id", name="uq_turns_request_id"),
    Index("ix_turns_session_at", "session_id", "at", "id"),
    Index("ix_turns_user_id", "user_id"),
    Index("ix_turns_route_at", "route", "at"),
)

# Every purge, kept: the audit trail of erasure requests, and the tombstone that stops events of
# a purged user still in the stream (backlog, redelivery, replay) from bringing turns back.
purges = Table(
    "purges", metadata,
    Column("id", String, primary_key=True),  # the conversation.purged event's id
    Column("user_id", String, nullable=False, index=True),
    Column("at", UtcDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", String, nullable=False),
    Column("turns", Integer, nullable=False),
    Column("conversations", Integer, nullable=False),
)
