"""The notifier's tables: incidents and their timeline, component history, facts, subscribers,
the alert outbox, processed events and the admin audit log.

Revision ID: notifier_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "notifier_0001"
down_revision = None
branch_labels = ("notifier",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notifier_processed_events",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("processed_at", TS, nullable=False),
    )
    op.create_index("ix_notifier_processed_events_processed_at", "notifier_processed_events",
                    ["processed_at"])
    op.create_table(
        "notifier_components",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("since", TS, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "notifier_component_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("component", sa.String(128), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_notifier_component_history_component_started",
                    "notifier_component_history", ["component", "started_at"])
    op.create_table(
        "notifier_incidents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(191), nullable=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("component", sa.String(128), nullable=False),
        sa.Column("impact", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("monitoring_at", TS, nullable=True),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("duration_s", sa.Float, nullable=True),
        sa.Column("flaps", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_alert_at", TS, nullable=True),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ux_notifier_incidents_open_key", "notifier_incidents", ["key"], unique=True,
                    postgresql_where=sa.text("resolved_at IS NULL AND key IS NOT NULL"),
                    sqlite_where=sa.text("resolved_at IS NULL AND key IS NOT NULL"))
    op.create_index("ix_notifier_incidents_started", "notifier_incidents", ["started_at"])
    op.create_table(
        "notifier_incident_updates",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.String(32),
                  sa.ForeignKey("notifier_incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("transition", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=True),
    )
    op.create_index("ix_notifier_incident_updates_incident_id", "notifier_incident_updates",
                    ["incident_id"])
    op.create_table(
        "notifier_facts",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.JSON, nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_table(
        "notifier_subscribers",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("address", sa.String(512), nullable=False),
        sa.Column("components", sa.JSON, nullable=False),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ux_notifier_subscribers_address", "notifier_subscribers",
                    ["kind", "address"], unique=True)
    op.create_table(
        "notifier_outbox",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("channel", sa.String(160), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("target", sa.String(512), nullable=True),
        sa.Column("incident_id", sa.String(32), nullable=True),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("failed_at", TS, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index("ix_notifier_outbox_pending", "notifier_outbox",
                    ["delivered_at", "failed_at", "seq"])
    op.create_index("ix_notifier_outbox_channel_created", "notifier_outbox",
                    ["channel", "created_at"])
    op.create_table(
        "notifier_admin_actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("remote", sa.String(64), nullable=True),
    )


def downgrade() -> None:
    for table in ("notifier_admin_actions", "notifier_outbox", "notifier_subscribers",
                  "notifier_facts", "notifier_incident_updates", "notifier_incidents",
                  "notifier_component_history", "notifier_components",
                  "notifier_processed_events"):
        op.drop_table(table)
