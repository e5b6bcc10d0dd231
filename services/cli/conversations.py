"""`lifeline history, purge` (through the conversation store on the bus) and `lifeline export,
import` (straight to the database at LIFELINE_DB_URL: they work with nothing else running)."""

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from schemas import subjects
from services.conversation_store.portability import (
    PortabilityError, export_turns, import_turns,
)
from services.conversation_store.store import TurnStore
from services.runtime.settings import Settings

from .client import CliError, _connect
from .common import JsonFlag, console, fail, print_json, run

DbOption = Annotated[str | None, typer.Option(
    "--db", help="Database URL (default: LIFELINE_DB_URL, else SQLite under LIFELINE_HOME).")]


async def _ask_store(subject: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    nc = await _connect(Settings().nats_url)
    try:
        msg = await nc.request(subject, json.dumps(body).encode(), timeout=timeout)
    except NoRespondersError:
        raise CliError(f"no conversation-store is serving {subject}; is the mesh up?") from None
    except NatsTimeout:
        raise CliError(f"no answer to {subject} within {timeout:g}s") from None
    finally:
        await nc.close()
    return json.loads(msg.data)


def history(
    session: Annotated[str, typer.Argument(help="The session id the application sent.")],
    limit: Annotated[int | None, typer.Option(min=1, help="Only the newest N turns.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the store.")] = 10.0,
    as_json: JsonFlag = False,
) -> None:
    """A session's turns, oldest first, as the conversation store keeps them."""
    reply = run(_ask_store(subjects.CONVERSATION_HISTORY_GET,
                           {"session_id": session, "limit": limit}, timeout))
    if reply.get("error"):
        fail(reply["error"])
    if as_json:
        print_json(reply)
        return
    table = Table("#", "at (UTC)", "tier", "answered by", "question", "answer")
    for n, turn in enumerate(reply["turns"], start=1):
        asked = next((m["content"] for m in reversed(turn["messages"]) if m.get("role") == "user"), "")
        table.add_row(str(n), turn["at"][:19].replace("T", " "), turn.get("tier") or "-",
                      f"{turn.get('provider')}/{turn.get('model')}", _short(asked),
                      _short(turn.get("content") or ""))
    console.print(table)
    more = " (older turns left out)" if reply.get("truncated") else ""
    console.print(f"{len(reply['turns'])} turns in session {session}{more}", highlight=False,
                  markup=False)


def purge(
    user: Annotated[str, typer.Option("--user", help="The user id whose history is deleted.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the purge log and the event).")],
    actor: Annotated[str | None, typer.Option(help="Who asks (default: $USER).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the store.")] = 60.0,
    as_json: JsonFlag = False,
) -> None:
    """Delete every turn and conversation of one user; announced on conversation.purged."""
    if not reason.strip():
        fail("--reason must say why")
    body = {"user_id": user, "reason": reason, "actor": actor or os.environ.get("USER", "")}
    reply = run(_ask_store(subjects.CONVERSATION_PURGE, body, timeout))
    if as_json:
        print_json(reply)
    if reply.get("error") and not reply.get("event_id"):
        fail(reply["error"])
    if not as_json:
        console.print(f"purged user {user}: {reply['turns']} turns, {reply['conversations']} "
                      f"conversations (event {reply['event_id']})", highlight=False, markup=False)
    if reply.get("error"):  # deleted, but the announcement failed
        fail(reply["error"], code=1)


def export(
    out: Annotated[Path | None, typer.Option(help="Write here (default: standard output).")] = None,
    since: Annotated[str | None, typer.Option(help="Only turns at or after this ISO time (UTC if no offset).")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user's turns.")] = None,
    db: DbOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Every turn as JSON Lines (one turn a line), oldest first, from the database directly."""
    start = _parse_time(since) if since else None
    url = db or Settings().db_url
    summary_to = Console(stderr=True) if out is None else console
    try:
        if out is None:
            done = run(_export(url, sys.stdout, start, user))
        else:
            partial = out.with_name(out.name + ".partial")
            with partial.open("w", encoding="utf-8") as f:
                done = run(_export(url, f, start, user))
            partial.replace(out)  # a file named `out` is always a complete export
    except OSError as e:
        fail(f"cannot write {out}: {e.strerror}")
    summary = {"turns": done.turns, "sha256": done.sha256, "out": str(out or "-")}
    if as_json:  # beside the data on standard output, the summary goes to standard error
        (print_json(summary) if out else sys.stderr.write(json.dumps(summary) + "\n"))
    else:
        summary_to.print(f"exported {done.turns} turns to {out or 'standard output'} "
                         f"(sha256 {done.sha256})", highlight=False, markup=False)


def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A `lifeline export` file.")],
    force: Annotated[bool, typer.Option("--force", help="Import into a store that already holds turns.")] = False,
    db: DbOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Read an export back into an empty store (migrated first); idempotent on request id."""
    url = db or Settings().db_url
    done = run(_import(url, file, force))
    if as_json:
        print_json(done.__dict__)
    else:
        console.print(f"imported {done.stored} of {done.read} turns from {file} "
                      f"({done.skipped} already there, {done.purged} of purged users, "
                      f"{len(done.refused)} refused; sha256 {done.sha256})", highlight=False,
                      markup=False)
        for line in done.refused:
            console.print(f"refused: {line}", style="red", highlight=False, markup=False)
    if done.refused:
        raise typer.Exit(1)


async def _export(url: str, out: Any, since: datetime | None, user: str | None) -> Any:
    try:
        async with TurnStore(url) as store:
            return await export_turns(store, out, since=since, user_id=user)
    except SQLAlchemyError as e:
        raise CliError(f"cannot read turns from {_safe(url)}: {_first_line(e)} "
                       "(is it migrated? lifeline db upgrade)") from None
    except OSError as e:
        raise CliError(f"cannot reach the database at {_safe(url)}: {e}") from None


async def _import(url: str, path: Path, force: bool) -> Any:
    try:
        store = await TurnStore(url).open(migrate_first=True)
    except (SQLAlchemyError, OSError) as e:
        raise CliError(f"cannot open the database at {_safe(url)}: {_first_line(e)}") from None
    try:
        return await import_turns(store, path, force=force)
    except PortabilityError as e:
        raise CliError(str(e)) from None
    except (SQLAlchemyError, OSError) as e:
        raise CliError(f"import into {_safe(url)} failed: {_first_line(e)}") from None
    finally:
        await store.close()


def _parse_time(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--since {text!r} is not an ISO 8601 time (e.g. 2026-01-31 or 2026-01-31T12:00:00Z)")
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _safe(url: str) -> str:
    """The URL without its password: errors are printed and may be pasted into tickets."""
    from sqlalchemy.engine import make_url
    return make_url(url).render_as_string(hide_password=True)


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0][:300] if str(error) else type(error).__name__


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def register(app: typer.Typer) -> None:
    """Adds this module's verbs to the `lifeline` command."""
    app.command()(history)
    app.command()(purge)
    app.command()(export)
    app.command("import")(import_)
