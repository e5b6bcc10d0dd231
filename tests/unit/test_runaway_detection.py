"""Runaway detection: a key's spend rate against its own baseline (services/cost_guard/runaway.py)."""

import json

from services.cost_guard.runaway import effects, judge, rates
from services.runtime.config.budgets import RunawayConfig

CFG = RunawayConfig(factor=10, window_s=60, baseline_s=3600, min_history_s=300, bucket_s=10,
                    min_rate_usd_per_min=0.01, auto_kill=True)
NOW = 1_000_000.0


def steady(usd_per_bucket: float, *, since_s: int, until_s: float = NOW) -> dict[int, float]:
    return {start: usd_per_bucket for start in range(int(NOW - since_s) // 10 * 10, int(until_s), 10)}


def test_a_key_at_twenty_times_its_baseline_is_a_spike_and_its_neighbour_is_not():
    quiet = steady(0.01, since_s=1800)  # $0.06/min for half an hour, and still
    loop = steady(0.01, since_s=1800, until_s=NOW - 60)
    loop.update({start: 0.2 for start in range(int(NOW - 60) // 10 * 10 + 10, int(NOW), 10)})
    spikes, over = judge({("key", "quiet"): quiet, ("key", "loop"): loop}, set(), NOW, CFG)
    assert [(s.scope_id, round(s.factor)) for s in spikes] == [("loop", 20)]
    assert over == []


def test_a_new_key_has_no_baseline_and_a_quiet_one_is_never_a_spike():
    new = {int(NOW) - 20: 5.0, int(NOW) - 10: 5.0}
    tiny = steady(0.00001, since_s=1800, until_s=NOW - 60)
    tiny[int(NOW) // 10 * 10] = 0.0005  # 50x, but $0.003/min: below the floor
    assert rates({("key", "new"): new}, NOW, CFG) == []
    spikes, _ = judge({("key", "tiny"): tiny}, set(), NOW, CFG)
    assert spikes == []


def test_an_announced_episode_is_not_announced_again_and_ends_when_the_rate_falls():
    loop = steady(0.01, since_s=1800, until_s=NOW - 60)
    loop.update({start: 0.5 for start in range(int(NOW - 60) // 10 * 10 + 10, int(NOW), 10)})
    spikes, over = judge({("key", "loop"): loop}, {("key", "loop")}, NOW, CFG)
    assert (spikes, over) == ([], [])
    stopped = steady(0.01, since_s=1800, until_s=NOW - 60)  # killed: nothing in the window
    assert judge({("key", "loop"): stopped}, {("key", "loop")}, NOW, CFG) == ([], [("key", "loop")])


def test_auto_kill_engages_the_keys_kill_switch_but_never_everyones():
    loop = steady(0.01, since_s=1800, until_s=NOW - 60)
    loop.update({start: 0.2 for start in range(int(NOW - 60) // 10 * 10 + 10, int(NOW), 10)})
    both = {("key", "loop"): loop, ("global", "*"): loop}
    spikes, _ = judge(both, set(), NOW, CFG)
    by_scope = {s.scope: effects(s, CFG, "cost-guard/1", NOW) for s in spikes}
    assert [(e.kind, e.target) for e in by_scope["key"]] == [
        ("event", "cost.anomaly"), ("engage", "killswitch.key.loop")]
    assert [(e.kind, e.target) for e in by_scope["global"]] == [("event", "cost.anomaly")]
    anomaly = json.loads(by_scope["key"][0].payload)
    assert (anomaly["scope"], anomaly["scope_id"], anomaly["action"]) == ("key", "loop", "killswitch")
    assert anomaly["factor"] >= 10
