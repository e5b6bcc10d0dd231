"""The 90-day bar (pure): observed time only, major outage counts fully, partial 30 %."""

from datetime import UTC, datetime, timedelta

from services.notifier.uptime import Span, daily, overall

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def test_days_before_anything_was_observed_have_no_data():
    days = daily([Span("operational", NOW - timedelta(hours=2), None)], NOW, 90)
    assert len(days) == 90 and days[-1].day == NOW.date()
    assert all(d.uptime is None for d in days[:-1])
    assert days[-1].uptime == 1.0 and days[-1].worst == "operational"


def test_an_hour_of_major_outage_in_a_day():
    start = datetime(2026, 1, 8, tzinfo=UTC)
    spans = [Span("operational", start, start + timedelta(hours=10)),
             Span("major_outage", start + timedelta(hours=10), start + timedelta(hours=11)),
             Span("partial_outage", start + timedelta(hours=11), start + timedelta(hours=21)),
             Span("operational", start + timedelta(hours=21), None)]
    [day8, day9, today] = daily(spans, NOW, 3)
    assert day8.worst == "major_outage"
    assert abs(day8.uptime - (1 - (3600 + 0.3 * 36000) / 86400)) < 1e-9
    assert day9.uptime == 1.0 and today.uptime == 1.0
    observed = (NOW - start).total_seconds()
    assert abs(overall(spans, NOW, 90) - (1 - (3600 + 0.3 * 36000) / observed)) < 1e-9
