"""The cost guard's ledger, counters, admissions, reservations, budget states, announcements
and outbox.

Revision ID: cost_guard_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "cost_guard_0001"
down_revision = None
branch_labels = ("cost_guard",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cost_guard_ledger",
        sa.Column("id", sa.String(160), primary_key=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("completed", sa.Boolean, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("route", sa.String(128)),
        sa.Column("provider", sa.String(128)),
        sa.Column("model", sa.String(256)),
        sa.Column("user_id", sa.String(256)),
        sa.Column("key_id", sa.String(256)),
        sa.Column("team_id", sa.String(256)),
        sa.Column("status", sa.String(16)),
        sa.Column("tier", sa.String(16)),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("attempts_usd", sa.Float, nullable=False),
        sa.Column("attempts_scoped", sa.Boolean, nullable=False),
        sa.Column("counted_usd", sa.Float, nullable=False),
    )
    op.create_index("ix_cost_guard_ledger_request_id", "cost_guard_ledger", ["request_id"])
    op.create_index("ix_cost_guard_ledger_occurred_at", "cost_guard_ledger", ["occurred_at"])
    op.create_index("ix_cost_guard_ledger_user_id", "cost_guard_ledger", ["user_id"])
    op.create_index("ix_cost_guard_ledger_key_id", "cost_guard_ledger", ["key_id"])

    op.create_table(
        "cost_guard_counters",
        sa.Column("scope", sa.String(8), primary_key=True),
        sa.Column("scope_id", sa.String(256), primary_key=True),
        sa.Column("period", sa.String(8), primary_key=True),
        sa.Column("start", sa.BigInteger, primary_key=True),
        sa.Column("spent_usd", sa.Float, nullable=False),
        sa.Column("tokens", sa.BigInteger, nullable=False),
    )
    op.create_index("cost_guard_counters_period_start", "cost_guard_counters", ["period", "start"])

    op.create_table(
        "cost_guard_admissions",
        sa.Column("scope", sa.String(8), primary_key=True),
        sa.Column("scope_id", sa.String(256), primary_key=True),
        sa.Column("period", sa.String(8), primary_key=True),
        sa.Column("start", sa.BigInteger, primary_key=True),
        sa.Column("requests", sa.BigInteger, nullable=False),
    )

    op.create_table(
        "cost_guard_reservations",
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("team_id", sa.String(256)),
        sa.Column("user_id", sa.String(256)),
        sa.Column("key_id", sa.String(256)),
        sa.Column("amount_usd", sa.Float, nullable=False),
        sa.Column("tokens", sa.Integer, nullable=False),
        sa.Column("settled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_cost_guard_reservations_expires_at", "cost_guard_reservations",
                    ["expires_at"])

    op.create_table(
        "cost_guard_budget_states",
        sa.Column("instance", sa.String(300), primary_key=True),
        sa.Column("period_start", sa.BigInteger, nullable=False),
        sa.Column("level", sa.SmallInteger, nullable=False),
        sa.Column("limit_usd", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "cost_guard_anomalies",
        sa.Column("scope", sa.String(8), primary_key=True),
        sa.Column("scope_id", sa.String(256), primary_key=True),
        sa.Column("since", sa.Float, nullable=False),
        sa.Column("rate_usd_per_min", sa.Float, nullable=False),
    )
    op.create_table(
        "cost_guard_announced",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("revision", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "cost_guard_outbox",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("msg_id", sa.String(400), nullable=False, unique=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("sent_at", sa.Float),
    )
    op.create_index("ix_cost_guard_outbox_sent_at", "cost_guard_outbox", ["sent_at"])


def downgrade() -> None:
    for table in ("cost_guard_outbox", "cost_guard_announced", "cost_guard_anomalies",
                  "cost_guard_budget_states", "cost_guard_reservations", "cost_guard_admissions",
                  "cost_guard_counters",
                  "cost_guard_ledger"):
        op.drop_table(table)
