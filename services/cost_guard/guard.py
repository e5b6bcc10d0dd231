"""The cost guard's work between its handlers (app.py) and SQL: admission, ledger, the tick.

Each public method is one transaction (or a batch of requests in one), retried on a deadlock or
a busy database; decisions are made by the pure modules (decide, levels, runaway, report).
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.costs import ReserveReply, ReserveRequest, Settle, SpendQuery, SpendReport
from services.runtime.config import LifelineConfig
from services.runtime.config.budgets import SpendBudget

from . import ledger, levels, outbox, periods, report, runaway, store, tables
from .batching import Batcher
from .decide import Ask, Counter, Pending, Snapshot, Verdict, decide, rows_needed
from .ledger import Charge, Recorded
from .metrics import Metrics
from .policy import Applied, Payer, Policy

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRIED_SQLSTATES = {"40P01", "40001"}  # PostgreSQL: deadlock detected, serialization failure


def utcnow() -> datetime:
    return datetime.now(UTC)


class Guard:
    def __init__(self, config: LifelineConfig, engine: AsyncEngine, *, source: str,
                 metrics: Metrics, clock: Callable[[], datetime] = utcnow,
                 admission_engine: AsyncEngine | None = None) -> None:
        self.config = config
        self.engine = engine  # the ledger, states, outbox: durable commits
        self.admission_engine = admission_engine or engine  # reservations (store.admission_engine)
        self.source = source
        self.metrics = metrics
        self.clock = clock
        self.overrides: list[SpendBudget] = []
        self.policy = Policy(config.budgets)
        self.killed_keys: dict[str, str] = {}  # key id -> reason, from the control KV
        self.outbox_ready = asyncio.Event()  # set when a commit added to the outbox
        self._reserve = Batcher(self._reserve_batch, name="cost-guard-reserve")
        self._settle = Batcher(self._settle_batch, name="cost-guard-settle")

    def use(self, config: LifelineConfig | None = None,
            overrides: list[SpendBudget] | None = None) -> None:
        """A reloaded lifeline.yaml, or new run-time budgets (KV `limits`)."""
        self.config = config or self.config
        self.overrides = self.overrides if overrides is None else overrides
        self.policy = Policy(self.config.budgets, self.overrides)

    async def close(self) -> None:
        await self._reserve.close()
        await self._settle.close()

    # --- admission --------------------------------------------------------------------------

    async def reserve(self, request: ReserveRequest) -> ReserveReply:
        ask = Ask(request.request_id, Payer(request.user_id, request.key_id, request.team_id),
                  request.estimate_usd, request.estimate_tokens, request.route)
        if not rows_needed(self.policy, ask.payer, self.clock()):
            # Nothing to count against: only a kill switch on the key can refuse it.
            verdicts, _ = decide(self.policy, [ask], _no_rows(self.killed_keys), self.clock())
            return self._reply(verdicts[0], reserved=False)
        return await self._reserve.submit((ask, request.hold_s))

    async def _reserve_batch(self, items: list[tuple[Ask, float]]) -> list[ReserveReply]:
        started = time.perf_counter()

        async def work(conn: AsyncConnection) -> list[Verdict]:
            now = self.clock()
            asks = [ask for ask, _ in items]
            keys = sorted({k for a in asks for k in rows_needed(self.policy, a.payer, now)})
            snap = await store.snapshot(conn, keys, self.killed_keys)
            verdicts, crossings = decide(self.policy, asks, snap, now)
            admitted = [(ask, hold) for (ask, hold), v in zip(items, verdicts, strict=True)
                        if v.admitted]
            counted = [key for v in verdicts if v.admitted for key in v.counted]
            await store.reserve(conn, admitted, counted, now.timestamp())
            await self._rise(conn, crossings, now)
            return verdicts

        verdicts = await self.transaction(work, self.admission_engine)
        self.metrics.reserve_seconds.observe(time.perf_counter() - started)
        return [self._reply(v, reserved=v.admitted) for v in verdicts]

    def _reply(self, verdict: Verdict, *, reserved: bool) -> ReserveReply:
        self.metrics.admissions.labels(
            "admitted" if verdict.admitted else verdict.error.kind.value).inc()  # type: ignore[union-attr]
        return ReserveReply(admitted=verdict.admitted, reserved=reserved, error=verdict.error,
                            downgrade=verdict.downgrade)

    async def settle(self, settle: Settle) -> None:
        await self._settle.submit(settle)

    async def _settle_batch(self, items: list[Settle]) -> list[None]:
        async def work(conn: AsyncConnection) -> None:
            await store.settle(conn, [(s.request_id, s.cost_usd) for s in items],
                               self.clock().timestamp(), self.config.budgets.admission.settled_hold_s)

        await self.transaction(work, self.admission_engine)
        return [None] * len(items)

    # --- ledger -----------------------------------------------------------------------------

    async def record(self, charges: list[Charge]) -> Recorded:
        """One transaction for a batch of charges; returns once committed."""
        if not charges:
            return Recorded(0, 0.0, {}, {})
        async def work(conn: AsyncConnection) -> Recorded:
            now = self.clock()
            recorded = await ledger.record(conn, charges, now, self.config.budgets.runaway)
            await self._rise(conn, self._ledger_crossings(recorded, now), now)
            return recorded

        recorded = await self.transaction(work)
        for scope, usd in recorded.by_scope.items():
            self.metrics.spend.labels(scope).inc(usd)
        if charges:
            newest = max(c.occurred_at for c in charges)
            self.metrics.ledger_lag.set(max(0.0, (self.clock() - newest).total_seconds()))
        return recorded

    def _ledger_crossings(self, recorded: Recorded, now: datetime) -> list[levels.Crossing]:
        spent = {}
        for key, counter in recorded.counters.items():
            if key.period not in ("day", "month"):
                continue
            budget = self.policy.budget(key.scope, key.scope_id, key.period)
            current = periods.epoch(periods.start_of(key.period, now))  # type: ignore[arg-type]
            if budget is not None and key.start == current:
                applied = Applied(budget, key.scope_id)
                spent[applied.instance] = (applied, key.start, counter.spent_usd)
        return levels.ledger_crossings(spent)

    async def _rise(self, conn: AsyncConnection, crossings: list[levels.Crossing],
                    now: datetime) -> None:
        won = await outbox.rise(conn, crossings, now.timestamp())
        effects = [e for c in won for e in levels.crossing_effects(c, self.config, self.source)]
        if await outbox.add(conn, effects, now.timestamp()):
            self.outbox_ready.set()  # the announcer reads committed rows only; a set too early
            #                          just makes it look once more a moment later

    # --- the tick: expiry, restoration, runaway ------------------------------------------------

    async def tick(self) -> None:
        async def work(conn: AsyncConnection) -> None:
            now = self.clock()
            now_s = now.timestamp()
            await store.expire(conn, now_s)
            states = await outbox.states(conn)
            spent = await self._spent_now(conn, states, now)
            won = await outbox.fall(conn, levels.restorations(states, self.policy, spent, now), now_s)
            fallen = {r.state.instance for r in won}
            still = [a for s in states if s.level == levels.EXCEEDED and s.instance not in fallen
                     and (a := self.policy.applied_by_instance(s.instance)) is not None]
            effects = [e for r in won
                       for e in levels.restoration_effects(r, self.config, self.source, still)]
            if await outbox.add(conn, effects, now_s):
                self.outbox_ready.set()
            await outbox.prune(conn, now_s - 86400)
            cfg = self.config.budgets.runaway
            await store.prune(conn, minute_before=int(now_s) - 3600,
                              rate_before=int(now_s) - cfg.baseline_s - 2 * cfg.window_s)
            self.metrics.reservations.set(await store.in_flight(conn))

        await self.transaction(work)

    async def _spent_now(self, conn: AsyncConnection, states: list[levels.State],
                         now: datetime) -> dict[str, float]:
        """Spend plus reservations in the current period of each budget instance not at ok."""
        applied = {s.instance: a for s in states
                   if s.level and (a := self.policy.applied_by_instance(s.instance)) is not None}
        rows = await store.read_counters(conn, [a.counter(now) for a in applied.values()])
        held = await store.pending(conn)
        return {instance: rows.get(a.counter(now), Counter()).spent_usd
                + held.get((a.budget.scope, a.scope_id), Pending()).usd
                for instance, a in applied.items()}

    async def check_runaway(self) -> None:
        cfg = self.config.budgets.runaway
        if not cfg.enabled:
            return
        now_s = self.clock().timestamp()
        oldest, _ = runaway.window_starts(now_s, cfg)
        async with self.engine.connect() as conn:
            buckets = await store.rate_buckets(conn, oldest)
            active = await outbox.active_anomalies(conn)
        spikes, over = runaway.judge(buckets, active, now_s, cfg)
        for rate in spikes:
            async def start(conn: AsyncConnection, rate: runaway.Rate = rate) -> None:
                if await outbox.start_anomaly(conn, rate.scope, rate.scope_id,
                                              rate.rate_usd_per_min, now_s):
                    log.warning("runaway spend: %s %s at $%.4f/min, %.1fx its baseline",
                                rate.scope, rate.scope_id, rate.rate_usd_per_min, rate.factor)
                    if await outbox.add(conn, runaway.effects(rate, cfg, self.source, now_s), now_s):
                        self.outbox_ready.set()
            await self.transaction(start)
        if over:
            await self.transaction(lambda conn: outbox.end_anomalies(conn, over))

    # --- `lifeline spend` -----------------------------------------------------------------------

    async def spend_report(self, query: SpendQuery) -> SpendReport:
        now = self.clock()
        day = periods.epoch(periods.start_of("day", now))
        month = periods.epoch(periods.start_of("month", now))
        l = tables.ledger.c
        async with self.engine.connect() as conn:
            today = await store.counters_in(conn, "day", day)
            this_month = await store.counters_in(conn, "month", month)
            held = await store.pending(conn)
            states = await outbox.states(conn)
            in_flight = await store.in_flight(conn)
            rows = await conn.execute(
                select(l.provider, l.model, func.sum(l.counted_usd))
                .where(l.occurred_at >= periods.start_of("day", now)).group_by(l.provider, l.model))
            by_model = {f"{p}/{m}": usd or 0.0 for p, m, usd in rows if p}
        return report.build(policy=self.policy, today=today, month=this_month, pending=held,
                            states=states, now=now, by_model=by_model, in_flight=in_flight,
                            top=query.top)

    # --- plumbing -------------------------------------------------------------------------------

    async def transaction(self, work: Callable[[AsyncConnection], Awaitable[T]],
                           engine: AsyncEngine | None = None, attempts: int = 5) -> T:
        for attempt in range(attempts):
            try:
                async with (engine or self.engine).begin() as conn:
                    return await work(conn)
            except DBAPIError as e:
                if attempt == attempts - 1 or not _retryable(e):
                    raise
                log.info("retrying a cost-guard transaction after %s", type(e.orig).__name__)
                await asyncio.sleep(0.01 * 2 ** attempt)
        raise AssertionError("unreachable")


def _retryable(e: DBAPIError) -> bool:
    if e.connection_invalidated:  # a connection the database had closed: a fresh one may work
        return True
    state = getattr(e.orig, "sqlstate", None) or getattr(e.orig, "pgcode", None)
    return state in RETRIED_SQLSTATES or "database is locked" in str(e.orig)


def _no_rows(killed_keys: dict[str, str]) -> Snapshot:
    return Snapshot(killed_keys=dict(killed_keys))
