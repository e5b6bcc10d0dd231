"""Virtual API keys: made, hashed, recognised. Pure (time passed in).

A key is 256 random bits (`llk-` + 43 url-safe characters); only its SHA-256 is stored. A fast
hash is right here, and bcrypt/argon2 would be wrong: those are slow on purpose to protect
low-entropy passwords from guessing, but nobody can guess 256 random bits however fast the hash,
and a deliberately slow hash would cost every request tens of milliseconds of CPU. A salted hash
also could not be looked up by value. (GitHub and Stripe tokens are checked the same way.)
"""

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime

from schemas.keys import ApiKey

from .errors import ApiError
from .inputs import Identity

KEY_PREFIX = "llk-"
SHOWN_CHARS = 8  # of the key, kept to recognise it in `lifeline keys list`


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(*, user_id: str, team_id: str | None, name: str | None, now: datetime) -> tuple[str, ApiKey]:
    """(the secret, shown once; its record, stored)."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKey(key_id=f"key_{secrets.token_hex(8)}", key_hash=hash_key(secret),
                    prefix=secret[:SHOWN_CHARS], user_id=user_id, team_id=team_id, name=name,
                    created_at=now)
    return secret, record


def presented(headers: Mapping[str, str]) -> str | None:
    """The key a caller sent: `Authorization: Bearer KEY` (OpenAI SDKs) or `x-api-key` (Anthropic's)."""
    auth = headers.get("Authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    key = headers.get("x-api-key", "").strip()
    return key or None


def _shown(secret: str) -> str:
    return f"{secret[:6]}...{secret[-4:]}" if len(secret) > 12 else "***"


MISSING = ApiError(401, "You didn't provide an API key. Send it in an Authorization header using "
                   "Bearer auth (Authorization: Bearer YOUR_KEY) or in x-api-key.",
                   code="missing_api_key")


class Keyring:
    """Every key this gateway instance knows, by hash. A revoked key stays revoked whatever
    arrives later (a stale reread of the table must not bring it back)."""

    def __init__(self) -> None:
        self._by_hash: dict[str, ApiKey] = {}
        self.loaded = False  # the table was read once: until then no key can be checked

    def __len__(self) -> int:
        return len(self._by_hash)

    def apply(self, key: ApiKey) -> None:
        known = self._by_hash.get(key.key_hash)
        if known is not None and known.revoked_at is not None and key.revoked_at is None:
            return
        self._by_hash[key.key_hash] = key

    def apply_all(self, keys: Iterable[ApiKey]) -> None:
        for key in keys:
            self.apply(key)
        self.loaded = True

    def authenticate(self, secret: str | None, *, require_keys: bool) -> Identity | ApiError:
        if secret is None:
            return MISSING if require_keys else Identity()
        key = self._by_hash.get(hash_key(secret))
        if key is None:
            if not require_keys:  # keyless mode: any SDK placeholder key is an anonymous caller
                return Identity()
            return ApiError(401, f"Incorrect API key provided: {_shown(secret)}. Keys are made with "
                            "`lifeline keys create`.", code="invalid_api_key")
        if key.revoked_at is not None:  # refused even in keyless mode: someone meant it
            return ApiError(401, f"API key {key.key_id} was revoked at {key.revoked_at.isoformat()}.",
                            code="revoked_api_key")
        return Identity(key_id=key.key_id, user_id=key.user_id, team_id=key.team_id)
