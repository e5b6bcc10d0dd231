"""One mesh for the drill tests of this folder (package scope): the scenarios, then the runbooks'
commands, share it. Each scenario leaves it healthy; the one that kills a router restarts it."""

from collections.abc import Iterator

import pytest

from services.runtime.natsd import NatsServer
from tests.e2e.drills.drill_mesh import ADMIN_TOKEN, DrillMesh, drill_config, start_mesh


@pytest.fixture(scope="package")
def drills(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DrillMesh]:
    root = tmp_path_factory.mktemp("drills")
    server = NatsServer(root / "nats").start()
    config = drill_config(root / "lifeline.yaml")
    try:
        mesh = start_mesh(server.url, root / "home", config, services=(
            "health-monitor", "cost-guard", "conversation-store", "notifier", "backup-agent"),
            env={"LIFELINE_ADMIN_TOKEN": ADMIN_TOKEN})
        try:
            yield DrillMesh(mesh, config, root / "reports")
        finally:
            mesh.stop_all()
    finally:
        server.stop()
