"""The router's Admission port on the bus: ask the cost guard before any provider call.

`admit` sends cost.reserve (request-reply, queue group "cost-guard") with the request's estimated
cost: the first member's prices x (estimated input tokens + max_tokens, or a default). The cost
guard decides against SQL shared by every cost-guard instance, so budgets and limits hold across
router instances. `settle` publishes cost.settle with the real cost (fire and forget: if it is
lost, the ledger's llm.completed replaces the reservation anyway, or it expires).

When no cost guard answers within the timeout, the request goes ahead (`on_unreachable: open`,
the default: a cost-guard outage must not become an outage) or is refused (`closed`). Either way
it is logged once per outage, not per request; while it lasts, one request a second asks again
and the others do not wait for a timeout they would meet too.
"""

import logging
import time
from collections.abc import Callable

from nats.aio.client import Client
from nats.errors import Error as NatsError
from prometheus_client import CollectorRegistry, Histogram
from pydantic import ValidationError

from schemas import subjects
from schemas.completion import CompletionRequest, ErrorKind, ResultError, Usage
from schemas.costs import ReserveReply, ReserveRequest, Settle
from services.runtime.config import LifelineConfig
from services.runtime.config.budgets import AdmissionConfig

from .logic import Member, cost_usd
from .ports import Reservation

log = logging.getLogger(__name__)

HOLD_MARGIN_S = 30.0  # an unsettled reservation outlives the request's deadline by this much
PROBE_EVERY_S = 1.0  # while the cost guard is unreachable, one request this often asks again


def estimate(request: CompletionRequest, first: Member, cfg: AdmissionConfig) -> tuple[float, int]:
    """(USD, tokens) the request may cost at its first member's prices: an upper bound when the
    caller set max_tokens, a fair guess otherwise."""
    chars = sum(len(m.content) for m in request.messages)
    input_tokens = int(chars / cfg.chars_per_token) + 4 * len(request.messages)  # role overhead
    output_tokens = request.max_tokens or cfg.default_output_tokens
    usd = cost_usd(first.prices, Usage(input_tokens=input_tokens, output_tokens=output_tokens))
    return usd, input_tokens + output_tokens


class _Reserved:
    def __init__(self, connection: Client, request_id: str, timeout_s: float,
                 downgrade: str | None = None) -> None:
        self.connection = connection
        self.request_id = request_id
        self.timeout_s = timeout_s
        self.downgrade = downgrade

    async def settle(self, cost_usd: float) -> None:
        body = Settle(request_id=self.request_id, cost_usd=max(cost_usd, 0.0))
        try:
            await self.connection.request(subjects.COST_SETTLE, body.model_dump_json().encode(),
                                          timeout=self.timeout_s)
        except NatsError as e:  # the ledger settles it when llm.completed arrives
            log.debug("cost.settle for %s not confirmed: %r", self.request_id, e)


class _Unreserved:
    """Nothing was reserved (no budget or limit applies, or the cost guard was not asked)."""

    downgrade = None

    async def settle(self, cost_usd: float) -> None:
        return None


_NOTHING = _Unreserved()


class BusAdmission:
    def __init__(self, config: LifelineConfig, connection: Callable[[], Client], *,
                 registry: CollectorRegistry | None = None) -> None:
        self.config = config
        self.cfg = config.budgets.admission
        self.connection = connection  # the service's NATS client, once it is connected
        self.enforced = config.budgets.enforced
        self.unreachable_since: float | None = None
        self.last_probe = 0.0
        self.seconds = Histogram(
            "lifeline_router_admission_seconds", "cost.reserve round trip, as the router sees it",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=registry) if registry is not None else None

    async def admit(self, request: CompletionRequest, members: list[Member]) -> Reservation | ResultError:
        if not self.enforced:  # nothing configured that could refuse: no round trip
            return _NOTHING
        if self.unreachable_since is not None:
            if time.monotonic() - self.last_probe < PROBE_EVERY_S:
                return self._unchecked()
            self.last_probe = time.monotonic()  # this request is the probe
        usd, tokens = estimate(request, members[0], self.cfg)
        route = self.config.routes[request.route]
        deadline_ms = min(request.deadline_ms or route.deadline_ms, route.deadline_ms)
        ask = ReserveRequest(request_id=request.request_id, route=request.route,
                             user_id=request.user_id, key_id=request.key_id,
                             team_id=request.team_id, estimate_usd=usd, estimate_tokens=tokens,
                             hold_s=deadline_ms / 1000 + HOLD_MARGIN_S)
        started = time.perf_counter()
        try:
            connection = self.connection()  # raises while the router connects or stops
            msg = await connection.request(subjects.COST_RESERVE, ask.model_dump_json().encode(),
                                           timeout=self.cfg.timeout_ms / 1000)
            reply = ReserveReply.model_validate_json(msg.data)
        except (NatsError, ValidationError) as e:  # no responders, timeout, connection closed
            return self._unreachable(e)
        finally:
            if self.seconds is not None:
                self.seconds.observe(time.perf_counter() - started)
        if self.unreachable_since is not None:
            log.warning("cost guard answering again after %.1fs",
                        time.monotonic() - self.unreachable_since)
            self.unreachable_since = None
        if not reply.admitted:
            return reply.error or ResultError(kind=ErrorKind.LIMITED, message="refused by the cost guard")
        if not reply.reserved:
            return _NOTHING
        return _Reserved(connection, request.request_id, self.cfg.timeout_ms / 1000, reply.downgrade)

    def _unreachable(self, error: Exception) -> Reservation | ResultError:
        if self.unreachable_since is None:
            self.unreachable_since = self.last_probe = time.monotonic()
            log.error("cost guard unreachable (%r): requests are %s until it answers", error,
                      "let through unchecked" if self.cfg.on_unreachable == "open" else "refused")
        return self._unchecked()

    def _unchecked(self) -> Reservation | ResultError:
        if self.cfg.on_unreachable == "open":
            return _NOTHING
        return ResultError(kind=ErrorKind.BUDGET_EXHAUSTED, retry_after_s=PROBE_EVERY_S, message=(
            "spend limits cannot be checked right now (cost guard unreachable) and this "
            "deployment refuses unchecked requests; try again shortly"))
