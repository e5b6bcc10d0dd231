"""`lifeline backup now|list|verify` and `lifeline restore` (backup agent).

`backup now` asks the running backup agent (backup.request), or with `--here` takes the snapshot
in this process. `list`, `verify` and `restore` work on the target directly (LIFELINE_BACKUP_DIR
or the configured S3 bucket), so they work while the mesh is down; `verify` and `restore`
announce their outcome on the bus when it is reachable (restore needs it: KV state and replay).
"""

import json
import os
from datetime import UTC, datetime
from typing import Annotated, Any

import nats
import typer
from nats.errors import NoRespondersError, NoServersError
from nats.errors import TimeoutError as NatsTimeout
from pydantic import ValidationError
from rich.table import Table

from schemas import subjects
from services.backup_agent.api import build_agent, take
from services.backup_agent.codec import ArtifactError, KeyProblem
from services.backup_agent.errors import describe
from services.backup_agent.manifest import MANIFEST, VERIFICATION, Manifest, Verification
from services.backup_agent.reader import SnapshotNotFound, resolve
from services.backup_agent.restore import RESTORE_ERRORS, RestoreResult, restore
from services.backup_agent.settings import BackupAgentSettings
from services.backup_agent.sql_import import NotEmpty, RestoreError
from services.backup_agent.targets import TARGET_ERRORS
from services.backup_agent.wiring import make_target
from services.runtime.config import load_config

from .client import CliError, _connect
from .common import JsonFlag, console, fail, print_json, run

backup_app = typer.Typer(help="Snapshots: take, list, verify (restore: `lifeline restore`).",
                         no_args_is_help=True)


async def _optional_bus(url: str) -> nats.NATS | None:
    try:
        return await nats.connect(url, connect_timeout=1, max_reconnect_attempts=1,
                                  allow_reconnect=False)
    except (NoServersError, OSError):
        return None


async def _ask_agent(url: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    nc = await _connect(url)
    try:
        msg = await nc.request(subjects.BACKUP_REQUEST, json.dumps(body).encode(), timeout=timeout)
    except NoRespondersError:
        raise CliError("no backup-agent is serving backup.request; is the mesh up? "
                       "(or take it in this process: lifeline backup now --here)") from None
    except NatsTimeout:
        raise CliError(f"no answer to backup.request within {timeout:g}s (the snapshot may "
                       "still be running: lifeline backup list)") from None
    finally:
        await nc.close()
    return json.loads(msg.data)


async def _here(settings: BackupAgentSettings, reason: str, verify: bool | None) -> dict[str, Any]:
    nc = await _connect(settings.nats_url)
    try:
        reply = await take(reason, verify=verify, settings=settings, nc=nc)
    finally:
        await nc.drain()
    return reply.model_dump(mode="json")


@backup_app.command()
def now(
    here: Annotated[bool, typer.Option("--here", help="Take it in this process, not the agent.")] = False,
    verify: Annotated[bool | None, typer.Option(
        "--verify/--no-verify", help="Restore it into a scratch database and compare "
                                     "(default: as backup.verify in lifeline.yaml).")] = None,
    reason: Annotated[str, typer.Option(help="Kept in the manifest.")] = "lifeline backup now",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the agent.")] = 1800.0,
    as_json: JsonFlag = False,
) -> None:
    """Take a snapshot now (and verify it by restoring it into a scratch database)."""
    settings = BackupAgentSettings()
    body = {"reason": reason, "verify": verify}
    reply = run(_here(settings, reason, verify) if here
                else _ask_agent(settings.nats_url, body, timeout))
    if as_json:
        print_json(reply)
    elif reply.get("snapshot_id"):
        checked = {True: "verified", False: "FAILED verification", None: "not verified"}
        console.print(
            f"snapshot {reply['snapshot_id']} on {reply['target']}: {reply['rows']} rows, "
            f"{reply['artifacts']} artifacts, {reply['bytes']:,} bytes in {reply['duration_s']:.1f}s, "
            f"events to seq {reply['events_seq']}; {checked[reply.get('verified')]}",
            highlight=False, markup=False)
    if reply.get("error"):
        fail(reply["error"], code=1)


async def _list(settings: BackupAgentSettings) -> list[dict[str, Any]]:
    config = load_config(settings.config).backup
    out = []
    async with make_target(config, settings, os.environ) as target:
        for snapshot_id in await target.snapshots():
            manifest = Manifest.model_validate_json(await target.get(snapshot_id, MANIFEST))
            verified: dict[str, Any] | None
            try:
                check = Verification.model_validate_json(await target.get(snapshot_id, VERIFICATION))
                verified = {"ok": check.ok, "at": check.at.isoformat(), "reason": check.reason}
            except ArtifactError:
                verified = None  # never verified
            except ValidationError:
                verified = {"ok": False, "at": "", "reason": f"{VERIFICATION} is unreadable"}
            out.append({"id": snapshot_id, "created_at": manifest.created_at.isoformat(),
                        "rows": manifest.rows, "bytes": manifest.bytes,
                        "artifacts": len(manifest.artifacts), "events_seq": manifest.events_seq,
                        "encrypted": manifest.encryption is not None, "reason": manifest.reason,
                        "verified": verified, "target": target.description})
    return out


@backup_app.command("list")
def list_(as_json: JsonFlag = False) -> None:
    """The snapshots on the target, oldest first, with their last verification."""
    try:
        snapshots = run(_list(BackupAgentSettings()))
    except TARGET_ERRORS as e:
        fail(f"cannot list the backup target: {describe(e)}")
    if as_json:
        print_json(snapshots)
        return
    table = Table("snapshot", "created (UTC)", "rows", "bytes", "enc", "verified", "reason")
    for s in snapshots:
        v = s["verified"]
        table.add_row(s["id"], s["created_at"][:19].replace("T", " "), str(s["rows"]),
                      f"{s['bytes']:,}", "yes" if s["encrypted"] else "-",
                      "-" if v is None else ("ok " + v["at"][:16] if v["ok"] else "FAILED"),
                      s["reason"])
    console.print(table)
    console.print(f"{len(snapshots)} snapshots", highlight=False)


async def _verify(settings: BackupAgentSettings, snapshot: str) -> Verification:
    config = load_config(settings.config).backup
    nc = await _optional_bus(settings.nats_url)
    try:
        async with make_target(config, settings, os.environ) as target:
            snapshot_id = await resolve(target, snapshot)
            agent = build_agent(settings, config, target, nc.jetstream() if nc else None,
                                source=f"lifeline-cli/{settings.instance}")
            return await agent.verify(snapshot_id)
    finally:
        if nc is not None:
            await nc.drain()


@backup_app.command("verify")
def verify_(
    snapshot: Annotated[str, typer.Argument(help="A snapshot id, or `latest`.")],
    as_json: JsonFlag = False,
) -> None:
    """Check every artifact and restore the snapshot into a scratch database; compare with its
    manifest. Announced as backup.verified / backup.failed when the bus is reachable."""
    try:
        result = run(_verify(BackupAgentSettings(), snapshot))
    except (SnapshotNotFound, KeyProblem, *TARGET_ERRORS) as e:
        fail(describe(e))
    if as_json:
        print_json(result.model_dump(mode="json"))
    elif result.ok:
        console.print(f"snapshot {result.snapshot_id} verified: {result.rows} rows restored into "
                      f"a scratch {result.scratch} database and matched ({result.duration_s:.1f}s)",
                      highlight=False, markup=False)
    if not result.ok:
        fail(f"snapshot {result.snapshot_id} FAILED verification: {result.reason}", code=1)


def _parse_to(value: str | None) -> datetime | str | None:
    if value is None or value == "now":
        return value
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--to {value!r} is neither `now` nor an ISO 8601 time (e.g. 2026-01-31T12:00:00Z)")
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def restore_command(
    snapshot: Annotated[str, typer.Argument(help="A snapshot id, or `latest`.")],
    to: Annotated[str | None, typer.Option(
        "--to", help="Then replay LLM_EVENTS up to this time (ISO 8601, or `now`).")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace what a non-empty database, bucket or file holds.")] = False,
    db: Annotated[str | None, typer.Option("--db", help="Database URL (default: LIFELINE_DB_URL).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Rebuild the SQL store, KV state and files from a snapshot (into an empty database unless
    --force); with --to, replay the events after it: the recovery point is the stream."""
    settings = BackupAgentSettings()
    try:
        result = run(restore(snapshot, to=_parse_to(to), force=force, settings=settings,
                             db_url=db))
    except RESTORE_ERRORS as e:
        fail(f"restore refused or failed, nothing was changed by it: {describe(e)}"
             if _nothing_written(e) else f"restore failed: {describe(e)}")
    if as_json:
        print_json(result.figures())
    else:
        _print_restore(result)
    if not result.ok:
        fail("; ".join(result.warnings), code=1)


def _nothing_written(error: Exception) -> bool:
    return isinstance(error, (ArtifactError, KeyProblem, SnapshotNotFound, NotEmpty, RestoreError))


def _print_restore(r: RestoreResult) -> None:
    console.print(f"restored snapshot {r.snapshot_id} (taken {r.snapshot_at:%Y-%m-%d %H:%M:%S} UTC): "
                  f"{r.total_rows} rows in {len(r.rows)} tables", highlight=False, markup=False)
    if r.kv:
        console.print("KV: " + ", ".join(f"{b} {what}" for b, what in sorted(r.kv.items())),
                      highlight=False, markup=False)
    placed = r.files
    if placed.written or placed.beside or placed.replaced:
        console.print(f"files: {len(placed.written)} written, {len(placed.replaced)} replaced, "
                      f"{len(placed.beside)} differing (snapshot copy beside them)",
                      highlight=False, markup=False)
    for done in r.replay:
        console.print(f"replay {done.subject}: {done.read} events read, {done.replayed} rows "
                      f"written, to seq {done.last_seq} ({done.seconds:.1f}s)"
                      + (f" ERROR {done.error}" if done.error else ""), highlight=False, markup=False)
    console.print(f"done in {r.duration_s:.1f}s: " + ", ".join(f"{k} {v:.1f}s" for k, v in r.phases.items()),
                  highlight=False, markup=False)
    for warning in r.warnings:
        console.print(f"warning: {warning}", style="yellow", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    """Adds this module's verbs to the `lifeline` command."""
    app.add_typer(backup_app, name="backup")
    app.command("restore")(restore_command)
