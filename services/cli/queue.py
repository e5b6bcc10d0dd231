"""`lifeline queue`: depth, oldest age, drain rate, dead letters, requeue (router's durable tier).

    lifeline queue [--json]                 what is parked, how fast it drains, what died
    lifeline queue requeue (--all | ID)     dead letters back onto their queue (ID: request id
                                            or dead-letter sequence)
    lifeline queue result TICKET [--json]   the stored answer to a parked request
"""

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from rich.table import Table

from schemas import subjects
from schemas.streams import DEADLETTER, LLM_QUEUE, LLM_RESULTS, QUEUE_DEADLETTERS
from services.runtime.settings import Settings

from .client import CliError
from .client import _connect as connect  # one way to reach the bus for every verb
from .common import JsonFlag, console, print_json, run

PRIORITIES = ("interactive", "batch")
SHOWN_DEAD_LETTERS = 10
REQUEST_ID_HEADER = "Lifeline-Request-Id"  # as services/router/results.py writes it


async def report(url: str, *, sample_s: float) -> dict[str, Any]:
    nc = await connect(url)
    try:
        js = nc.jetstream()
        first = await _queue_state(js)
        await asyncio.sleep(sample_s)  # the drain rate is what left the queue meanwhile
        second = await _queue_state(js)
        removed = first.messages + (second.last_seq - first.last_seq) - second.messages
        depth = {p: (second.subjects or {}).get(subjects.llm_queue(p), 0) for p in PRIORITIES}
        return {
            "depth": depth,
            "in_hand": {p: await _in_hand(js, p) for p in PRIORITIES},
            "oldest_age_s": {p: await _oldest_age(js, p, second.first_seq) if depth[p] else None
                             for p in PRIORITIES},
            "drain_rate_per_s": round(max(removed, 0) / sample_s, 2),
            "dead_letters": await _dead_letters(js, newest=SHOWN_DEAD_LETTERS),
        }
    finally:
        await nc.close()


async def requeue(url: str, ids: list[str] | None) -> list[dict[str, Any]]:
    """Every dead letter (ids None) or those named by request id or sequence, put back."""
    nc = await connect(url)
    try:
        js = nc.jetstream()
        letters = (await _dead_letters(js, newest=None))["letters"]
        chosen = [d for d in letters
                  if ids is None or d["request_id"] in ids or str(d["seq"]) in ids]
        if ids is not None:
            missing = set(ids) - {d["request_id"] for d in chosen} - {str(d["seq"]) for d in chosen}
            if missing:
                raise CliError(f"no dead letter with id {', '.join(sorted(missing))}")
        for d in chosen:
            msg = await js.get_msg(DEADLETTER.name, d["seq"])
            # A fresh message id: the original one may still be inside the duplicate window.
            await js.publish(d["subject"], msg.data or b"",
                             headers={"Nats-Msg-Id": f"{d['request_id'] or 'seq'}.requeued.{d['seq']}"})
            await js.delete_msg(DEADLETTER.name, d["seq"])
        return chosen
    finally:
        await nc.close()


async def result(url: str, ticket: str) -> dict[str, Any]:
    nc = await connect(url)
    try:
        msg = await nc.jetstream().get_last_msg(LLM_RESULTS.name, subjects.llm_result(ticket))
    except NotFoundError:
        raise CliError(f"no answer for {ticket} yet (or it is older than LLM_RESULTS keeps)") from None
    finally:
        await nc.close()
    return json.loads(msg.data or b"{}")


async def _queue_state(js: JetStreamContext) -> Any:
    try:
        return (await js.stream_info(LLM_QUEUE.name, subjects_filter=f"{subjects.LLM_QUEUE_PREFIX}.>")).state
    except NotFoundError:
        raise CliError("the LLM_QUEUE stream does not exist: has a router ever started?") from None


async def _in_hand(js: JetStreamContext, priority: str) -> int:
    try:
        return (await js.consumer_info(LLM_QUEUE.name, f"router-{priority}")).num_ack_pending or 0
    except NotFoundError:
        return 0


async def _oldest_age(js: JetStreamContext, priority: str, first_seq: int) -> float | None:
    try:
        msg = await js.get_msg(LLM_QUEUE.name, seq=max(first_seq, 1),
                               subject=subjects.llm_queue(priority), next=True)
    except NotFoundError:
        return None
    return round((datetime.now(UTC) - msg.time).total_seconds(), 1) if msg.time else None


async def _dead_letters(js: JetStreamContext, *, newest: int | None) -> dict[str, Any]:
    try:
        state = (await js.stream_info(DEADLETTER.name, subjects_filter=QUEUE_DEADLETTERS)).state
    except NotFoundError:
        return {"count": 0, "letters": []}
    letters: list[dict[str, Any]] = []
    if not state.messages:
        return {"count": 0, "letters": letters}
    for seq in range(state.last_seq, state.first_seq - 1, -1):  # newest first
        if newest is not None and len(letters) >= newest:
            break
        try:
            msg = await js.get_msg(DEADLETTER.name, seq)
        except NotFoundError:  # requeued (deleted)
            continue
        if not subjects.matches(msg.subject or "", QUEUE_DEADLETTERS):
            continue  # another consumer's dead letter
        headers = msg.headers or {}
        letters.append({
            "seq": seq,
            "subject": (msg.subject or "").removeprefix(f"{subjects.DEADLETTER_PREFIX}."),
            "request_id": headers.get(REQUEST_ID_HEADER),
            "reason": headers.get(subjects.DEADLETTER_REASON_HEADER, ""),
            "at": msg.time.isoformat() if msg.time else None,
        })
    count = sum((state.subjects or {}).values()) if state.subjects is not None else state.messages
    return {"count": count, "letters": letters}


def _show(data: dict[str, Any]) -> None:
    table = Table("priority", "queued", "in hand", "oldest")
    for p in PRIORITIES:
        age = data["oldest_age_s"][p]
        table.add_row(p, str(data["depth"][p]), str(data["in_hand"][p]),
                      "-" if age is None else f"{age:.0f}s")
    console.print(table)
    console.print(f"drain rate: {data['drain_rate_per_s']:g} requests/s")
    dead = data["dead_letters"]
    console.print(f"dead letters: {dead['count']}")
    if dead["letters"]:
        table = Table("seq", "queue", "request", "reason", "at")
        for d in dead["letters"]:
            table.add_row(str(d["seq"]), d["subject"], d["request_id"] or "-", d["reason"], d["at"] or "-")
        console.print(table)


def register(app: typer.Typer) -> None:
    """Adds `lifeline queue` and its verbs to the `lifeline` command."""
    queue_app = typer.Typer(help="The durable queue: depth, drain rate, dead letters, requeue.",
                            invoke_without_command=True)

    @queue_app.callback()
    def queue(ctx: typer.Context, as_json: JsonFlag = False,
              sample: Annotated[float, typer.Option(help="Seconds to measure the drain rate over.")] = 1.0,
              ) -> None:
        """Show what is parked, how fast it drains, and the dead letters."""
        if ctx.invoked_subcommand is not None:
            return
        started = time.monotonic()
        data = run(report(Settings().nats_url, sample_s=sample))
        data["measured_in_s"] = round(time.monotonic() - started, 2)
        print_json(data) if as_json else _show(data)

    @queue_app.command("requeue")
    def requeue_command(
        ids: Annotated[list[str] | None, typer.Argument(help="Request ids or dead-letter sequences.")] = None,
        all_: Annotated[bool, typer.Option("--all", help="Every dead letter.")] = False,
        as_json: JsonFlag = False,
    ) -> None:
        """Put dead letters back onto the queue they came from."""
        if bool(ids) == all_:
            console.print("[red]error:[/red] name dead letters (ID ...) or say --all")
            raise typer.Exit(2)
        done = run(requeue(Settings().nats_url, None if all_ else list(ids or [])))
        if as_json:
            print_json({"requeued": done})
        else:
            console.print(f"requeued {len(done)} dead letter(s)")

    @queue_app.command("result")
    def result_command(ticket: str, as_json: JsonFlag = False) -> None:
        """The stored answer to a parked request (its ticket is its request id)."""
        data = run(result(Settings().nats_url, ticket))
        if as_json:
            print_json(data)
        else:
            console.print(data.get("content") or data.get("error"), markup=False, highlight=False)

    app.add_typer(queue_app, name="queue")

