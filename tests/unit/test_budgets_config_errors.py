"""The `budgets` section of lifeline.yaml: mistakes are named with their line and field."""

from pathlib import Path

import pytest
import yaml

from services.runtime.config import ConfigError, parse_config

SHIPPED = yaml.safe_load((Path(__file__).parents[2] / "lifeline.yaml").read_text())


def config_with(budgets: dict) -> str:
    return yaml.safe_dump({**SHIPPED, "budgets": budgets}, sort_keys=False)


def test_the_shipped_file_loads_without_any_budget_to_enforce():
    config = parse_config(config_with(SHIPPED["budgets"]))
    assert config.budgets.enforced is False  # routers make no round trip to the cost guard


@pytest.mark.parametrize(("budgets", "says"), [
    ({"spend": [{"scope": "user", "limit_usd": 1, "action": "downgrade", "routes": ["chta"]}]},
     "budgets.spend.0.routes: unknown route 'chta' (known: "),
    ({"spend": [{"scope": "team", "limit_usd": 1, "action": "killswitch"}]},
     "action `killswitch` needs scope global or key"),
    ({"spend": [{"scope": "global", "limit_usd": 0}]}, "budgets.spend.0.limit_usd"),
    ({"spend": [{"scope": "global", "id": "x", "limit_usd": 1}]}, "a global budget has no id"),
    ({"spend": [{"scope": "user", "limit_usd": 1}, {"scope": "user", "limit_usd": 2}]},
     "two budgets for user:*:day"),
    ({"rate_limits": {"overrides": {"alice": {"requests_per_minute": 5}}}},
     "override 'alice' must be named user:<id> or key:<id>"),
    ({"spend": [{"scope": "user", "limit_usd": 1, "period": "week"}]}, "budgets.spend.0.period"),
])
def test_a_wrong_budget_is_named(budgets: dict, says: str):
    with pytest.raises(ConfigError) as e:
        parse_config(config_with(budgets), source="lifeline.yaml")
    assert says in str(e.value)
    assert str(e.value).startswith("lifeline.yaml:")


def test_a_downgrade_to_a_route_without_a_cheaper_chain_is_named():
    routes = {**SHIPPED["routes"], "plain": {"chain": ["openai/gpt-4o-mini"]}}
    text = yaml.safe_dump({**SHIPPED, "routes": routes, "budgets": {"spend": [
        {"scope": "team", "limit_usd": 5, "action": "downgrade", "routes": ["plain"]}]}})
    with pytest.raises(ConfigError) as e:
        parse_config(text, source="lifeline.yaml")
    assert "budgets.spend.0.routes: route 'plain' has no downgrade_chain to go to" in str(e.value)
