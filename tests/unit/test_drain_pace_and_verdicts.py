"""The drain's pure decisions: pace (slow start, ramp, 429), the token bucket, outcomes, expiry."""

import pytest

from schemas.completion import Attempt, CompletionResult, ErrorKind, ResultError
from services.router.drain import (
    DrainRate, Peers, TokenBucket, Verdict, expires_at, retry_delay, saw_rate_limit, verdict,
)
from services.runtime.config.tiers import DrainPolicy

POLICY = DrainPolicy(start_rate=10, max_rate=80, ramp_every_s=2, batch_pause_s=5,
                     retry_delay_s=1, retry_delay_max_s=8, default_deadline_s=3600)


def failed(kind: ErrorKind, *outcomes: ErrorKind) -> CompletionResult:
    return CompletionResult(request_id="r", status="error", error=ResultError(kind=kind, message="x"),
                            attempts=[Attempt(provider="p", model="m", outcome=o, latency_ms=1) for o in outcomes])


def test_the_pace_starts_slow_doubles_while_calls_succeed_and_is_capped():
    rate = DrainRate(POLICY)
    assert rate.rate(100.0) == 10
    rate.succeeded(100.0)
    assert [rate.rate(100.0 + t) for t in (0, 2, 4, 6, 60)] == [10, 20, 40, 80, 80]
    rate.succeeded(104.0)  # later successes do not restart the ramp
    assert rate.rate(104.0) == 40


def test_a_vendor_failure_sends_the_pace_back_to_start():
    rate = DrainRate(POLICY)
    rate.succeeded(0.0)
    rate.failed()
    assert rate.rate(10.0) == 10


def test_a_429_halves_the_pace_ramps_from_there_and_pauses_batch():
    rate = DrainRate(POLICY)
    rate.succeeded(0.0)
    assert rate.rate(4.0) == 40
    rate.throttled(4.0)
    assert rate.rate(4.0) == 20 and rate.rate(6.0) == 40
    assert rate.batch_paused(8.9) and not rate.batch_paused(9.0)


def test_each_router_takes_its_share_of_the_pace():
    rate = DrainRate(POLICY, share=0.5)
    assert rate.rate(0.0) == 5


def test_the_bucket_never_lets_more_than_the_pace_plus_one_token():
    bucket = TokenBucket()
    taken, now = 0, 0.0
    while now < 10.0:
        if bucket.take(now, 10.0, "interactive") == 0:
            taken += 1
        now += 0.001
    assert 99 <= taken <= 101


def test_batch_waits_while_interactive_work_waits_for_a_token():
    bucket = TokenBucket(tokens=1.0, updated=0.0)
    bucket.waiting["interactive"] = 1
    assert bucket.take(0.0, 10.0, "batch") > 0
    assert bucket.take(0.0, 10.0, "interactive") == 0


def test_a_token_given_back_is_there_for_the_next_call():
    bucket = TokenBucket()
    bucket.refill(0.0, 10.0)
    bucket.give_back()
    assert bucket.take(0.0, 10.0, "batch") == 0


@pytest.mark.parametrize(("result", "expected"), [
    (CompletionResult(request_id="r", status="ok", content="hi"), Verdict.ANSWERED),
    (failed(ErrorKind.EXHAUSTED, ErrorKind.SERVER_ERROR), Verdict.WAIT),
    (failed(ErrorKind.EXHAUSTED), Verdict.WAIT),  # everyone skipped: nothing was called
    (failed(ErrorKind.TIMEOUT), Verdict.WAIT),
    (failed(ErrorKind.LIMITED), Verdict.WAIT),
    (failed(ErrorKind.BAD_REQUEST, ErrorKind.BAD_REQUEST), Verdict.FINAL_ERROR),
    (failed(ErrorKind.CONTEXT_TOO_LONG), Verdict.FINAL_ERROR),
    (failed(ErrorKind.NO_ROUTE), Verdict.FINAL_ERROR),
    (failed(ErrorKind.BUDGET_EXHAUSTED), Verdict.FINAL_ERROR),
])
def test_what_to_do_with_each_outcome(result, expected):
    assert verdict(result) is expected


def test_a_429_anywhere_in_the_chain_counts_even_if_another_member_answered():
    ok = CompletionResult(request_id="r", status="ok", attempts=[
        Attempt(provider="a", model="m", outcome=ErrorKind.RATE_LIMITED, latency_ms=1),
        Attempt(provider="b", model="m", outcome="ok", latency_ms=1)])
    assert saw_rate_limit(ok) and not saw_rate_limit(failed(ErrorKind.EXHAUSTED, ErrorKind.TIMEOUT))


def test_expiry_is_the_deadline_or_the_default_and_backoff_doubles_to_a_cap():
    assert expires_at(1000.0, 5000, POLICY) == 1005.0
    assert expires_at(1000.0, None, POLICY) == 4600.0
    assert [retry_delay(n, POLICY) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 8]


def test_routers_whose_heartbeats_stop_no_longer_share_the_pace():
    peers = Peers(timeout=3.0)
    assert peers.alive(0.0) == 1  # alone until the first heartbeat, itself included
    peers.seen("a", 0.0)
    peers.seen("b", 1.0)
    assert peers.alive(2.0) == 2
    assert peers.alive(3.5) == 1
