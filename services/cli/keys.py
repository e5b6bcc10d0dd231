"""`lifeline keys create|revoke|list`: the gateway's virtual API keys.

A key lives hashed in the SQL store (LIFELINE_DB_URL, the system of record) and is announced on
the `api-keys` KV bucket, which every gateway instance watches: a new key works, and a revoked
key is refused, within a second. Without the bus the change is still stored, and gateways pick
it up when they reread the table (gateway.key_refresh_s, 30 s by default).
"""

from datetime import UTC, datetime
from typing import Annotated, Any

import nats
import typer
from nats.errors import Error as NatsError
from nats.errors import NoServersError
from nats.js.errors import BucketNotFoundError

from schemas.keys import ApiKey
from schemas.streams import API_KEYS
from services.gateway.store import KeyStore, announce
from services.runtime.bus import ensure_bucket
from services.runtime.db import make_engine, migrate
from services.runtime.settings import Settings

from .common import JsonFlag, console, fail, print_json, run

keys_app = typer.Typer(help="Gateway API keys: each tied to a user (and team) whose budgets and "
                            "limits apply.", no_args_is_help=True)


async def _store_then(action: Any) -> Any:
    settings = Settings()
    engine = make_engine(settings.db_url)
    try:
        await migrate(engine)
        return await action(KeyStore(engine))
    finally:
        await engine.dispose()


async def _announce(key: ApiKey) -> str | None:
    """Tells every gateway; None when done, else why not (the change is stored either way)."""
    settings = Settings()
    url = settings.nats_url
    try:
        nc = await nats.connect(url.split(","), connect_timeout=2, allow_reconnect=False,
                                max_reconnect_attempts=1, error_cb=_quiet)
    except (NoServersError, OSError):
        return f"cannot reach NATS at {url}"
    try:
        js = nc.jetstream()
        try:
            await js.key_value(API_KEYS.name)
        except BucketNotFoundError:  # a bus no service has provisioned yet. Never "update" one
            # that exists: with this shell's LIFELINE_STREAM_REPLICAS (1 unless set) that would
            # take a cluster's 3 replicas down to 1.
            await ensure_bucket(js, API_KEYS, replicas=settings.stream_replicas)
        await announce(js, key)
        return None
    except (NatsError, OSError) as e:
        return f"announcing on KV {API_KEYS.name} failed: {e!r}"
    finally:
        await nc.close()


async def _quiet(error: Exception) -> None:
    """nats-py logs every failed connect with a traceback; we say it once, plainly."""


def _row(key: ApiKey) -> dict[str, Any]:
    return {"key_id": key.key_id, "prefix": key.prefix, "user_id": key.user_id,
            "team_id": key.team_id, "name": key.name, "created_at": key.created_at.isoformat(),
            "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None}


def _later(why: str) -> str:
    return (f"[yellow]warning:[/yellow] {why}: stored, but gateways learn of it only when they "
            "reread the key table (gateway.key_refresh_s, 30 s by default)")


@keys_app.command()
def create(
    user: Annotated[str, typer.Option("--user", help="Whose budgets and limits apply.")],
    team: Annotated[str | None, typer.Option("--team", help="Team, for team budgets.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="What the key is for.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Make a key. It is shown once: only its hash is kept."""
    async def go(store: KeyStore) -> tuple[str, ApiKey, str | None]:
        secret, key = await store.create(user_id=user, team_id=team, name=name, now=datetime.now(UTC))
        return secret, key, await _announce(key)

    secret, key, problem = run(_store_then(go))
    if as_json:
        print_json({**_row(key), "key": secret, "announced": problem is None})
        return
    console.print(f"{key.key_id}  user {key.user_id}" + (f"  team {key.team_id}" if team else ""),
                  highlight=False, markup=False)
    console.print("API key (shown once, store it now):", highlight=False)
    console.print(secret, highlight=False, markup=False)
    if problem:
        console.print(_later(problem), highlight=False)


@keys_app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (key_...), from `lifeline keys list`.")],
    as_json: JsonFlag = False,
) -> None:
    """Revoke a key: every gateway refuses it with a 401 within a second."""
    async def go(store: KeyStore) -> tuple[ApiKey | None, str | None]:
        key = await store.revoke(key_id, now=datetime.now(UTC))
        return key, (await _announce(key) if key else None)

    key, problem = run(_store_then(go))
    if key is None:
        fail(f"no key {key_id!r} (see `lifeline keys list --all`)")
        return
    if as_json:
        print_json({**_row(key), "announced": problem is None})
        return
    console.print(f"revoked {key.key_id} (user {key.user_id})", highlight=False, markup=False)
    if problem:
        console.print(_later(problem), highlight=False)


@keys_app.command("list")
def list_keys(
    show_all: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """The keys (never the keys themselves: their ids, first characters, owners)."""
    async def go(store: KeyStore) -> list[ApiKey]:
        return await store.all()

    keys = [k for k in run(_store_then(go)) if show_all or k.revoked_at is None]
    if as_json:
        print_json({"keys": [_row(k) for k in keys]})
        return
    if not keys:
        console.print("no keys (make one: lifeline keys create --user USER)")
    for k in keys:
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
        console.print(f"{k.key_id}  {k.prefix}...  user {k.user_id}  team {k.team_id or '-'}  "
                      f"{k.name or ''}  {state}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    """Adds this module's verbs to the `lifeline` command."""
    app.add_typer(keys_app, name="keys")
