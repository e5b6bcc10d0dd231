"""The gateway's tables: API keys (the system of record; the `api-keys` KV bucket carries changes)."""

from sqlalchemy import Column, DateTime, MetaData, String, Table

metadata = MetaData()

api_keys = Table(
    "gateway_api_keys", metadata,
    Column("key_id", String(32), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),  # hex SHA-256 of the key
    Column("prefix", String(16), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("team_id", String(128)),
    Column("name", String(128)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)
