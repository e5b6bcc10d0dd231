"""Run the simulator on a socket: used by `python -m services.simulator` and by tests of any service."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from services.simulator.keys import VENDORS


@dataclass(frozen=True)
class RunningSimulator:
    url: str  # http://HOST:PORT
    app: web.Application

    def base_url(self, vendor: str) -> str:
        """What an SDK takes as base_url: openai format includes /v1, anthropic's SDK appends it."""
        fmt = self.app[VENDORS][vendor].format
        return f"{self.url}/{vendor}/v1" if fmt == "openai" else f"{self.url}/{vendor}"


@asynccontextmanager
async def running(app: web.Application, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[RunningSimulator]:
    """Serve `app` until the block ends; port 0 picks a free port (read it from `.url`)."""
    # No access log: the simulator is a benchmark target, and a log line per request costs.
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        shown = f"[{host}]" if ":" in host else host
        yield RunningSimulator(url=f"http://{shown}:{bound}", app=app)
    finally:
        await runner.cleanup()
