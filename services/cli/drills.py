"""`lifeline drill SCENARIO` (game days with measured RTO and RPO) and `lifeline fault` (the
router-side fault switch: drills on real vendors, or a bad provider out of rotation by hand)."""

import getpass
import json
import socket
from pathlib import Path
from typing import Annotated, Any

import typer
from nats.js.errors import NoKeysError
from rich.table import Table

from schemas.control import FAULT_PREFIX, ProviderFault, fault_key
from schemas.streams import CONTROL
from services.drills import SCENARIOS, DrillError, DrillOptions, DrillResult, run_drill
from services.runtime.config import ConfigError, load_config
from services.runtime.settings import Settings

from .client import _connect
from .common import JsonFlag, console, fail, print_json, run

fault_app = typer.Typer(help="Router-side fault switch: every router treats a provider as failing "
                             "(no call goes out; a drill on a real vendor, or a bad provider out of "
                             "rotation).", no_args_is_help=True)

SCENARIO_HELP = "One of: " + ", ".join(SCENARIOS) + "."
Opt = typer.Option


def drill(
    scenario: Annotated[str, typer.Argument(help=SCENARIO_HELP, show_default=False)],
    as_json: JsonFlag = False,
    report: Annotated[Path | None, Opt("--report", help="Directory for report.md, report.json and "
                                       "timeline.png (default: <LIFELINE_HOME>/drills/<run>).")] = None,
    duration: Annotated[float | None, Opt("--duration", help="Seconds the fault lasts "
                                          "(default: drills.duration_s).")] = None,
    warmup: Annotated[float | None, Opt(help="Seconds of steady traffic before the fault.")] = None,
    recovery_timeout: Annotated[float | None, Opt(help="Seconds to wait for the full return.")] = None,
    rate: Annotated[float | None, Opt(help="Synthetic requests per second.")] = None,
    max_requests: Annotated[int | None, Opt(help="Never send more requests than this.")] = None,
    route: Annotated[str | None, Opt(help="The route the traffic uses (default: drills.route).")] = None,
    provider: Annotated[str | None, Opt(help="The provider to break (default: the route's primary).")] = None,
    region: Annotated[str | None, Opt(help="region-outage: the region to fail.")] = None,
    via: Annotated[str, Opt(help="auto (simulator for simulated providers, fault switch for real "
                                 "ones), simulator or router.")] = "auto",
    service: Annotated[str, Opt(help="service-crash: the service to kill an instance of.")] = "router",
    instance: Annotated[str | None, Opt(help="service-crash: the instance (LIFELINE_INSTANCE).")] = None,
    pid: Annotated[int | None, Opt(help="service-crash, bus-node-loss: the process to SIGKILL.")] = None,
    node_port: Annotated[int | None, Opt(help="bus-node-loss: the client port of the node to kill "
                                              "(default: the node the drill is connected to).")] = None,
    budget_usd: Annotated[float | None, Opt(help="load-spike: the drill user's cap in USD.")] = None,
    spike: Annotated[float, Opt(help="load-spike: traffic multiplied by this.")] = 10.0,
    respond: Annotated[bool, Opt(help="quality-drop: take the provider out of rotation once the "
                                      "canary fails, as the runbook says.")] = True,
    yes: Annotated[bool, Opt("--yes", help="Allow destructive scenarios (data-loss deletes the "
                                           "conversation store's rows, then restores them).")] = False,
) -> None:
    """Run a drill against the running mesh: inject the fault under synthetic traffic, restore,
    measure detection, failover, errors, RTO and RPO, and judge them against lifeline.yaml's
    `drills:` targets. Exit code 0 when it passed, 1 when it failed, 2 when it could not run."""
    if scenario not in SCENARIOS:
        fail(f"unknown scenario {scenario!r}; {SCENARIO_HELP}")
    if via not in ("auto", "simulator", "router"):
        fail(f"--via must be auto, simulator or router, not {via!r}")
    settings = Settings()
    try:
        config = load_config(settings.config)
    except ConfigError as e:
        fail(str(e))
        raise AssertionError from e
    options = DrillOptions(
        duration_s=duration, warmup_s=warmup, recovery_timeout_s=recovery_timeout, rate=rate,
        max_requests=max_requests, route=route, provider=provider, region=region,
        via=via,  # type: ignore[arg-type]
        service=service, instance=instance, pid=pid, node_port=node_port, budget_usd=budget_usd,
        spike=spike, respond=respond, report_dir=report)
    if not as_json:
        d = config.drills
        console.print(f"drill {scenario}: {SCENARIOS[scenario].summary}; warm-up "
                      f"{warmup if warmup is not None else d.warmup_s:g}s, fault "
                      f"{duration if duration is not None else d.duration_s:g}s ...", highlight=False)
    try:
        result = run(run_drill(scenario, settings=settings, config=config, options=options,
                               destructive_ok=yes))
    except DrillError as e:
        fail(str(e))
        raise AssertionError from e
    if as_json:
        print_json(result.as_json())
    else:
        _show(result)
    raise typer.Exit(0 if result.passed else 1)


def _show(result: DrillResult) -> None:
    table = Table("", "figure", "measured", "target", "note")
    for v in result.verdicts:
        table.add_row("[green]pass[/green]" if v.ok else "[red]FAIL[/red]", v.name, _fmt(v.value),
                      "check" if v.limit is None else f"<= {_fmt(v.limit)}", v.note)
    console.print(table)
    shown = {k: v for k, v in result.figures.items() if k not in {v.name for v in result.verdicts}}
    console.print("  ".join(f"{k}={_fmt(v)}" for k, v in shown.items()), highlight=False)
    for note in result.timeline.notes:
        console.print(f"[dim]note: {note}[/dim]", highlight=False)
    verdict = "[bold green]PASSED[/bold green]" if result.passed else "[bold red]FAILED[/bold red]"
    console.print(f"drill {result.scenario} {verdict}; report: {result.files.get('markdown')}",
                  highlight=False)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _actor(actor: str | None) -> str:
    return actor or f"{getpass.getuser()}@{socket.gethostname()}"


async def _faults(url: str) -> list[dict[str, Any]]:
    nc = await _connect(url)
    try:
        kv = await nc.jetstream().key_value(CONTROL.name)
        try:
            keys = [k for k in await kv.keys() if k.startswith(FAULT_PREFIX)]
        except NoKeysError:
            keys = []
        return [{"provider": k.removeprefix(FAULT_PREFIX),
                 **json.loads((await kv.get(k)).value or b"{}")} for k in sorted(keys)]
    finally:
        await nc.close()


async def _put(url: str, provider: str, fault: ProviderFault | None) -> None:
    nc = await _connect(url)
    try:
        kv = await nc.jetstream().key_value(CONTROL.name)
        if fault is None:
            await kv.delete(fault_key(provider))
        else:
            await kv.put(fault_key(provider), fault.model_dump_json().encode())
    finally:
        await nc.close()


def _known(provider: str) -> None:
    settings = Settings()
    try:
        providers = load_config(settings.config).providers
    except ConfigError as e:
        fail(str(e))
        raise AssertionError from e
    if provider not in providers:
        fail(f"unknown provider {provider!r} (known: {', '.join(providers)})")


@fault_app.command("set")
def fault_set(provider: str,
              reason: Annotated[str, Opt(help="Why: kept with the switch and logged by routers.")],
              actor: Annotated[str | None, Opt(help="Who (default: you@this-host).")] = None,
              as_json: JsonFlag = False) -> None:
    """Every router skips PROVIDER as if it were down (no call goes out) until cleared."""
    _known(provider)
    fault = ProviderFault(active=True, reason=reason, actor=_actor(actor))
    run(_put(Settings().nats_url, provider, fault))
    if as_json:
        print_json({"provider": provider, **fault.model_dump(mode="json")})
    else:
        console.print(f"fault switch {provider}: ON — {reason}", highlight=False)


@fault_app.command("clear")
def fault_clear(provider: str, as_json: JsonFlag = False) -> None:
    """Routers call PROVIDER again, ramping its share up (slow start)."""
    _known(provider)
    run(_put(Settings().nats_url, provider, None))
    if as_json:
        print_json({"provider": provider, "active": False})
    else:
        console.print(f"fault switch {provider}: cleared", highlight=False)


@fault_app.command("list")
def fault_list(as_json: JsonFlag = False) -> None:
    """Every provider whose fault switch is on."""
    faults = run(_faults(Settings().nats_url))
    if as_json:
        print_json({"faults": faults})
        return
    if not faults:
        console.print("no fault switch is on")
    for f in faults:
        console.print(f"{f['provider']}: ON since {f.get('at')} by {f.get('actor')} — "
                      f"{f.get('reason')}", highlight=False)


def register(app: typer.Typer) -> None:
    """Adds this module's verbs to the `lifeline` command."""
    app.command("drill")(drill)
    app.add_typer(fault_app, name="fault")
