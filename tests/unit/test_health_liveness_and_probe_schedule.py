"""Service liveness from heartbeats, and when (and by whom) providers are probed. Pure."""

from datetime import UTC, datetime

from schemas.events import Heartbeat
from services.health_monitor.liveness import Liveness
from services.health_monitor.schedule import Clocks, owner, probe_due
from services.health_monitor.signals import Sample
from services.health_monitor.states import ProviderTracker, Rules
from services.runtime.config.health import HealthConfig, ProbeSettings

STARTED = datetime(2026, 3, 10, tzinfo=UTC)


def beat(instance: str = "router-1", *, stopping: bool = False, interval_s: float | None = 1.0) -> Heartbeat:
    return Heartbeat(service="router", instance=instance, started_at=STARTED,
                     interval_s=interval_s, stopping=stopping)


def test_missed_heartbeats_are_down_once_and_a_returning_beat_is_up_once():
    live = Liveness(misses=3, default_interval_s=2.0)
    last = beat()
    assert live.beat(last, now=0.0) is None  # a new instance is not news
    assert live.check(now=2.9) == []
    [down] = live.check(now=3.1)
    assert (down.kind, down.service, down.instance) == ("down", "router", "router-1")
    assert down.event_id == f"service.down.{last.id}"  # the same in every monitor instance
    assert "no heartbeat for 3.1s (3 x 1s)" == down.reason
    assert live.check(now=10.0) == []  # said once
    back = beat()
    up = live.beat(back, now=11.0)
    assert up is not None and (up.kind, up.event_id) == ("up", f"service.up.{back.id}")
    assert live.alive("router") == ["router-1"]


def test_a_clean_stop_is_no_alarm():
    live = Liveness(misses=3, default_interval_s=2.0)
    live.beat(beat(), now=0.0)
    assert live.beat(beat(stopping=True), now=0.5) is None
    assert live.check(now=100.0) == []


def test_an_instance_down_before_a_restart_is_up_when_it_beats_again():
    live = Liveness(misses=3, default_interval_s=2.0)
    live.replayed("down", "router", "router-1")  # from the STATUS stream
    assert live.beat(beat(interval_s=None), now=0.0).kind == "up"
    assert live.check(now=5.9) == []  # the default interval (2 s) when a beat does not say


def tracker() -> ProviderTracker:
    h = HealthConfig()
    return ProviderTracker("openai", Rules(hysteresis=h.hysteresis, degraded=h.degraded,
                                           canary=h.canary, latency_p95_ms=1.0))


def test_probes_pause_while_real_traffic_measures_the_provider_and_hurry_when_suspect():
    probe = ProbeSettings(interval_s=10, confirm_interval_s=1, traffic_covers_s=10)
    t = tracker()
    assert probe_due(t, Clocks(), now=100.0, probe=probe)  # no verdict yet: probe now
    t.adopt("up", "answering", 100.0, None)
    assert not probe_due(t, Clocks(last_probe_at=95.0), now=100.0, probe=probe)
    assert probe_due(t, Clocks(last_probe_at=90.0), now=100.0, probe=probe)
    t.observe("m", Sample(at=99.0, verdict="ok", latency_ms=5, probe=False))
    assert not probe_due(t, Clocks(last_probe_at=0.0), now=100.0, probe=probe)  # traffic covers it
    t.observe("m", Sample(at=100.0, verdict="failed", latency_ms=5, probe=False, error="timeout: x"))
    assert probe_due(t, Clocks(last_probe_at=98.5), now=100.0, probe=probe)  # suspect: confirm


def test_each_provider_has_one_prober_and_a_dead_ones_providers_move():
    providers = [f"p{i}" for i in range(30)]
    two = {p: owner(p, ["m1", "m2"]) for p in providers}
    assert set(two.values()) == {"m1", "m2"}
    assert all(owner(p, ["m2", "m1"]) == two[p] for p in providers)  # order does not matter
    assert {owner(p, ["m1"]) for p in providers} == {"m1"}
