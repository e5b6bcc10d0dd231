"""/healthz (the process is alive) and /readyz (it can do its work now) for every service."""

from collections.abc import Callable

from aiohttp import web

ReadinessCheck = Callable[[], str | None]  # None when ready, else the reason it is not


class HealthServer:
    def __init__(self, service: str, *, host: str, port: int) -> None:
        self.service = service
        self.host = host
        self.port = port
        self.checks: list[ReadinessCheck] = []
        self._runner: web.AppRunner | None = None

    def add_check(self, check: ReadinessCheck) -> None:
        self.checks.append(check)

    def not_ready(self) -> list[str]:
        return [reason for check in self.checks if (reason := check()) is not None]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self, extra_routes: list[web.RouteDef] = ()) -> None:  # type: ignore[assignment]
        app = web.Application()
        app.add_routes([web.get("/healthz", self._healthz), web.get("/readyz", self._readyz)])
        app.add_routes(extra_routes)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]  # the real port when 0 was asked for

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "service": self.service})

    async def _readyz(self, _: web.Request) -> web.Response:
        reasons = self.not_ready()
        body = {"status": "ready" if not reasons else "not_ready", "service": self.service,
                "reasons": reasons}
        return web.json_response(body, status=200 if not reasons else 503)
