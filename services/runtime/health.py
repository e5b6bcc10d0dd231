"""/healthz (the process is alive), /readyz (it can do its work now) and /metrics (Prometheus
text format) for every service."""

from collections.abc import Callable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, ProcessCollector, generate_latest,
)

ReadinessCheck = Callable[[], str | None]  # None when ready, else the reason it is not


class HealthServer:
    def __init__(self, service: str, *, host: str, port: int) -> None:
        self.service = service
        self.host = host
        self.port = port
        self.checks: list[ReadinessCheck] = []
        # This service's own metrics; never the process-global default registry, so two
        # services in one process (tests) do not collide.
        self.metrics = CollectorRegistry()
        # The process (CPU, memory, open files: process_*), and whether /readyz would say ready,
        # so one query counts the ready instances of each service.
        ProcessCollector(registry=self.metrics)
        Gauge("lifeline_service_ready", "1 while this instance's /readyz says ready, else 0",
              ["service"], registry=self.metrics).labels(service).set_function(
            lambda: 0.0 if self.not_ready() else 1.0)
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
        app.add_routes([web.get("/healthz", self._healthz), web.get("/readyz", self._readyz),
                        web.get("/metrics", self._metrics)])
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

    async def _metrics(self, _: web.Request) -> web.Response:
        body = generate_latest(self.metrics)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "service": self.service})

    async def _readyz(self, _: web.Request) -> web.Response:
        reasons = self.not_ready()
        body = {"status": "ready" if not reasons else "not_ready", "service": self.service,
                "reasons": reasons}
        return web.json_response(body, status=200 if not reasons else 503)
