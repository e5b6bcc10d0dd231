"""`lifeline up`: the whole mesh on this machine, on embedded defaults."""

import os
import signal
import threading
from typing import Annotated

import typer
from rich.console import Console

from services.runtime.config import ConfigError, load_config
from services.runtime.natsd import NatsServer, is_reachable
from services.runtime.settings import Settings

from .mesh import SERVICES, Mesh

console = Console()


def up(
    routers: Annotated[int, typer.Option(help="Router instances to run.")] = 1,
) -> None:
    settings = Settings()
    try:
        config = load_config(settings.config)
    except ConfigError as e:
        console.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    nats_url, embedded = settings.nats_url, None
    if not is_reachable(nats_url):
        port = int(nats_url.rsplit(":", 1)[-1])
        embedded = NatsServer(settings.home / "nats", port=port).start()
        nats_url = embedded.url
    mesh = Mesh(nats_url=nats_url, home=settings.home, simulator_port=settings.simulator_port,
                gateway_port=settings.gateway_port, status_port=settings.status_port,
                db_url=settings.db_url)
    try:
        mesh.start_simulator()
        for name in SERVICES:
            count = routers if name == "router" else 1
            for i in range(count):
                mesh.start_service(name, instance=name if count == 1 else f"{name}-{i + 1}")
        mesh.wait_ready()
        _announce(mesh, config.simulated(os.environ), embedded is not None)
        stop.wait()
        console.print("stopping: services finish their in-flight work first ...")
    except (RuntimeError, TimeoutError) as e:
        console.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        codes = mesh.stop_all()
        if embedded:
            embedded.stop()
        if stop.is_set():
            bad = {n: c for n, c in codes.items() if c not in (0, -signal.SIGTERM)}
            console.print("stopped." if not bad else f"stopped; exit codes {bad}")


def _announce(mesh: Mesh, simulated: list[str], embedded: bool) -> None:
    where = f"embedded nats-server, data in {mesh.home / 'nats'}" if embedded else "existing server"
    console.print("[bold green]Lifeline is up.[/bold green]")
    console.print(f"  {'bus':<18} {mesh.nats_url} ({where})", highlight=False)
    console.print(f"  {'simulator':<18} {mesh.simulator_url} (stands in for: "
                  f"{', '.join(simulated) or 'nothing: every provider has a key'})", highlight=False)
    for name, child in mesh.children.items():
        if name != "simulator":
            console.print(f"  {name:<18} {child.health_url}/readyz (pid {child.proc.pid})",
                          highlight=False)
    console.print('Try: .venv/bin/lifeline ask "What is your refund policy?"   Ctrl-C stops all.',
                  highlight=False)
