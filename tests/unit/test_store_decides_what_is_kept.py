"""The conversation store's pure decisions: what becomes a turn, what has expired, what a purge
forbids, how conversations roll up, how long to wait, how much history fits."""

from datetime import UTC, datetime, timedelta

import pytest

from schemas.completion import Usage
from schemas.events import HistoryReply, LlmCompleted, Turn
from services.conversation_store import logic
from services.conversation_store.records import TurnRecord, checksum, to_line
from services.runtime.config.store import RetentionConfig

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def event(status: str = "ok", **fields) -> LlmCompleted:
    base = dict(request_id="r-1", route="chat", status=status, tier="full", provider="openai",
                model="m", fallback_depth=0, usage=Usage(input_tokens=3, output_tokens=5),
                cost_usd=0.5, latency_ms=12.0, occurred_at=NOW, session_id="s-1", user_id="u-1",
                messages=[{"role": "user", "content": "hi"}], content="hello")
    return LlmCompleted(**{**base, **fields})


def turn(at: datetime = NOW, route: str = "chat", user: str | None = "u-1",
         session: str | None = "s-1", rid: str = "r-1") -> TurnRecord:
    record = logic.to_turn(event(occurred_at=at, route=route, user_id=user, session_id=session,
                                 request_id=rid), stored_at=at)
    assert record is not None
    return record


@pytest.mark.parametrize(("status", "is_turn"), [("ok", True), ("queued", False), ("error", False)])
def test_only_an_answered_request_is_a_turn(status, is_turn):
    assert (logic.to_turn(event(status), stored_at=NOW) is not None) is is_turn


def test_a_turn_carries_every_field_of_the_event():
    record = logic.to_turn(event(key_id="k", team_id="t", region="eu", cached=True, attempts=2,
                                 metadata={"a": 1}, source="router/x"), stored_at=NOW)
    assert record is not None
    assert (record.input_tokens, record.output_tokens, record.cost_usd, record.key_id,
            record.team_id, record.region, record.cached, record.attempts, record.metadata,
            record.source, record.at) == (3, 5, 0.5, "k", "t", "eu", True, 2, {"a": 1},
                                          "router/x", NOW)


def test_each_route_expires_after_its_own_period_and_others_after_the_default():
    limits = logic.cutoffs(RetentionConfig(default_days=365, routes={"chat": 30, "legal": None}), NOW)
    assert logic.expired(turn(NOW - timedelta(days=31)), limits)
    assert not logic.expired(turn(NOW - timedelta(days=29)), limits)
    assert not logic.expired(turn(NOW - timedelta(days=3000), route="legal"), limits)  # for ever
    assert logic.expired(turn(NOW - timedelta(days=366), route="support"), limits)
    assert not logic.expired(turn(NOW - timedelta(days=364), route="support"), limits)
    assert limits.latest == NOW - timedelta(days=30)


def test_nothing_expires_without_a_retention_setting():
    limits = logic.cutoffs(RetentionConfig(), NOW)
    assert not logic.expired(turn(NOW - timedelta(days=10_000)), limits)
    assert limits.latest is None


def test_a_purge_forbids_the_users_earlier_turns_only():
    tombstones = {"u-1": NOW}
    assert logic.purged(turn(NOW - timedelta(seconds=1)), tombstones)
    assert logic.purged(turn(NOW), tombstones)
    assert not logic.purged(turn(NOW + timedelta(seconds=1)), tombstones)  # came back later
    assert not logic.purged(turn(NOW - timedelta(days=1), user="u-2"), tombstones)
    assert not logic.purged(turn(NOW - timedelta(days=1), user=None), tombstones)


def test_conversations_roll_up_one_row_per_session_sorted():
    rows = logic.conversations_of([
        turn(NOW, session="b", user=None, rid="1"), turn(NOW - timedelta(hours=1), session="b", rid="2"),
        turn(NOW + timedelta(hours=1), session="b", user="u-9", rid="3"),
        turn(NOW, session=None, rid="4"), turn(NOW, session="a", rid="5")])
    assert rows == [
        {"id": "a", "user_id": "u-1", "started_at": NOW, "last_at": NOW},
        {"id": "b", "user_id": "u-1", "started_at": NOW - timedelta(hours=1),
         "last_at": NOW + timedelta(hours=1)},
    ]


def test_backoff_doubles_up_to_its_cap():
    waits = [logic.backoff_s(n, initial_ms=200, max_ms=5000) for n in range(7)]
    assert waits == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert logic.backoff_s(10_000, initial_ms=200, max_ms=5000) == 5.0


def test_history_is_cut_from_the_oldest_end_to_fit_one_message():
    turns = [Turn(request_id=f"r-{i}", at=NOW, route="chat", messages=[], content="z" * 1000)
             for i in range(10)]
    whole = HistoryReply(session_id="s", turns=turns)
    assert logic.fit(whole, 100_000) is whole
    cut = logic.fit(whole, 4_000)
    assert cut.truncated and len(cut.model_dump_json()) <= 4_000
    assert [t.request_id for t in cut.turns] == [f"r-{i}" for i in range(10 - len(cut.turns), 10)]
    assert len(cut.turns) == 3


@pytest.mark.parametrize(("data", "complaint"), [
    (b"{", "not a valid LlmCompleted: body: Invalid JSON"),
    (b'{"request_id": "r"}', "route: Field required"),
    (b'{"request_id": "r", "route": "c", "status": "done"}', "status: Input should be"),
])
def test_a_bad_event_is_named_with_its_fields(data, complaint):
    reason = logic.parse_completed(data)
    assert isinstance(reason, str) and complaint in reason


def test_the_export_line_is_canonical_and_the_checksum_ignores_order():
    a, b = turn(rid="r-a"), turn(rid="r-b", user="ü-2")
    assert TurnRecord.model_validate_json(to_line(a)) == a
    assert to_line(a) == to_line(TurnRecord.model_validate_json(to_line(a)))
    assert checksum([to_line(a), to_line(b)]) == checksum([to_line(b), to_line(a)])
    assert checksum([to_line(a)]) != checksum([to_line(b)])
    assert '"user_id":"ü-2"' in to_line(b)
