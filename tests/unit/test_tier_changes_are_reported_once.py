"""tier.changed: the worst tier over a window, reported when it moves; one id across routers."""

from services.router.tier_events import TierTracker, event_id


def test_a_route_reports_each_move_once_and_a_flapping_route_does_not_flood():
    tracker = TierTracker(window=10.0)
    changes = []
    for now, tier in [(0, "full"), (1, "full"), (2, "degraded"), (2.1, "full"), (2.2, "degraded"),
                      (3, "full"), (5, "full"), (13, "full"), (14, "emergency"), (15, "minimal")]:
        if (c := tracker.observe("chat", tier, now, 1000.0 + now)) is not None:
            changes.append((c.from_tier, c.to_tier))
    assert changes == [(None, "full"), ("full", "degraded"), ("degraded", "full"),
                       ("full", "emergency")]


def test_routes_are_tracked_apart():
    tracker = TierTracker(window=10.0)
    assert tracker.observe("chat", "full", 0, 0) is not None
    assert tracker.observe("summarize", "emergency", 0, 0).to_tier == "emergency"
    assert tracker.observe("chat", "full", 1, 1) is None


def test_two_routers_seeing_the_same_change_in_one_window_publish_one_event_id():
    a, b = TierTracker(window=10.0), TierTracker(window=10.0)
    a.observe("chat", "full", 0, 1000.0)
    b.observe("chat", "degraded", 0, 1000.0)
    one = a.observe("chat", "emergency", 1, 1003.0)
    other = b.observe("chat", "emergency", 5, 1007.0)
    assert one.event_id == other.event_id  # from_tier differs; the id does not depend on it
    assert event_id("chat", "emergency", 1011.0, 10.0) != one.event_id
