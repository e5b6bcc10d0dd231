"""Budget levels, restoration and what they set in motion (services/cost_guard/levels.py)."""

import json
from datetime import UTC, datetime

from services.cost_guard.levels import (
    EXCEEDED, OK, WARNING, Crossing, State, crossing_effects, restoration_effects, restorations,
)
from services.cost_guard.policy import Applied, Policy
from services.runtime.config import load_config
from services.runtime.config.budgets import BudgetsConfig, SpendBudget
from tests.fixtures.cost_guard import priced_config

NOW = datetime(2026, 3, 14, 15, 0, tzinfo=UTC)
TODAY = int(datetime(2026, 3, 14, tzinfo=UTC).timestamp())
YESTERDAY = int(datetime(2026, 3, 13, tzinfo=UTC).timestamp())


def test_a_new_period_restores_an_exceeded_budget_and_quietly_resets_a_warning():
    p = Policy(BudgetsConfig.model_validate({"spend": [
        {"scope": "global", "period": "day", "limit_usd": 1.0},
        {"scope": "user", "period": "day", "limit_usd": 1.0}]}))
    states = [State("global:*:day", YESTERDAY, EXCEEDED, 1.0),
              State("user:bob:day", YESTERDAY, WARNING, 1.0),
              State("user:eve:day", TODAY, EXCEEDED, 1.0)]
    found = restorations(states, p, {"user:eve:day": 1.2}, NOW)
    assert [(r.state.instance, r.level, r.reason, r.period_start) for r in found] == [
        ("global:*:day", OK, "new_period", TODAY), ("user:bob:day", OK, "new_period", TODAY)]
    config = load_config("lifeline.yaml")
    assert [e.target for e in restoration_effects(found[0], config, "t", [])] == ["budget.restored"]
    assert restoration_effects(found[1], config, "t", []) == []  # a warning has nothing to restore


def test_raising_the_limit_above_the_spend_restores_it():
    before = Policy(BudgetsConfig.model_validate(
        {"spend": [{"scope": "user", "period": "day", "limit_usd": 1.0}]}))
    raised = Policy(before.config, [SpendBudget(scope="user", id="eve", period="day", limit_usd=5.0)])
    state = State("user:eve:day", TODAY, EXCEEDED, 1.0)
    assert restorations([state], before, {"user:eve:day": 1.2}, NOW) == []
    [r] = restorations([state], raised, {"user:eve:day": 1.2}, NOW)
    assert (r.reason, r.level) == ("limit_raised", OK)
    # raised, but not above what is spent: still exceeded
    short = Policy(before.config, [SpendBudget(scope="user", id="eve", period="day", limit_usd=1.1)])
    assert restorations([state], short, {"user:eve:day": 1.2}, NOW) == []


def test_a_downgrade_budget_sets_each_route_with_a_cheaper_chain_and_lifts_it_when_restored():
    config = priced_config(downgrade_chain=["anthropic/claude-haiku-4-5"])
    budget = SpendBudget(scope="global", period="day", limit_usd=0.05, action="downgrade")
    crossing = Crossing(Applied(budget, "*"), TODAY, EXCEEDED, 0.06, 0.05)
    effects = crossing_effects(crossing, config, "cost-guard/1")
    assert [(e.kind, e.target) for e in effects] == [("event", "budget.exceeded"),
                                                     ("engage", "downgrade.chat")]
    event = json.loads(effects[0].payload)
    assert (event["scope"], event["scope_id"], event["period"], event["limit_usd"],
            event["action"]) == ("global", "*", "day", 0.05, "downgrade")
    assert effects[0].msg_id == f"budget.exceeded.global:*:day.{TODAY}"  # same id on every instance
    assert json.loads(effects[1].payload)["active"] is True

    [r] = restorations([State("global:*:day", YESTERDAY, EXCEEDED, 0.05)],
                       Policy(BudgetsConfig(spend=[budget])), {}, NOW)
    lifted = restoration_effects(r, config, "cost-guard/1", still_exceeded=[])
    assert [(e.kind, e.target) for e in lifted] == [("event", "budget.restored"),
                                                    ("release", "downgrade.chat")]
    # the month's budget still holds the downgrade: the day's restoration does not lift it
    month = Applied(SpendBudget(scope="global", period="month", limit_usd=1, action="downgrade"), "*")
    kept = restoration_effects(r, config, "cost-guard/1", still_exceeded=[month])
    assert [e.kind for e in kept] == ["event"]


def test_a_key_budget_with_the_killswitch_action_stops_that_key_only():
    budget = SpendBudget(scope="key", period="day", limit_usd=1, action="killswitch")
    effects = crossing_effects(Crossing(Applied(budget, "k7"), TODAY, EXCEEDED, 1.0, 1.0),
                               load_config("lifeline.yaml"), "cost-guard/1")
    assert [(e.kind, e.target) for e in effects][1] == ("engage", "killswitch.key.k7")
    switch = json.loads(effects[1].payload)
    assert (switch["engaged"], switch["scope"], switch["actor"]) == (True, "key:k7",
                                                                     "cost-guard:budget")
