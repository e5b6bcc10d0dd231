"""`lifeline incident open|update|resolve|list` (notifier).

Through the notifier's admin API, like the console's buttons: the notifier is what records the
change with the actor, tells the bus and sends the alerts. The token is read from the variable
that lifeline.yaml's `notifier.admin_token_env` names (LIFELINE_ADMIN_TOKEN by default).
"""

import getpass
import os
from typing import Annotated, Any

import aiohttp
import typer
from rich.table import Column, Table

from services.runtime.config import ConfigError, load_config
from services.runtime.settings import Settings

from .client import CliError
from .common import JsonFlag, console, print_json, run

incident_app = typer.Typer(help="Incidents on the status page (served by the notifier).",
                           no_args_is_help=True)
Actor = Annotated[str | None, typer.Option(help="Who is doing this (default: your login name).")]


def _status_url() -> str:
    return (os.environ.get("LIFELINE_STATUS_URL")
            or f"http://127.0.0.1:{Settings().status_port}").rstrip("/")


def _token() -> str:
    try:
        var = load_config(Settings().config).notifier.admin_token_env
    except ConfigError:
        var = "LIFELINE_ADMIN_TOKEN"
    token = os.environ.get(var)
    if not token:
        raise CliError(f"set {var} to the notifier's admin token")
    return token


async def _call(method: str, path: str, body: dict[str, Any] | None = None, *,
                admin: bool = False) -> Any:
    url = _status_url() + path
    headers = {"Accept": "application/json"}
    if admin:
        headers["Authorization"] = f"Bearer {_token()}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            async with http.request(method, url, json=body, headers=headers) as r:
                data = await r.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as e:
        raise CliError(f"cannot reach the status page at {_status_url()} ({e}); "
                       "is the notifier up? (LIFELINE_STATUS_URL)") from None
    if r.status >= 400:
        raise CliError(f"{r.status}: {data.get('error', data) if isinstance(data, dict) else data}")
    return data


def _actor(actor: str | None) -> str:
    return actor or os.environ.get("USER") or getpass.getuser()


@incident_app.command("list")
def list_incidents(
    every: Annotated[bool, typer.Option("--all", help="Resolved ones too (newest first).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """The unresolved incidents (or all recent ones)."""
    path = "/api/v2/incidents.json" if every else "/api/v2/incidents/unresolved.json"
    incidents = run(_call("GET", path))["incidents"]
    if as_json:
        print_json(incidents)
        return
    if not incidents:
        console.print("no incidents" if every else "no open incidents")
        return
    table = Table("status", "impact", "started", "title")
    table.columns.insert(0, Column("id", no_wrap=True))
    for i in incidents:
        table.add_row(i["id"], i["status"], i["impact"], i["started_at"][:19], i["name"])
    console.print(table)


@incident_app.command("open")
def open_incident(
    title: str,
    component: Annotated[str, typer.Option(help="Component id, e.g. provider-openai.")] = "other",
    impact: Annotated[str, typer.Option(help="none | minor | major | critical")] = "minor",
    status: Annotated[str, typer.Option(help="investigating | identified | monitoring")] = "investigating",
    message: Annotated[str | None, typer.Option(help="What customers should know.")] = None,
    actor: Actor = None,
    as_json: JsonFlag = False,
) -> None:
    """Open an incident by hand (alerts go out as for automatic ones)."""
    done = run(_call("POST", "/admin/incidents", {
        "title": title, "component": component, "impact": impact, "status": status,
        "message": message or title, "actor": _actor(actor)}, admin=True))
    print_json(done) if as_json else console.print(f"opened {done['incident_id']}")


@incident_app.command("update")
def update_incident(
    incident_id: str,
    message: str,
    status: Annotated[str | None, typer.Option(help="investigating | identified | monitoring | resolved")] = None,
    actor: Actor = None,
    as_json: JsonFlag = False,
) -> None:
    """Post an update to an incident's timeline."""
    done = run(_call("POST", f"/admin/incidents/{incident_id}/updates",
                     {"message": message, "status": status, "actor": _actor(actor)}, admin=True))
    print_json(done) if as_json else console.print(f"{incident_id}: {done['status']}")


@incident_app.command("resolve")
def resolve_incident(
    incident_id: str,
    message: Annotated[str, typer.Option(help="The closing note.")] = "",
    actor: Actor = None,
    as_json: JsonFlag = False,
) -> None:
    """Resolve an incident (its duration is measured from when it started)."""
    done = run(_call("POST", f"/admin/incidents/{incident_id}/resolve",
                     {"message": message, "actor": _actor(actor)}, admin=True))
    if as_json:
        print_json(done)
    else:
        console.print(f"{incident_id}: resolved after {done.get('duration') or '?'}")


def register(app: typer.Typer) -> None:
    """Adds this module's verbs to the `lifeline` command."""
    app.add_typer(incident_app, name="incident")
