"""Every scenario `lifeline drill` runs, by name (the names of services/runtime/config/drills.py)."""

from types import MappingProxyType

from services.runtime.config.drills import SCENARIOS as NAMES

from .base import Outcome, Scenario
from .data import DataLoss
from .killswitch import KillSwitch
from .load import LoadSpike
from .processes import BusNodeLoss, ServiceCrash
from .providers import LatencySpike, ProviderOutage, QualityDrop, RateLimitStorm
from .queue import AllProvidersDown
from .region import RegionOutage

SCENARIOS: MappingProxyType[str, type[Scenario]] = MappingProxyType({s.name: s for s in (
    ProviderOutage, RateLimitStorm, LatencySpike, QualityDrop, RegionOutage, AllProvidersDown,
    LoadSpike, DataLoss, BusNodeLoss, ServiceCrash, KillSwitch,
)})
assert tuple(SCENARIOS) == NAMES, "the config's scenario names and the scenarios must agree"

__all__ = ["SCENARIOS", "Outcome", "Scenario"]
