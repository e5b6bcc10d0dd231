"""The gateway's edge: the HTTP server, the key table and its KV watch, wiring and lifespan."""

import asyncio
import logging

from aiohttp import web
from faststream.nats import NatsRouter
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.keys import ApiKey
from schemas.streams import API_KEYS
from services.runtime.bus import watch_bucket
from services.runtime.config import LifelineConfig, load_config
from services.runtime.db import make_engine, migrate
from services.runtime.service import Service

from .bus import BusClient
from .handlers import Gateway, web_app
from .keys import Keyring
from .metrics import GatewayMetrics
from .settings import GatewaySettings
from .store import KeyStore
from .tracing import traced

log = logging.getLogger(__name__)


def build_app(settings: GatewaySettings, *, config: LifelineConfig | None = None) -> Service:
    config = config or load_config(settings.config)
    service = Service("gateway", settings, NatsRouter())
    keyring = Keyring()
    bus = BusClient(lambda: service.broker.connection)
    gateway = Gateway(config, bus, keyring, GatewayMetrics(service.metrics))
    service.in_flight = lambda: gateway.in_flight
    service.health.add_check(lambda: None if keyring.loaded else "API keys not loaded yet")
    tasks: list[asyncio.Task[None]] = []
    held: dict[str, object] = {}  # this instance's engine, runner and site, for the stop

    def on_key(key_id: str, value: bytes | None) -> None:
        if value is None:
            return  # keys are revoked, never deleted: a deleted entry changes nothing
        try:
            keyring.apply(ApiKey.model_validate_json(value))
        except ValidationError as e:  # a bad value must not stop the watch
            log.error("ignoring api-keys/%s: %s", key_id, e)

    async def reread(store: KeyStore) -> None:
        """The safety net under the KV watch: a change announced while the bus was away."""
        while True:
            await asyncio.sleep(config.gateway.key_refresh_s)
            try:
                keyring.apply_all(await store.all())
            except (SQLAlchemyError, OSError) as e:
                log.warning("rereading API keys failed (the KV watch still applies): %r", e)

    async def stop_intake() -> None:
        await service.intake_closed.wait()
        gateway.stopping = True  # a keep-alive connection's next request gets a 503
        site = held.get("site")
        if isinstance(site, web.TCPSite):
            await site.stop()  # no new connections; in-flight requests finish

    async def start() -> None:
        engine = make_engine(settings.db_url)
        held["engine"] = engine
        await migrate(engine)
        store = KeyStore(engine)
        keyring.apply_all(await store.all())
        await bus.start()
        js = service.broker.config.connection_state.stream
        tasks.append(asyncio.create_task(watch_bucket(js, API_KEYS.name, on_key)))
        tasks.append(asyncio.create_task(reread(store)))
        tasks.append(asyncio.create_task(stop_intake()))
        app = web_app(gateway)
        app.middlewares.insert(0, traced(service.tracer_provider.get_tracer("lifeline.gateway")))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.gateway_host, settings.gateway_port)
        await site.start()
        held.update(runner=runner, site=site)
        log.info("gateway listening on http://%s:%d (keys required: %s, %d keys)",
                 settings.gateway_host, settings.gateway_port, config.gateway.require_keys, len(keyring))

    async def stop() -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        runner = held.get("runner")
        if isinstance(runner, web.AppRunner):
            await runner.cleanup()
        engine = held.get("engine")
        if isinstance(engine, AsyncEngine):
            await engine.dispose()

    service.on_start(start)
    service.on_stop(stop)
    return service
