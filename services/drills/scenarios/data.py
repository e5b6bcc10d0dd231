"""Conversation history is lost (the store's rows deleted) and restored from the latest snapshot
with point-in-time replay; RTO and RPO measured, the rows compared one by one.

The backup agent is driven through its commands, as an operator would (`lifeline backup now`,
`lifeline restore SNAPSHOT --to now`), so this drill depends on their contract, not on the agent's
code. Destructive by nature: it needs --yes.
"""

import asyncio
import hashlib
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import text

from services.runtime.db import make_engine

from .. import measure
from ..bus import DrillError
from ..context import DrillContext
from ..traffic import Ask
from ..verdict import Check
from .base import Outcome, common

SESSIONS = 8  # conversations the drill's traffic spreads over


def in_session(drill_id: str) -> Any:
    def ask(n: int) -> Ask:
        return Ask([{"role": "user", "content": f"Drill turn {n}: summarise the drill status."}],
                   session_id=f"drill-{drill_id}-s{n % SESSIONS}")
    return ask


class DataLoss:
    name: ClassVar[str] = "data-loss"
    summary: ClassVar[str] = "the conversation store loses its rows; restore the latest snapshot + replay"
    runbook: ClassVar[str] = "data-corruption.md"

    async def run(self, ctx: DrillContext) -> None:
        if not ctx.facts.get("destructive_ok"):
            raise DrillError("data-loss deletes every row of the conversation store before it restores "
                             "them: run it on a mesh you may break, with --yes")
        engine = make_engine(ctx.settings.db_url)
        try:
            await self._run(ctx, engine)
        finally:
            await engine.dispose()

    async def _run(self, ctx: DrillContext, engine: Any) -> None:
        ctx.traffic(in_session(ctx.drill_id))
        await ctx.hold(ctx.warmup)
        snapshot = await lifeline(ctx, "backup", "now", "--json")
        ctx.facts["snapshot"] = snapshot_id(snapshot)
        ctx.mark("snapshot")
        await ctx.hold(ctx.duration)  # turns after the snapshot: only the replay brings them back
        await ctx.stop_traffic()
        answered = {a.request_id for a in ctx.timeline.answers if a.status == "ok"}
        before = await wait_for_rows(engine, ctx.drill_id, len(answered))
        ctx.facts["before"] = before
        ctx.facts["table_before"] = await table_rows(engine)
        ctx.mark("fault")
        async with engine.begin() as conn:  # the disaster: the store's rows are gone
            await conn.execute(text("DELETE FROM turns"))
            await conn.execute(text("DELETE FROM conversations"))
        # --force: the other services' tables still hold rows (a live mesh); they are put back as
        # the snapshot had them, the history and the ledger replayed to now from LLM_EVENTS.
        restored = await lifeline(ctx, "restore", ctx.facts["snapshot"], "--to", "now", "--force",
                                  "--json")
        ctx.facts["restore"] = restored
        ctx.facts["after"] = await drill_rows(engine, ctx.drill_id)
        ctx.mark("restored")
        ctx.facts["table_after"] = await table_rows(engine)

    def measure(self, ctx: DrillContext) -> Outcome:
        tl = ctx.timeline
        before: dict[str, dict[str, Any]] = ctx.facts.get("before", {})
        after: dict[str, dict[str, Any]] = ctx.facts.get("after", {})
        missing = [r for rid, r in before.items() if rid not in after]
        changed = [rid for rid, r in before.items() if rid in after and after[rid]["hash"] != r["hash"]]
        ctx.facts["lost_times"] = [r["at"] - tl.t0 for r in missing]
        restore = ctx.facts.get("restore") or {}
        figures = {
            **common(ctx),
            "snapshot": ctx.facts.get("snapshot"),
            "rows_before": len(before),
            "rows_after": len(after),
            "rows_missing": len(missing),
            "rows_changed": len(changed),
            "table_rows_before": ctx.facts.get("table_before"),
            "table_rows_after": ctx.facts.get("table_after"),
            "replayed": restore.get("replayed_total", restore.get("replayed")),
            "restore_command_s": restore.get("duration_s"),
            "rto_s": measure.since(tl.marks.get("restored"), tl.marks.get("fault")),
        }
        figures["lost"] = len(missing)
        figures["rpo_s"] = measure.rpo(ctx.facts["lost_times"], tl.marks.get("fault", 0.0))
        checks = {
            "rows_compared": Check(bool(before) and not missing and not changed,
                                   f"{len(before)} drill rows before, {len(missing)} missing, "
                                   f"{len(changed)} changed after the restore"),
            "table_restored": Check((ctx.facts.get("table_after") or 0) >= (ctx.facts.get("table_before") or 0),
                                    f"{ctx.facts.get('table_before')} rows before, "
                                    f"{ctx.facts.get('table_after')} after"),
        }
        return Outcome(figures, checks, {"missing": [r["request_id"] for r in missing][:100],
                                         "changed": changed[:100]})


async def lifeline(ctx: DrillContext, *args: str) -> dict[str, Any]:
    """One `lifeline` command against the same mesh, as an operator runs it."""
    env = {**os.environ, "NATS_URL": ctx.settings.nats_url, "LIFELINE_DB_URL": ctx.settings.db_url,
           "LIFELINE_CONFIG": str(ctx.settings.config), "LIFELINE_HOME": str(ctx.settings.home)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), ctx.recovery_timeout + 300)
    if proc.returncode != 0:
        raise DrillError(f"`lifeline {' '.join(args)}` failed ({proc.returncode}): "
                         f"{(err or out).decode(errors='replace').strip()[-500:]}")
    try:
        return json.loads(out)
    except json.JSONDecodeError:
        raise DrillError(f"`lifeline {' '.join(args)}` did not print JSON: {out[:200]!r}") from None


def snapshot_id(reply: dict[str, Any]) -> str:
    for key in ("snapshot_id", "id", "snapshot"):
        if isinstance(reply.get(key), str):
            return reply[key]
    raise DrillError(f"`lifeline backup now --json` named no snapshot: {reply}")


def _when(value: Any) -> float:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:  # the store keeps naive UTC in SQLite
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


async def drill_rows(engine: Any, drill_id: str) -> dict[str, dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT request_id, session_id, content, provider, at FROM turns "
            "WHERE request_id LIKE :prefix"), {"prefix": f"drill-{drill_id}-%"})).all()
    return {r.request_id: {
        "request_id": r.request_id, "at": _when(r.at),
        "hash": hashlib.sha256(json.dumps([r.session_id, r.content, r.provider]).encode()).hexdigest(),
    } for r in rows}


async def table_rows(engine: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM turns"))).scalar_one())


async def wait_for_rows(engine: Any, drill_id: str, expected: int,
                        within: float = 20.0) -> dict[str, dict[str, Any]]:
    """The store writes each answered turn within a batch; wait until it has all of ours."""
    rows: dict[str, dict[str, Any]] = {}
    for _ in range(int(within / 0.25)):
        rows = await drill_rows(engine, drill_id)
        if len(rows) >= expected:
            break
        await asyncio.sleep(0.25)
    return rows
