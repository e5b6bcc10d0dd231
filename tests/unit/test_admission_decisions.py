"""The cost guard's admission decisions (services/cost_guard/decide.py): pure, no I/O."""

from datetime import UTC, datetime

from schemas.completion import ErrorKind
from services.cost_guard.decide import Ask, Counter, Snapshot, decide, rows_needed
from services.cost_guard.levels import EXCEEDED, WARNING
from services.cost_guard.policy import CounterKey, Payer, Policy
from services.runtime.config.budgets import BudgetsConfig, SpendBudget

NOW = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)
DAY = int(datetime(2026, 3, 14, tzinfo=UTC).timestamp())
MINUTE = int(datetime(2026, 3, 14, 15, 9, tzinfo=UTC).timestamp())


def policy(**section: object) -> Policy:
    return Policy(BudgetsConfig.model_validate(section))


def ask(n: int, user: str | None = "alice", key: str | None = None, usd: float = 0.01,
        tokens: int = 100) -> Ask:
    return Ask(f"r{n}", Payer(user_id=user, key_id=key), usd, tokens)


def test_a_batch_admits_until_the_budget_is_spent_counting_each_reservation_before_the_next():
    p = policy(spend=[{"scope": "global", "period": "day", "limit_usd": 0.105}])
    snap = Snapshot(counters={CounterKey("global", "*", "day", DAY): Counter(spent_usd=0.05)})
    verdicts, crossings = decide(p, [ask(i) for i in range(10)], snap, NOW)
    assert [v.admitted for v in verdicts] == [True] * 5 + [False] * 5
    refusal = verdicts[5].error
    assert refusal.kind is ErrorKind.BUDGET_EXHAUSTED
    assert "day budget of everyone is spent" in refusal.message
    # retry after: until the next UTC midnight
    assert refusal.retry_after_s == (datetime(2026, 3, 15, tzinfo=UTC) - NOW).total_seconds()
    assert [(c.applied.instance, c.level) for c in crossings] == [("global:*:day", EXCEEDED)]


def test_reservations_in_flight_count_against_the_budget():
    p = policy(spend=[{"scope": "user", "period": "day", "limit_usd": 1.0}])
    snap = Snapshot()
    snap.pending[("user", "alice")].usd = 0.995
    verdicts, _ = decide(p, [ask(1), ask(2, user="bob")], snap, NOW)
    assert [v.admitted for v in verdicts] == [False, True]  # bob has his own budget


def test_a_downgrade_budget_is_crossed_but_never_refuses():
    p = policy(spend=[{"scope": "global", "period": "month", "limit_usd": 0.02,
                       "action": "downgrade"}])
    verdicts, crossings = decide(p, [ask(i) for i in range(5)], Snapshot(), NOW)
    assert all(v.admitted for v in verdicts)
    assert crossings[0].level == EXCEEDED and crossings[0].applied.budget.action == "downgrade"


def test_the_soft_threshold_is_a_warning():
    p = policy(spend=[{"scope": "key", "period": "day", "limit_usd": 1.0, "warn_pct": 50}])
    snap = Snapshot(counters={CounterKey("key", "k1", "day", DAY): Counter(spent_usd=0.495)})
    verdicts, crossings = decide(p, [ask(1, key="k1")], snap, NOW)
    assert verdicts[0].admitted
    assert [(c.applied.instance, c.level) for c in crossings] == [("key:k1:day", WARNING)]


def test_a_budget_of_its_own_wins_over_the_scope_wide_one():
    p = policy(spend=[{"scope": "user", "period": "day", "limit_usd": 0.01},
                      {"scope": "user", "id": "vip", "period": "day", "limit_usd": 100}])
    verdicts, _ = decide(p, [ask(1, user="vip"), ask(2, user="vip"), ask(3, user="joe"),
                             ask(4, user="joe")], Snapshot(), NOW)
    assert [v.admitted for v in verdicts] == [True, True, True, False]


def test_requests_per_minute_say_which_limit_and_when_it_resets():
    p = policy(rate_limits={"user": {"requests_per_minute": 3}})
    verdicts, _ = decide(p, [ask(i) for i in range(5)], Snapshot(), NOW)
    assert [v.admitted for v in verdicts] == [True, True, True, False, False]
    error = verdicts[3].error
    assert error.kind is ErrorKind.LIMITED
    assert "user alice reached its limit of 3 requests per minute" in error.message
    assert error.retry_after_s == 34.0  # 15:09:26 -> 15:10:00
    assert verdicts[0].counted == [CounterKey("user", "alice", "minute", MINUTE)]


def test_requests_per_day_count_what_was_admitted_before():
    p = policy(rate_limits={"key": {"requests_per_day": 100}})
    snap = Snapshot(counters={CounterKey("key", "k1", "day", DAY): Counter(requests=99)})
    verdicts, _ = decide(p, [ask(1, key="k1"), ask(2, key="k1")], snap, NOW)
    assert [v.admitted for v in verdicts] == [True, False]
    assert "100 requests per day" in verdicts[1].error.message


def test_tokens_per_day_include_the_estimate_and_the_tokens_in_flight():
    p = policy(rate_limits={"user": {"tokens_per_day": 1000}})
    snap = Snapshot(counters={CounterKey("user", "alice", "day", DAY): Counter(tokens=700)})
    snap.pending[("user", "alice")].tokens = 150
    verdicts, _ = decide(p, [ask(1, tokens=150), ask(2, tokens=1)], snap, NOW)
    assert [v.admitted for v in verdicts] == [True, False]
    assert "tokens per day" in verdicts[1].error.message


def test_an_override_replaces_the_default_limit_for_one_user():
    p = policy(rate_limits={"user": {"requests_per_minute": 1},
                            "overrides": {"user:loadtest": {"requests_per_minute": 1000}}})
    verdicts, _ = decide(p, [ask(i, user="loadtest") for i in range(10)], Snapshot(), NOW)
    assert all(v.admitted for v in verdicts)


def test_a_killed_key_is_refused_and_told_how_to_release_it():
    verdicts, _ = decide(policy(), [ask(1, key="k9"), ask(2, key="k1")],
                         Snapshot(killed_keys={"k9": "runaway spend"}), NOW)
    assert not verdicts[0].admitted and verdicts[1].admitted
    assert "lifeline killswitch release --scope key:k9" in verdicts[0].error.message


def test_only_the_rows_of_budgets_and_limits_that_apply_are_read():
    p = policy(spend=[{"scope": "user", "period": "month", "limit_usd": 5}],
               rate_limits={"key": {"requests_per_minute": 10}})
    month = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())
    assert rows_needed(p, Payer(user_id="alice", key_id="k1"), NOW) == [
        CounterKey("key", "k1", "minute", MINUTE), CounterKey("user", "alice", "month", month)]
    assert rows_needed(p, Payer(), NOW) == []  # nobody to charge: no round trip to SQL


def test_run_time_budgets_replace_the_files_entry():
    config = BudgetsConfig.model_validate(
        {"spend": [{"scope": "global", "period": "day", "limit_usd": 1}]})
    p = Policy(config, [SpendBudget(scope="global", period="day", limit_usd=50)])
    assert p.budget("global", "*", "day").limit_usd == 50


def test_a_users_downgrade_budget_moves_only_that_users_requests_to_the_cheaper_chain():
    p = policy(spend=[{"scope": "user", "period": "day", "limit_usd": 0.025, "action": "downgrade"}])
    asks = [Ask(f"r{i}", Payer(user_id="alice"), 0.01, 100, "chat") for i in range(4)]
    asks.append(Ask("r4", Payer(user_id="bob"), 0.01, 100, "chat"))
    verdicts, crossings = decide(p, asks, Snapshot(), NOW)
    assert all(v.admitted for v in verdicts)  # never refused ...
    assert [v.downgrade is not None for v in verdicts] == [False, False, True, True, False]
    assert verdicts[2].downgrade == "the day budget of user alice is spent ($0.0200 of $0.03)"
    assert [(c.applied.instance, c.level) for c in crossings] == [("user:alice:day", EXCEEDED)]


def test_a_downgrade_budget_for_some_routes_leaves_the_others_alone():
    p = policy(spend=[{"scope": "key", "period": "day", "limit_usd": 0.001, "action": "downgrade",
                       "routes": ["chat"]}])
    asks = [Ask("r1", Payer(key_id="k1"), 0.01, 100, "chat"),
            Ask("r2", Payer(key_id="k1"), 0.01, 100, "summarize")]
    verdicts, _ = decide(p, asks, Snapshot(), NOW)
    assert [(v.admitted, v.downgrade is not None) for v in verdicts] == [(True, True), (True, False)]
