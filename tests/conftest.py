"""Real parts for tests: each test gets its own nats-server (free port, temp store dir)."""

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest

from services.runtime.natsd import NatsServer

PG_URL = os.environ.get("LIFELINE_TEST_PG_URL")


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats").start()
    yield server
    server.stop()


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[nats.NATS]:
    client = await nats.connect(nats_server.url)
    yield client
    await client.close()
