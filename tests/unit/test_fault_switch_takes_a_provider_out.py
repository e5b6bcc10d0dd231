"""The router-side fault switch (control KV fault.<provider>): while on, the provider is skipped
like one the health monitor calls down; released, it ramps back up (slow start)."""

from services.router.availability import Availability
from services.router.breaker import BreakerConfig
from services.router.slow_start import SlowStart

MEMBER = "openai/gpt-4o-mini"


def test_a_faulted_provider_is_refused_and_never_waited_for():
    avail = Availability(BreakerConfig(), slow_start=SlowStart(2.0))
    assert avail.refusal("openai", MEMBER, 0.0) is None
    avail.fault_switch("openai", "drill 42", 1.0)
    assert "fault switch (drill 42)" in (avail.refusal("openai", MEMBER, 1.0) or "")
    # Nothing to wait for: the switch is not a cool-down that ends by itself.
    assert avail.due_back([("openai", MEMBER)], 1.0) is None
    assert avail.due_back([("openai", MEMBER), ("anthropic", "anthropic/claude-haiku-4-5")], 1.0) == 1.0


def test_released_it_ramps_up_and_a_release_of_nothing_changes_nothing():
    avail = Availability(BreakerConfig(), slow_start=SlowStart(2.0))
    avail.fault_switch("anthropic", None, 0.0)  # never set: no ramp
    assert all(avail.ramp_admits("anthropic", "anthropic/claude-haiku-4-5", 0.1) for _ in range(5))
    avail.fault_switch("openai", "drill", 0.0)
    avail.fault_switch("openai", None, 10.0)
    assert avail.refusal("openai", MEMBER, 10.0) is None
    halfway = [avail.ramp_admits("openai", MEMBER, 11.0) for _ in range(100)]
    assert 40 <= sum(halfway) <= 60  # half the first attempts at half the ramp
    assert all(avail.ramp_admits("openai", MEMBER, 12.5) for _ in range(10))
