"""Gateway API keys as every gateway instance sees them (KV bucket `api-keys`, key = key_id).

Only the SHA-256 of a key is ever stored or sent; the key itself is shown once, at creation.
"""

from datetime import datetime

from pydantic import BaseModel


class ApiKey(BaseModel):
    key_id: str  # "key_<16 hex>": what operators see, list and revoke
    key_hash: str  # hex SHA-256 of the secret key
    prefix: str  # the key's first characters, to recognise it in a list
    user_id: str  # whose budgets and limits apply
    team_id: str | None = None
    name: str | None = None
    created_at: datetime
    revoked_at: datetime | None = None  # once set, never cleared
