"""`lifeline killswitch engage|release|status`, `lifeline spend`, `lifeline budget set|unset`.

The control KV is the kill switch's source of truth: the command writes it, every router obeys
it within a second, and the cost guard announces the change (killswitch.engaged / released).
"""

import getpass
import json
import socket
from typing import Annotated, Any

import typer
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from pydantic import ValidationError
from rich.table import Table

from schemas import subjects
from schemas.control import DOWNGRADE_PREFIX, Killswitch, killswitch_key, scope_of
from schemas.costs import LIMITS_SPEND_KEY, SpendQuery, SpendReport
from schemas.streams import CONTROL, LIMITS
from services.runtime.config.budgets import RunTimeBudgets, SpendBudget
from services.runtime.settings import Settings

from .client import CliError, _connect
from .common import JsonFlag, console, fail, print_json, run

killswitch_app = typer.Typer(help="Stop every provider call (or one route's, or one key's).",
                             no_args_is_help=True)
budget_app = typer.Typer(help="Change a budget's limit at run time (no restart, no file edit).",
                         no_args_is_help=True)

Scope = Annotated[str, typer.Option(help="all, route:<name> or key:<key_id>.")]
Reason = Annotated[str, typer.Option(help="Why: announced with the change and kept with it.")]
Actor = Annotated[str | None, typer.Option(help="Who (default: you@this-host).")]


def _actor(actor: str | None) -> str:
    return actor or f"{getpass.getuser()}@{socket.gethostname()}"


async def _set_switch(url: str, scope: str, switch: Killswitch) -> dict[str, Any]:
    key = killswitch_key(scope)
    nc = await _connect(url)
    try:
        kv = await nc.jetstream().key_value(CONTROL.name)
        revision = await kv.put(key, switch.model_dump_json().encode())
    finally:
        await nc.close()
    return {"key": key, "revision": revision, **switch.model_dump(mode="json")}


def _switch(engaged: bool, scope: str, reason: str, actor: str | None, as_json: bool) -> None:
    try:
        killswitch_key(scope)
    except ValueError as e:
        fail(str(e))
    switch = Killswitch(engaged=engaged, reason=reason, actor=_actor(actor), scope=scope)
    done = run(_set_switch(Settings().nats_url, scope, switch))
    if as_json:
        print_json(done)
    else:
        console.print(f"kill switch {scope}: {'ENGAGED' if engaged else 'released'} "
                      f"({done['key']} rev {done['revision']}) — {reason}", highlight=False)


@killswitch_app.command()
def engage(reason: Reason, scope: Scope = "all", actor: Actor = None,
           as_json: JsonFlag = False) -> None:
    """Engage: routers answer with the maintenance message and call no provider."""
    _switch(True, scope, reason, actor, as_json)


@killswitch_app.command()
def release(reason: Reason, scope: Scope = "all", actor: Actor = None,
            as_json: JsonFlag = False) -> None:
    """Release: routers call providers again."""
    _switch(False, scope, reason, actor, as_json)


async def _controls(url: str) -> list[dict[str, Any]]:
    nc = await _connect(url)
    try:
        kv = await nc.jetstream().key_value(CONTROL.name)
        try:
            keys = await kv.keys()
        except NoKeysError:
            keys = []
        found = []
        for key in sorted(keys):
            if scope_of(key) is None and not key.startswith(DOWNGRADE_PREFIX):
                continue
            try:
                entry = await kv.get(key)
            except KeyNotFoundError:
                continue
            value = json.loads(entry.value or b"null")
            found.append({"key": key, "revision": entry.revision, **(value or {})})
        return found
    finally:
        await nc.close()


@killswitch_app.command("status")
def killswitch_status(as_json: JsonFlag = False) -> None:
    """Every kill switch and downgrade flag in the control bucket."""
    controls = run(_controls(Settings().nats_url))
    if as_json:
        print_json({"controls": controls})
        return
    table = Table("key", "state", "actor", "reason", "at")
    for c in controls:
        on = c.get("engaged", c.get("active"))
        table.add_row(c["key"], "ON" if on else "off", str(c.get("actor") or "-"),
                      str(c.get("reason") or ""), str(c.get("at") or ""))
    console.print(table)


async def _spend(url: str, query: SpendQuery) -> SpendReport:
    nc = await _connect(url)
    try:
        msg = await nc.request(subjects.COST_SPEND, query.model_dump_json().encode(), timeout=10)
    except NoRespondersError:
        raise CliError("no cost guard is serving cost.spend; is the mesh up? (make run)") from None
    except NatsTimeout:
        raise CliError("the cost guard did not answer within 10 s") from None
    finally:
        await nc.close()
    return SpendReport.model_validate_json(msg.data)


def spend(top: Annotated[int, typer.Option(help="Teams, users and keys shown per scope.")] = 20,
          as_json: JsonFlag = False) -> None:
    """Spend today and this month by scope, and each budget's headroom."""
    report = run(_spend(Settings().nats_url, SpendQuery(top=top)))
    if report.error:
        fail(report.error)
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    table = Table("scope", "id", "today $", "month $", "in flight $", "tokens today")
    for s in report.scopes:
        table.add_row(s.scope, s.scope_id, f"{s.today_usd:.4f}", f"{s.month_usd:.4f}",
                      f"{s.pending_usd:.4f}", str(s.tokens_today))
    console.print(table)
    if report.budgets:
        table = Table("budget", "id", "spent $", "limit $", "headroom $", "level", "action", "resets")
        for b in report.budgets:
            table.add_row(b.budget, b.scope_id, f"{b.spent_usd + b.pending_usd:.4f}",
                          f"{b.limit_usd:.2f}", f"{b.headroom_usd:.4f}", b.level, b.action,
                          b.resets_at.isoformat(timespec="minutes"))
        console.print(table)


async def _update_budgets(url: str, change: Any) -> list[SpendBudget]:
    """Applies `change` to the run-time budgets with compare-and-set (two operators at once)."""
    nc = await _connect(url)
    try:
        kv = await nc.jetstream().key_value(LIMITS.name)
        for _ in range(5):
            try:
                entry = await kv.get(LIMITS_SPEND_KEY)
                current, revision = RunTimeBudgets.model_validate_json(entry.value or b"{}"), entry.revision
            except KeyNotFoundError:
                current, revision = RunTimeBudgets(), 0
            wanted = RunTimeBudgets(spend=change(current.spend))
            try:
                await kv.update(LIMITS_SPEND_KEY, wanted.model_dump_json().encode(), last=revision)
                return wanted.spend
            except KeyWrongLastSequenceError:
                continue
        raise CliError("the run-time budgets kept changing under us; try again")
    finally:
        await nc.close()


def _parse_scope(scope: str) -> tuple[str, str]:
    kind, _, ident = scope.partition(":")
    if kind == "global" and not ident:
        return "global", "*"
    if kind in ("team", "user", "key") and ident:
        return kind, ident
    fail(f"scope must be global, team:<id>, user:<id> or key:<id> (\"*\" = each), not {scope!r}")
    raise AssertionError


@budget_app.command("set")
def budget_set(
    scope: Annotated[str, typer.Option(help="global, team:<id>, user:<id> or key:<id>.")],
    limit_usd: Annotated[float, typer.Option(help="The hard limit in USD.")],
    period: Annotated[str, typer.Option(help="day or month.")] = "day",
    action: Annotated[str, typer.Option(help="block, downgrade or killswitch.")] = "block",
    warn_pct: Annotated[float, typer.Option(help="Soft threshold, % of the limit.")] = 80.0,
    as_json: JsonFlag = False,
) -> None:
    """Set a budget's limit (raising it above what is spent restores the budget)."""
    kind, ident = _parse_scope(scope)
    try:
        budget = SpendBudget(scope=kind, id=ident, period=period, limit_usd=limit_usd,
                             action=action, warn_pct=warn_pct)  # type: ignore[arg-type]
    except ValidationError as e:
        fail("; ".join(err["msg"] for err in e.errors(include_url=False)))
        raise AssertionError from e
    budgets = run(_update_budgets(Settings().nats_url, lambda current: [
        b for b in current if b.name != budget.name] + [budget]))
    _show_budgets(budgets, as_json)


@budget_app.command("unset")
def budget_unset(
    scope: Annotated[str, typer.Option(help="global, team:<id>, user:<id> or key:<id>.")],
    period: Annotated[str, typer.Option(help="day or month.")] = "day",
    as_json: JsonFlag = False,
) -> None:
    """Drop a run-time budget: lifeline.yaml's entry (if any) applies again."""
    kind, ident = _parse_scope(scope)
    name = f"{kind}:{ident}:{period}"
    budgets = run(_update_budgets(Settings().nats_url,
                                  lambda current: [b for b in current if b.name != name]))
    _show_budgets(budgets, as_json)


def _show_budgets(budgets: list[SpendBudget], as_json: bool) -> None:
    if as_json:
        print_json({"spend": [b.model_dump(mode="json") for b in budgets]})
    else:
        console.print("run-time budgets: " + (", ".join(
            f"{b.name} ${b.limit_usd:g} ({b.action})" for b in budgets) or "none"), highlight=False)


def register(app: typer.Typer) -> None:
    """Adds this module's verbs to the `lifeline` command."""
    app.add_typer(killswitch_app, name="killswitch")
    app.add_typer(budget_app, name="budget")
    app.command()(spend)
