"""The notifier's tables (Alembic branch "notifier", services/notifier/migrations)."""

from datetime import UTC, datetime

from sqlalchemy import (
    JSON, Column, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text,
    TypeDecorator, text,
)
from sqlalchemy.engine import Dialect


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite (which keeps no zone and returns naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass UTC-aware times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

# Every STATUS event handled, so a replay or redelivery changes nothing twice.
processed_events = Table(
    "notifier_processed_events", metadata,
    Column("event_id", String(64), primary_key=True),
    Column("subject", String(64), nullable=False),
    Column("processed_at", UtcDateTime, nullable=False, index=True),
)

# Each component's state now: `detail` holds what its status is derived from.
components = Table(
    "notifier_components", metadata,
    Column("id", String(128), primary_key=True),  # "provider-openai", "route-chat", ...
    Column("kind", String(16), nullable=False),
    Column("name", String(128), nullable=False),
    Column("status", String(32), nullable=False),
    Column("since", UtcDateTime, nullable=False),
    Column("detail", JSON, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# One row per status a component was in; the open row has ended_at NULL. The uptime bars.
component_history = Table(
    "notifier_component_history", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("component", String(128), nullable=False),
    Column("status", String(32), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime, nullable=True),
    Column("reason", Text, nullable=False, server_default=""),
    Index("ix_notifier_component_history_component_started", "component", "started_at"),
)

incidents = Table(
    "notifier_incidents", metadata,
    Column("id", String(32), primary_key=True),
    Column("key", String(191), nullable=True),  # what opened it ("provider:openai"); NULL: manual
    Column("title", Text, nullable=False),
    Column("component", String(128), nullable=False),
    Column("impact", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("origin", String(16), nullable=False),  # "auto" | "manual"
    Column("started_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("monitoring_at", UtcDateTime, nullable=True),
    Column("resolved_at", UtcDateTime, nullable=True),
    Column("duration_s", Float, nullable=True),
    Column("flaps", Integer, nullable=False, server_default="0"),
    Column("last_alert_at", UtcDateTime, nullable=True),
    Column("version", Integer, nullable=False, server_default="0"),  # optimistic concurrency
    # At most one unresolved incident per key, whichever instance tries to open a second.
    Index("ux_notifier_incidents_open_key", "key", unique=True,
          postgresql_where=text("resolved_at IS NULL AND key IS NOT NULL"),
          sqlite_where=text("resolved_at IS NULL AND key IS NOT NULL")),
    Index("ix_notifier_incidents_started", "started_at"),
)

incident_updates = Table(
    "notifier_incident_updates", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", String(32), ForeignKey("notifier_incidents.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("at", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Column("transition", String(16), nullable=False),  # opened, reopened, updated, monitoring, resolved
    Column("actor", String(128), nullable=True),  # who, for manual updates
)

# Last backup, last verification, last drill: the latest event of each, as the page shows it.
facts = Table(
    "notifier_facts", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("at", UtcDateTime, nullable=False),
)

subscribers = Table(
    "notifier_subscribers", metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),  # "email" | "webhook"
    Column("address", String(512), nullable=False),
    Column("components", JSON, nullable=False),  # component ids; empty: every component
    Column("token", String(64), nullable=False, unique=True),  # the one-link unsubscribe
    Column("created_at", UtcDateTime, nullable=False),
    Index("ux_notifier_subscribers_address", "kind", "address", unique=True),
)

# The durable queue of everything sent out: alerts per channel, subscriber notices, and the
# incident.* events for the bus. Written in the transaction that decided them; delivered in
# order per channel by whichever instance claims the head of that channel's queue.
outbox = Table(
    "notifier_outbox", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),  # the idempotency key receivers see
    Column("channel", String(160), nullable=False),  # a channel name, "subscriber:<id>" or "bus"
    Column("kind", String(32), nullable=False),  # webhook, slack, pagerduty, email, bus, ...
    Column("target", String(512), nullable=True),  # a subscriber's address
    Column("incident_id", String(32), nullable=True),
    Column("payload", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("lease_until", UtcDateTime, nullable=True),
    Column("delivered_at", UtcDateTime, nullable=True),
    Column("failed_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_notifier_outbox_pending", "delivered_at", "failed_at", "seq"),
    Index("ix_notifier_outbox_channel_created", "channel", "created_at"),
)

# Every state-changing admin action, with who did it.
admin_actions = Table(
    "notifier_admin_actions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("detail", JSON, nullable=False),
    Column("remote", String(64), nullable=True),
)
