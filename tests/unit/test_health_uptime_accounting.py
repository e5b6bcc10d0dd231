"""Uptime per UTC day from provider.* transitions, route states from their chains, and the
composite availability 1 - prod(1 - a_i). Pure."""

from datetime import UTC, datetime

import pytest

from services.health_monitor.uptime import (
    DAY,
    Timelines,
    composite,
    per_day,
    route_changes,
)

T0 = datetime(2026, 3, 10, tzinfo=UTC).timestamp()  # midnight UTC
H = 3600.0


def test_a_day_is_split_into_up_degraded_down_and_unmonitored_time():
    changes = [(T0 + 2 * H, "up"), (T0 + 10 * H, "down"), (T0 + 11 * H, "degraded"), (T0 + 12 * H, "up")]
    today = per_day(changes, T0 + 20 * H, 1)[0]
    assert today.day == "2026-03-10"
    assert (today.unknown_s, today.up_s, today.down_s, today.degraded_s) == (2 * H, 16 * H, H, H)
    assert today.availability == pytest.approx(17 / 18)  # of the monitored time


def test_earlier_days_are_whole_days_and_a_state_carries_over_midnight():
    changes = [(T0 - 1.5 * DAY, "down"), (T0 - 12 * H, "up")]
    today, yesterday, before = per_day(changes, T0 + 6 * H, 3)
    assert (today.up_s, today.down_s) == (6 * H, 0.0)
    assert (yesterday.day, yesterday.down_s, yesterday.up_s) == ("2026-03-09", 12 * H, 12 * H)
    assert (before.down_s, before.unknown_s) == (12 * H, 12 * H)


def test_replayed_events_count_once_and_90_days_are_kept():
    t = Timelines(keep_days=90)
    assert t.add("e1", "openai", "up", T0 - 100 * DAY)
    assert not t.add("e1", "openai", "up", T0 - 100 * DAY)  # replayed again after a restart
    t.add("e2", "openai", "down", T0 - 95 * DAY)
    t.add("e3", "openai", "up", T0 - 10 * DAY)
    t.prune(now=T0)
    # What came before the kept period is forgotten, except the state in force at its start.
    assert t.of("openai") == [(T0 - 95 * DAY, "down"), (T0 - 10 * DAY, "up")]


def test_a_route_is_up_on_its_primary_degraded_on_a_fallback_down_when_none_answers():
    primary = [(T0, "up"), (T0 + 2 * H, "down"), (T0 + 5 * H, "up")]
    fallback = [(T0, "up"), (T0 + 3 * H, "down"), (T0 + 4 * H, "up")]
    assert route_changes([primary, fallback]) == [
        (T0, "up"), (T0 + 2 * H, "degraded"), (T0 + 3 * H, "down"), (T0 + 4 * H, "degraded"),
        (T0 + 5 * H, "up")]
    assert route_changes([primary, []]) == []  # unknown until every member has a verdict


def test_composite_availability_of_a_chain():
    assert composite([0.99, 0.95]) == pytest.approx(1 - 0.01 * 0.05)
    assert composite([0.9, None]) == pytest.approx(0.9)
    assert composite([None]) is None
