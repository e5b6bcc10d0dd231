"""`lifeline status`: the bus, the services alive, each provider's state, p95 latency and uptime
today (from the health monitor's health.report), and each route's composite availability."""

import asyncio
import json
import os
from typing import Any

import typer
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from rich.table import Table

from schemas import subjects
from services.runtime.config import load_config
from services.runtime.settings import Settings

from . import client
from .common import JsonFlag, console, print_json, run


def status(as_json: JsonFlag = False) -> None:
    """Show the bus, the services that are alive, each provider's health and each route's."""
    settings = Settings()
    report = run(client.status(settings.nats_url, listen=settings.heartbeat_interval + 0.5))
    health = run(health_report(settings.nats_url))
    report["providers"] = _providers(settings, health)
    report["routes"] = {name: _route(r) for name, r in (health or {}).get("routes", {}).items()}
    report["health"] = ({"source": health["source"], "generated_at": health["generated_at"],
                         "probe_spend_usd": health["probe_spend_usd"]} if health
                        else {"error": "no health monitor answered on health.report"})
    if as_json:
        print_json(report)
        return
    console.print(f"bus: {report['bus']['url']} (connected)")
    table = Table("service", "instances", "in flight")
    for name, instances in sorted(report["services"].items()):
        table.add_row(name, str(len(instances)), str(sum(i["in_flight"] for i in instances.values())))
    console.print(table)
    table = Table("provider", "state", "p95 ms", "uptime today", "served by", "mode", "requests")
    for name, p in report["providers"].items():
        table.add_row(name, f"{p['state'] or '-'}" + (f" ({p['reason']})" if p["reason"] else ""),
                      _num(p["p95_ms"], "{:.0f}"), _num(p["uptime_today"], "{:.2%}"),
                      "simulator" if p["simulated"] else "vendor", p.get("mode") or "-",
                      str(p.get("requests", "-")))
    console.print(table)
    if report["routes"]:
        table = Table("route", "state", "availability today", "over 90 days", "chain")
        for name, r in report["routes"].items():
            table.add_row(name, r["state"] or "-", _num(r["availability_today"], "{:.4%}"),
                          _num(r["availability"], "{:.4%}"), " > ".join(r["chain"]))
        console.print(table)
    if "error" in report["health"]:
        console.print(f"[yellow]{report['health']['error']}[/yellow]")


async def health_report(url: str, *, timeout: float = 3.0) -> dict[str, Any] | None:
    """The health monitor's picture, or None if none is running."""
    nc = await client._connect(url)
    try:
        msg = await nc.request(subjects.HEALTH_REPORT, b"{}", timeout=timeout)
    except (NoRespondersError, NatsTimeout):
        return None
    finally:
        await nc.close()
    return json.loads(msg.data)


def _providers(settings: Settings, health: dict[str, Any] | None) -> dict[str, Any]:
    config = load_config(settings.config)
    simulated = set(config.simulated(os.environ))
    vendors = asyncio.run(client.simulator_vendors(settings.simulator_url)) or {}
    out = {}
    for name in config.providers:
        v = vendors.get(name) if name in simulated else None
        h = (health or {}).get("providers", {}).get(name) or {}
        today = (h.get("uptime") or [{}])[0]
        out[name] = {
            "state": h.get("state"), "reason": h.get("reason", ""), "since": h.get("since"),
            "p95_ms": h.get("p95_ms"), "error_rate": h.get("error_rate"),
            "uptime_today": today.get("availability"),
            "today": {k: today.get(k) for k in ("up_s", "degraded_s", "down_s")} if today else None,
            "probe_spend_usd": (h.get("probe") or {}).get("spend_usd"),
            "simulated": name in simulated, "mode": v and v["mode"],
            "requests": v and v["requests"]["total"],
        }
    return out


def _route(r: dict[str, Any]) -> dict[str, Any]:
    return {"chain": r["chain"], "state": r["state"], "availability_today": r["availability_today"],
            "availability": r["availability"],
            "today": {k: r["uptime"][0][k] for k in ("up_s", "degraded_s", "down_s")}}


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def register(app: typer.Typer) -> None:
    app.command()(status)
