"""API keys in SQL (the system of record), and their announcement on the `api-keys` KV bucket."""

import json
from datetime import datetime

from nats.js import JetStreamContext
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.keys import ApiKey
from schemas.streams import API_KEYS

from .keys import new_key
from .tables import api_keys


class KeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(self, *, user_id: str, team_id: str | None, name: str | None,
                     now: datetime) -> tuple[str, ApiKey]:
        secret, record = new_key(user_id=user_id, team_id=team_id, name=name, now=now)
        async with self.engine.begin() as conn:
            await conn.execute(api_keys.insert().values(**record.model_dump()))
        return secret, record

    async def revoke(self, key_id: str, *, now: datetime) -> ApiKey | None:
        """The revoked key (revoked once: a second revoke keeps the first time), or None."""
        async with self.engine.begin() as conn:
            await conn.execute(update(api_keys).where(api_keys.c.key_id == key_id,
                                                      api_keys.c.revoked_at.is_(None))
                               .values(revoked_at=now))
            row = (await conn.execute(select(api_keys).where(api_keys.c.key_id == key_id))).first()
        return ApiKey.model_validate(row._mapping) if row else None

    async def all(self) -> list[ApiKey]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(api_keys).order_by(api_keys.c.created_at))).all()
        return [ApiKey.model_validate(r._mapping) for r in rows]


async def announce(js: JetStreamContext, key: ApiKey) -> None:
    """Every gateway instance watches the bucket: a new or revoked key takes effect at once."""
    kv = await js.key_value(API_KEYS.name)
    await kv.put(key.key_id, json.dumps(key.model_dump(mode="json")).encode())
