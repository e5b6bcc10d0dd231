"""In-process mesh parts on a real bus: the vendor simulator on a real socket, router instances."""

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path

import aiohttp
import anthropic
import openai
import pytest

from services.providers.base import Provider
from services.router.app import build_app as build_router
from services.router.settings import RouterSettings
from services.runtime.config import LifelineConfig, load_config
from services.runtime.natsd import NatsServer
from services.runtime.service import Service
from services.simulator.app import build_app as build_simulator
from services.simulator.server import RunningSimulator, running
from tests.fixtures.running import running as running_services

SHIPPED_CONFIG = Path(__file__).parents[2] / "lifeline.yaml"


def fast_config(attempt_timeout_ms: int = 400, deadline_ms: int = 3000, **route: object) -> LifelineConfig:
    """The shipped lifeline.yaml with timeouts short enough for tests (and `route` settings of
    the `chat` route changed)."""
    config = load_config(SHIPPED_CONFIG)
    chat = config.routes["chat"].model_copy(
        update={"attempt_timeout_ms": attempt_timeout_ms, "deadline_ms": deadline_ms, **route})
    return config.model_copy(update={"routes": {**config.routes, "chat": chat}})


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    """The vendor simulator on a free port (a test file may override it, e.g. with a clock)."""
    async with running(build_simulator()) as running_sim:
        yield running_sim


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def oai(sim: RunningSimulator) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official OpenAI SDK pointed at the simulator: proof of the real wire format."""
    async with openai.AsyncOpenAI(base_url=sim.base_url("openai"), api_key="x", max_retries=0) as client:
        yield client


@pytest.fixture
async def claude(sim: RunningSimulator) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=sim.base_url("anthropic"), api_key="x", max_retries=0) as client:
        yield client


async def set_mode(sim: RunningSimulator, vendor: str, mode: str, **settings: object) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.put(f"{sim.url}/_sim/vendors/{vendor}", json={"mode": mode, **settings}) as r:
            assert r.status == 200, await r.text()


async def requests_served(sim: RunningSimulator, vendor: str) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{sim.url}/_sim/vendors/{vendor}") as r:
            return (await r.json())["requests"]["total"]


StartRouter = Callable[..., Awaitable[Service]]


@pytest.fixture
async def start_router(
    nats_server: NatsServer, sim: RunningSimulator
) -> AsyncIterator[StartRouter]:
    """Start router instances (stopped at teardown if the test did not stop them)."""
    async with running_services() as started:
        async def start(instance: str = "router-1", config: LifelineConfig | None = None,
                        providers: Mapping[str, Provider] | None = None, **settings: object) -> Service:
            service = build_router(
                RouterSettings(nats_url=nats_server.url, simulator_url=sim.url,
                               instance=instance, heartbeat_interval=0.2, **settings),
                config=config or fast_config(), providers=providers,
            )
            return await started.start(service)

        yield start
