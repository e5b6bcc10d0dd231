"""End-to-end: our services as separate processes, exactly as `lifeline up` runs them."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from services.cli.mesh import Mesh
from services.runtime.natsd import NatsServer, free_port

REPO = Path(__file__).parents[2]


def write_config(path: Path, *, attempt_timeout_ms: int = 1000, deadline_ms: int = 8000,
                 **provider_overrides: dict) -> Path:
    """The shipped lifeline.yaml with test timeouts and, per provider, overridden fields."""
    data = yaml.safe_load((REPO / "lifeline.yaml").read_text())
    data["routes"]["chat"].update(attempt_timeout_ms=attempt_timeout_ms, deadline_ms=deadline_ms)
    for name, fields in provider_overrides.items():
        data["providers"][name].update(fields)
    data["tiers"]["faq_file"] = str(REPO / "faq.yaml")  # the shipped one, wherever this is written
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def mesh(nats_server: NatsServer, tmp_path: Path) -> Iterator[Mesh]:
    mesh = Mesh(nats_url=nats_server.url, home=tmp_path / "home", simulator_port=free_port(),
                gateway_port=free_port(), status_port=free_port(),
                env={"LIFELINE_LOG_LEVEL": "WARNING"})
    yield mesh
    mesh.stop_all()
