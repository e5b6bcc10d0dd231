"""Drill targets: every scenario has one, no worse than the objectives we promise, each replaceable
per scenario in lifeline.yaml; mistakes name the line and the field."""

from pathlib import Path

import pytest
import yaml

from services.drills.scenarios import SCENARIOS
from services.runtime.config import ConfigError, load_config, parse_config

SHIPPED = Path(__file__).parents[2] / "lifeline.yaml"


def with_drills(block: object) -> str:
    data = yaml.safe_load(SHIPPED.read_text())
    data["drills"] = block
    return yaml.safe_dump(data, sort_keys=False)


def test_every_scenario_has_a_target_no_worse_than_the_objectives():
    config = load_config(SHIPPED)
    drills = config.drills
    assert set(SCENARIOS) == {"provider-outage", "rate-limit-storm", "latency-spike", "quality-drop",
                              "region-outage", "all-providers-down", "load-spike", "data-loss",
                              "bus-node-loss", "service-crash", "killswitch"}
    for name in SCENARIOS:
        target = drills.target(name)
        if name == "data-loss":  # conversation history: RTO 5 min, RPO 1 min
            assert target.rto_s is not None and target.rto_s <= 300
            assert target.rpo_s is not None and target.rpo_s <= 60
        elif name == "quality-drop":
            # Wrong answers with status 200 are "unclear until detected": only the quality
            # canaries see them, so the bound is two canary intervals, not the routing 30 s.
            assert target.rto_s is not None and target.rto_s <= 2 * config.health.canary.interval_s
            assert target.rpo_s == 0
        else:  # API routing: RTO 30 s, RPO 0
            assert target.rto_s is not None and target.rto_s <= 30, name
            assert target.rpo_s == 0, name
        assert target.errors is not None, name
    assert drills.target("killswitch").max == {"engage_s": 1.0}
    assert drills.target("load-spike").max == {"overshoot_usd": 0.0}


def test_an_empty_block_gives_the_defaults_and_a_scenario_entry_replaces_only_its_fields():
    assert parse_config(with_drills({})).drills.target("provider-outage").rto_s == 30
    drills = parse_config(with_drills({"targets": {"provider-outage": {"rto_s": 10, "rpo_s": None},
                                                   "killswitch": {"max": None}}})).drills
    target = drills.target("provider-outage")
    assert (target.rto_s, target.rpo_s, target.errors) == (10, None, 0)
    assert drills.target("killswitch").max == {}
    assert drills.target("latency-spike").rto_s == 30


@pytest.mark.parametrize("block, where", [
    ({"targets": {"provider-outtage": {}}}, "drills.targets.provider-outtage"),
    ({"targets": {"provider-outage": {"rto": 5}}}, "drills.targets.provider-outage.rto"),
    ({"targets": {"data-loss": {"rpo_s": -1}}}, "drills.targets.data-loss.rpo_s"),
    ({"traffic": {"rate": 0}}, "drills.traffic.rate"),
])
def test_mistakes_name_the_line_and_field(block, where):
    with pytest.raises(ConfigError) as e:
        parse_config(with_drills(block), source="lifeline.yaml")
    assert where in str(e.value)
    assert str(e.value).startswith("lifeline.yaml:")
