"""The `lifeline` command: what on-call engineers use."""

import os
import signal
from typing import Annotated

import typer

from services.runtime.config import ConfigError, load_config
from services.runtime.settings import Settings

from . import backups, client, conversations, costs, db, drills, incidents, keys, queue, status
from .common import JsonFlag, console, print_json, run
from .up import up as up_command

app = typer.Typer(help="Lifeline: keep AI features answering when providers fail.",
                  no_args_is_help=True, pretty_exceptions_enable=False)


app.command("up", help="Start the whole mesh (bus, simulator, every service); Ctrl-C stops it.")(
    up_command)
# Each area's verbs live in their own module, registered here.
for module in (status, costs, conversations, backups, queue, drills, keys, incidents, db):
    module.register(app)


@app.command()
def ask(
    text: str,
    route: Annotated[str, typer.Option(help="Logical model name (a route in lifeline.yaml).")] = "chat",
    user: Annotated[str | None, typer.Option(help="User id, for budgets and history.")] = None,
    session: Annotated[str | None, typer.Option(help="Session id, for history.")] = None,
    queue: Annotated[bool, typer.Option("--queue", help="Allow parking the request if no provider can answer.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 30.0,
    as_json: JsonFlag = False,
) -> None:
    """Ask one question through the router, as an application would."""
    request = {"route": route, "messages": [{"role": "user", "content": text}],
               "user_id": user, "session_id": session, "allow_queue": queue}
    result = run(client.ask(Settings().nats_url, request, timeout=timeout))
    if as_json:
        print_json(result)
    elif result["status"] == "ok":
        # An answer is the model's text: never read it as rich markup ("[openai/...]" vanished).
        console.print(result["content"], markup=False, highlight=False)
        by = result.get("answered_by") or (f"{result['provider']}/{result['model']} · "
                                           f"fallback depth {result['fallback_depth']}")
        console.print(f"[dim]tier {result['tier']} · {by} · {result['latency_ms']:.0f} ms · "
                      f"${result['cost_usd']:.6f}[/dim]")
    elif result["status"] == "queued":
        console.print(result["content"], markup=False, highlight=False)
        console.print(f"[dim]queued: the answer will be on llm.result.{result['ticket']} "
                      f"(lifeline queue result {result['ticket']})[/dim]")
    else:
        console.print(f"{result['status']}: {result.get('error')}", style="red", markup=False,
                      highlight=False)
    if result["status"] == "error":
        raise typer.Exit(1)


@app.command()
def chaos(
    provider: str,
    mode: Annotated[str, typer.Argument(help="ok | down | refuse | slow | ratelimit | flaky | garbage | cut | wrong (200, wrong content)")],
    latency_ms: Annotated[int | None, typer.Option(help="Added latency for `slow`.")] = None,
    error_rate: Annotated[float | None, typer.Option(help="Fraction of 500s for `flaky`.")] = None,
    for_s: Annotated[float | None, typer.Option("--for", help="Revert to ok after this many seconds.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Inject a fault into a simulated provider."""
    settings = Settings()
    try:
        config = load_config(settings.config)
    except ConfigError as e:
        console.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    if provider not in config.providers:
        console.print(f"[red]error:[/red] unknown provider {provider!r} "
                      f"(known: {', '.join(config.providers)})", highlight=False)
        raise typer.Exit(2)
    if provider not in config.simulated(os.environ):
        console.print(f"[red]error:[/red] {provider} uses a real key, not the simulator; "
                      "chaos only breaks simulated providers", highlight=False)
        raise typer.Exit(2)
    body = {"mode": mode, "latency_ms": latency_ms, "error_rate": error_rate, "for_s": for_s}
    state = run(client.set_chaos(settings.simulator_url, provider,
                                  {k: v for k, v in body.items() if v is not None}))
    if as_json:
        print_json(state)
    else:
        console.print(f"{provider}: {state['mode']}"
                      + (f" for {for_s:g}s" if for_s else ""), highlight=False)


def main() -> None:
    # A broken pipe (lifeline status | head) is not an error worth a traceback.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    app()
