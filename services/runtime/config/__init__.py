"""lifeline.yaml: routing policy, validated on load with errors that name the line and the field.

One module per section (each service owns its own); this module holds the root and the loader.
"""

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from services.providers.base import ProviderSpec

from ._base import Strict
from .backup import BackupConfig
from .budgets import BudgetsConfig
from .drills import DrillsConfig
from .gateway import GatewayConfig
from .health import HealthConfig
from .notifier import NotifierConfig
from .routing import (
    BreakerSettings, ModelConfig, ProviderConfig, RouteConfig, SimulatorConfig,
)
from .store import StoreConfig
from .tiers import TiersConfig

__all__ = [
    "BackupConfig", "BreakerSettings", "BudgetsConfig", "ConfigError", "DrillsConfig",
    "GatewayConfig", "HealthConfig", "LifelineConfig", "ModelConfig", "NotifierConfig",
    "ProviderConfig", "RouteConfig", "SimulatorConfig", "StoreConfig", "TiersConfig",
    "load_config", "parse_config",
]


class LifelineConfig(Strict):
    providers: dict[str, ProviderConfig] = Field(min_length=1)
    routes: dict[str, RouteConfig] = Field(min_length=1)
    tiers: TiersConfig = TiersConfig()
    breaker: BreakerSettings = BreakerSettings()
    simulator: SimulatorConfig = SimulatorConfig()
    health: HealthConfig = HealthConfig()
    budgets: BudgetsConfig = BudgetsConfig()
    store: StoreConfig = StoreConfig()
    backup: BackupConfig = BackupConfig()
    notifier: NotifierConfig = NotifierConfig()
    gateway: GatewayConfig = GatewayConfig()
    drills: DrillsConfig = DrillsConfig()

    @model_validator(mode="after")
    def _chains_name_known_models(self) -> "LifelineConfig":
        for route_name, route in self.routes.items():
            for where, member in route.chains():  # chain, downgrade_chain, every rule's chain
                provider, model = member.split("/", 1)
                if provider not in self.providers:
                    raise _LocatedError(
                        ("routes", route_name, *where),
                        f"unknown provider {provider!r} (known: {', '.join(self.providers)})",
                    )
                if model not in self.providers[provider].models:
                    known = ", ".join(self.providers[provider].models)
                    raise _LocatedError(
                        ("routes", route_name, *where),
                        f"provider {provider!r} has no model {model!r} (known: {known})",
                    )
        for i, budget in enumerate(self.budgets.spend):
            for route_name in budget.routes or []:
                route = self.routes.get(route_name)
                if route is None:
                    raise _LocatedError(("budgets", "spend", i, "routes"),
                                        f"unknown route {route_name!r} (known: {', '.join(self.routes)})")
                if budget.action == "downgrade" and route.downgrade_chain is None:
                    raise _LocatedError(("budgets", "spend", i, "routes"),
                                        f"route {route_name!r} has no downgrade_chain to go to")
        return self

    def provider_specs(
        self, env: dict[str, str] | os._Environ[str], simulator_url: str
    ) -> dict[str, ProviderSpec]:
        return {
            name: _spec(name, p, env, simulator_url if self.simulator.enabled else None)
            for name, p in self.providers.items()
        }

    def simulated(self, env: dict[str, str] | os._Environ[str]) -> list[str]:
        return [n for n, p in self.providers.items() if _is_simulated(p, env, self.simulator)]


def _is_simulated(p: ProviderConfig, env: Any, sim: SimulatorConfig) -> bool:
    return sim.enabled and p.api_key_env is not None and not env.get(p.api_key_env)


def _spec(name: str, p: ProviderConfig, env: Any, simulator_url: str | None) -> ProviderSpec:
    key = env.get(p.api_key_env) if p.api_key_env else None
    if simulator_url and p.api_key_env and not key:
        root = f"{simulator_url.rstrip('/')}/{name}"
        base_url = root if p.kind == "anthropic" else f"{root}/v1"
        return ProviderSpec(name=name, kind=p.kind, base_url=base_url, api_key="simulated",
                            max_connections=p.max_connections)
    return ProviderSpec(name=name, kind=p.kind, base_url=p.base_url, api_key=key,
                        max_connections=p.max_connections)


class ConfigError(Exception):
    """Every problem in the file, each as `path:line: field: message`."""


class _LocatedError(ValueError):
    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def load_config(path: Path | str) -> LifelineConfig:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the configuration: {e.strerror}") from None
    return parse_config(text, source=str(path))


def parse_config(text: str, *, source: str = "lifeline.yaml") -> LifelineConfig:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ConfigError(f"{where}: not valid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: the file must be a mapping with providers and routes")
    try:
        return LifelineConfig.model_validate(data)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            located = (err.get("ctx") or {}).get("error")
            loc = located.loc if isinstance(located, _LocatedError) else tuple(err["loc"])
            msg = located.message if isinstance(located, _LocatedError) else err["msg"]
            field = ".".join(str(p) for p in loc) or "(top level)"
            lines.append(f"{source}:{_line_of(root, loc)}: {field}: {msg}")
        raise ConfigError("\n".join(lines)) from None


def _line_of(node: yaml.Node | None, loc: tuple[str | int, ...]) -> int:
    """The 1-based line of the deepest YAML node that `loc` reaches."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if k.value == str(part)]
            if not match:
                break
            key, node = match[0]
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
