"""What each status event means (pure): statuses, fallbacks named, the kill switch, tiers."""

from pathlib import Path

from schemas import events as ev
from services.notifier.components import fallbacks, page_indicator, status_of
from services.notifier.signals import Known, killswitch_engaged, provider_degraded, provider_down, provider_up, service_down, service_up, tier_changed
from services.runtime.config import load_config, parse_config

CONFIG = load_config(Path(__file__).parents[2] / "lifeline.yaml")


def known(**details) -> Known:
    return Known(CONFIG, details)


def test_provider_down_names_where_each_route_fails_over_to():
    fx = provider_down(ev.ProviderDown(provider="openai", reason="503"), known())
    assert fx.signal.title == "Provider openai outage — traffic failing over to anthropic"
    assert "Route chat: failing over to anthropic/claude-haiku-4-5." in fx.signal.body
    assert fx.signal.impact == "major"
    [change] = fx.changes
    assert status_of("provider", change.detail) == "major_outage"


def test_the_last_member_down_strands_the_route_and_is_critical():
    fx = provider_down(ev.ProviderDown(provider="local", reason="503"), known())
    assert fx.signal.title == "Provider local outage — route chat has no fallback"
    assert fx.signal.impact == "critical"


def test_fallbacks_skip_other_models_of_the_same_provider():
    config = parse_config("""
providers:
  a: {kind: openai, base_url: http://a, models: {m1: {input_per_mtok: 1, output_per_mtok: 1}, m2: {input_per_mtok: 1, output_per_mtok: 1}}}
  b: {kind: openai, base_url: http://b, models: {m: {input_per_mtok: 1, output_per_mtok: 1}}}
routes:
  x: {chain: [a/m1, a/m2, b/m]}
  y: {chain: [b/m]}
""")
    assert fallbacks(config, "a") == {"x": "b/m"}
    assert fallbacks(config, "b") == {"x": None, "y": None}


def test_one_model_down_is_a_partial_outage_and_its_recovery_clears_it():
    fx = provider_down(ev.ProviderDown(provider="openai", model="gpt-4o", reason="404"), known())
    [change] = fx.changes
    assert status_of("provider", change.detail) == "partial_outage"
    back = provider_up(ev.ProviderUp(provider="openai", model="gpt-4o", reason="ok"),
                       known(**{"provider-openai": change.detail}))
    assert status_of("provider", back.changes[0].detail) == "operational"
    assert back.signal is not None and not back.signal.problem


def test_degraded_after_down_is_a_recovery_that_still_shows_degraded():
    down = {"provider-openai": {"down": True}}
    fx = provider_degraded(ev.ProviderDegraded(provider="openai", reason="slow"), known(**down))
    assert status_of("provider", fx.changes[0].detail) == "degraded_performance"
    assert fx.signal is not None and not fx.signal.problem
    quiet = provider_degraded(ev.ProviderDegraded(provider="openai", reason="slow"), known())
    assert quiet.signal is None  # nothing was wrong before: no incident to close


def test_a_service_is_up_only_when_every_instance_that_went_down_is_back():
    d1 = service_down(ev.ServiceDown(service="router", instance="r1"), known()).changes[0].detail
    d2 = service_down(ev.ServiceDown(service="router", instance="r2"),
                      known(**{"service-router": d1})).changes[0].detail
    half = service_up(ev.ServiceUp(service="router", instance="r1"), known(**{"service-router": d2}))
    assert half.signal is None and status_of("service", half.changes[0].detail) == "major_outage"
    whole = service_up(ev.ServiceUp(service="router", instance="r2"),
                       known(**{"service-router": half.changes[0].detail}))
    assert whole.signal is not None and status_of("service", whole.changes[0].detail) == "operational"


def test_tiers_and_the_kill_switch_set_the_route_status():
    minimal = tier_changed(ev.TierChanged(route="chat", from_tier="full", to_tier="minimal"), known())
    assert status_of("route", minimal.changes[0].detail) == "partial_outage"
    assert minimal.signal.problem and minimal.signal.impact == "major"
    switched = killswitch_engaged(ev.KillswitchEngaged(reason="spend", actor="cost-guard"), known())
    assert status_of("route", switched.changes[0].detail) == "major_outage"
    assert switched.signal.impact == "critical" and "cost-guard" in switched.signal.body
    # the router's own tier.changed under the kill switch opens no second incident
    during = tier_changed(ev.TierChanged(route="chat", from_tier="full", to_tier="emergency"),
                          known(**{"route-chat": switched.changes[0].detail}))
    assert during.signal is None
    # nor when it arrives before the cost guard's announcement: the router says why itself
    early = tier_changed(ev.TierChanged(route="chat", from_tier="full", to_tier="emergency",
                                        reason="killswitch"), known())
    assert early.signal is None and early.changes[0].detail["tier"] == "emergency"


def test_the_page_indicator_takes_the_worse_of_components_and_incidents():
    assert page_indicator({"a": "operational"}, []) == ("none", "All Systems Operational")
    assert page_indicator({"a": "degraded_performance"}, []) == ("minor", "Minor Service Outage")
    assert page_indicator({"a": "major_outage"}, ["critical"]) == ("critical", "Major Service Outage")


def test_each_kind_of_drill_keeps_its_own_last_result_beside_the_latest():
    from services.notifier.signals import drill_finished
    outage = drill_finished(ev.DrillFinished(drill_id="d1", scenario="provider-outage", passed=True,
                                             figures={"detection_s": 0.3}), known())
    loss = drill_finished(ev.DrillFinished(drill_id="d2", scenario="data-loss", passed=False), known())
    assert set(outage.facts) == {"drill", "drill.provider-outage"}
    assert outage.facts["drill.provider-outage"]["outcome"] == "passed"
    assert set(loss.facts) == {"drill", "drill.data-loss"} and loss.facts["drill"]["outcome"] == "failed"
