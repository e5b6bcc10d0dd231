"""Conversations, turns and the purge log.

Revision ID: conversation_store_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op


revision = "conversation_store_0001"
down_revision = None
branch_labels = ("conversation_store",)
depends_on = None

# Written out here, not imported from tables.py: a migration must not change when the code does.
UtcDateTime = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("user_id", sa.String),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("last_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_conversations_user_id", "conversations", ["user_id"])
    op.create_table(
        "turns",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String, nullable=False),
        sa.Column("session_id", sa.String,
                  sa.ForeignKey("conversations.id", ondelete="CASCADE",
                                name="fk_turns_session_id_conversations")),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("route", sa.String, nullable=False),
        sa.Column("messages", sa.JSON, nullable=False),
        sa.Column("content", sa.Text),
        sa.Column("provider", sa.String),
        sa.Column("model", sa.String),
        sa.Column("tier", sa.String),
        sa.Column("fallback_depth", sa.Integer),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("user_id", sa.String),
        sa.Column("key_id", sa.String),
        sa.Column("team_id", sa.String),
        sa.Column("region", sa.String),
        sa.Column("priority", sa.String, nullable=False),
        sa.Column("cached", sa.Boolean, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("event_id", sa.String),
        sa.Column("source", sa.String),
        sa.Column("stored_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("request_id", name="uq_turns_request_id"),
    )
    op.create_index("ix_turns_session_at", "turns", ["session_id", "at", "id"])
    op.create_index("ix_turns_user_id", "turns", ["user_id"])
    op.create_index("ix_turns_route_at", "turns", ["route", "at"])
    op.create_table(
        "purges",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("user_id", sa.String, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.String, nullable=False),
        sa.Column("turns", sa.Integer, nullable=False),
        sa.Column("conversations", sa.Integer, nullable=False),
    )
    op.create_index("ix_purges_user_id", "purges", ["user_id"])


def downgrade() -> None:
    op.drop_table("purges")
    op.drop_table("turns")
    op.drop_table("conversations")
