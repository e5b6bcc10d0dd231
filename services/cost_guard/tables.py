"""The cost guard's tables (migrations/ creates them; Alembic branch "cost_guard").

Money is a float (double precision): costs are a few dollars at most per row with 15 significant
digits, so a day's sum is exact to far below a cent; Numeric would turn every value into a
Decimal on PostgreSQL and into a lossy warning on SQLite.
"""

from sqlalchemy import (
    BigInteger, Boolean, Column, DateTime, Float, Index, Integer, MetaData, SmallInteger, String,
    Table, Text,
)

metadata = MetaData()

# One row per charge: a finished request (id = request_id) or a billed attempt (id =
# <request_id>.<n>). llm.completed's cost includes the request's billed attempts, so each row
# says what it adds to spend (counted_usd): sum(counted_usd) is the spend, never twice.
ledger = Table(
    "cost_guard_ledger", metadata,
    Column("id", String(160), primary_key=True),
    Column("request_id", String(128), nullable=False, index=True),
    Column("kind", String(8), nullable=False),  # request | attempt
    Column("completed", Boolean, nullable=False, default=False),  # request rows: llm.completed seen
    Column("occurred_at", DateTime(timezone=True), nullable=False, index=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("route", String(128)),
    Column("provider", String(128)),
    Column("model", String(256)),
    Column("user_id", String(256), index=True),
    Column("key_id", String(256), index=True),
    Column("team_id", String(256)),
    Column("status", String(16)),
    Column("tier", String(16)),
    Column("input_tokens", Integer, nullable=False, default=0),
    Column("output_tokens", Integer, nullable=False, default=0),
    Column("cost_usd", Float, nullable=False, default=0.0),  # what its event said
    Column("attempts_usd", Float, nullable=False, default=0.0),  # request rows: attempts seen first
    # request rows: those attempts carried who pays, so the payer's scopes counted them already
    Column("attempts_scoped", Boolean, nullable=False, default=False),
    Column("counted_usd", Float, nullable=False, default=0.0),  # what it adds to spend
)

# Spend and tokens per scope and period, written by the ledger only: what budgets and token limits
# are checked against; `rate` rows are runaway detection's buckets.
counters = Table(
    "cost_guard_counters", metadata,
    Column("scope", String(8), primary_key=True),  # global | team | user | key
    Column("scope_id", String(256), primary_key=True),  # "*" for global
    Column("period", String(8), primary_key=True),  # minute | day | month | rate
    Column("start", BigInteger, primary_key=True),  # epoch seconds, UTC
    Column("spent_usd", Float, nullable=False, default=0.0),
    Column("tokens", BigInteger, nullable=False, default=0),
)
Index("cost_guard_counters_period_start", counters.c.period, counters.c.start)

# Written by admission only: one row per budget or limit and period, locked (upserted) in key
# order by every admission batch that checks it, counting the requests admitted. Kept apart from
# `counters` so that a reservation never waits for the ledger's durable commit.
admissions = Table(
    "cost_guard_admissions", metadata,
    Column("scope", String(8), primary_key=True),
    Column("scope_id", String(256), primary_key=True),
    Column("period", String(8), primary_key=True),  # minute | day | month
    Column("start", BigInteger, primary_key=True),
    Column("requests", BigInteger, nullable=False, default=0),
)

# Requests in flight (or settled, not yet in the ledger): counted against every budget until the
# ledger records them (same transaction) or they expire (the router died before settling).
reservations = Table(
    "cost_guard_reservations", metadata,
    Column("request_id", String(128), primary_key=True),
    Column("team_id", String(256)),
    Column("user_id", String(256)),
    Column("key_id", String(256)),
    Column("amount_usd", Float, nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("settled", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),  # epoch seconds
    Column("expires_at", Float, nullable=False, index=True),
)

# Each budget instance's level in its current period (levels.py).
budget_states = Table(
    "cost_guard_budget_states", metadata,
    Column("instance", String(300), primary_key=True),  # <scope>:<scope_id>:<period>
    Column("period_start", BigInteger, nullable=False),
    Column("level", SmallInteger, nullable=False),  # 0 ok, 1 warning, 2 exceeded
    Column("limit_usd", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Runaway episodes announced and not yet over (runaway.py).
anomalies = Table(
    "cost_guard_anomalies", metadata,
    Column("scope", String(8), primary_key=True),
    Column("scope_id", String(256), primary_key=True),
    Column("since", Float, nullable=False),
    Column("rate_usd_per_min", Float, nullable=False),
)

# The last control KV revision announced per key (killswitch.engaged / released): a restarted
# or second cost guard does not announce the same change again.
announced = Table(
    "cost_guard_announced", metadata,
    Column("key", String(300), primary_key=True),
    Column("revision", BigInteger, nullable=False),
)

# Events to publish and control keys to write, committed with the decision that caused them and
# sent afterwards (levels.Effect): a crash in between delays them, never loses them.
outbox = Table(
    "cost_guard_outbox", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("msg_id", String(400), nullable=False, unique=True),
    Column("kind", String(8), nullable=False),  # event | engage | release
    Column("target", String(300), nullable=False),  # subject, or control KV key
    Column("payload", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("sent_at", Float, index=True),
)
