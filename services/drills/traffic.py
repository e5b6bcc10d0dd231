"""Steady synthetic traffic through the router, as an application sends it: bounded in rate, in
count and in requests in flight. Every request's fate becomes an `Answer` on the timeline."""

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import nats
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from schemas import subjects

from .timeline import Answer

log = logging.getLogger(__name__)

MAX_LAG_S = 1.0  # a sender that fell this far behind (a loaded machine) skips ahead, never bursts


@dataclass
class Ask:
    """One request to send: the conversation and what is special about it."""

    messages: list[dict[str, str]]
    region: str | None = None
    allow_queue: bool = False
    user_id: str | None = None
    session_id: str | None = None
    check: Callable[[str], bool] | None = None  # is the answer's content right?
    metadata: dict[str, Any] = field(default_factory=dict)


def plain(n: int) -> Ask:
    return Ask([{"role": "user", "content": "Summarise the drill status in one sentence."}])


class Traffic:
    def __init__(self, nc: nats.NATS, *, drill_id: str, route: str, rate: float,
                 max_requests: int, max_in_flight: int, timeout_s: float,
                 clock: Callable[[], float], make: Callable[[int], Ask] = plain,
                 user_id: str | None = None) -> None:
        self.nc = nc
        self.drill_id = drill_id
        self.route = route
        self.rate = rate  # requests per second; a scenario may change it while running
        self.max_requests = max_requests
        self.timeout_s = timeout_s
        self.clock = clock  # drill seconds
        self.make = make
        self.user_id = user_id
        self.answers: list[Answer] = []
        self.on_answer: Callable[[Answer], None] | None = None
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._count = 0  # requests started

    @property
    def sent(self) -> int:
        return self._count

    def start(self) -> None:
        self._sender = asyncio.create_task(self._send_loop())

    async def stop(self) -> None:
        """Stop sending; wait for every request in flight (each is bounded by its timeout)."""
        self._stop.set()
        if self._sender is not None:
            await self._sender
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _send_loop(self) -> None:
        next_at = self.clock()
        while not self._stop.is_set() and self.sent < self.max_requests:
            delay = next_at - self.clock()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._stop.wait(), delay)
                    break
                except TimeoutError:
                    pass
            elif delay < -MAX_LAG_S:
                next_at = self.clock()
            await self._slots.acquire()
            n, self._count = self._count, self._count + 1  # numbered here: tasks start later
            task = asyncio.create_task(self._one(n))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            next_at += 1.0 / self.rate
        if self.sent >= self.max_requests:
            log.warning("drill traffic stopped at max_requests=%d", self.max_requests)

    async def _one(self, n: int) -> None:
        ask = self.make(n)
        answer = Answer(n=n, request_id=f"drill-{self.drill_id}-{n:06d}", sent=self.clock(),
                        region=ask.region, allow_queue=ask.allow_queue)
        self.answers.append(answer)
        body = {"request_id": answer.request_id, "route": self.route, "messages": ask.messages,
                "user_id": ask.user_id or self.user_id, "session_id": ask.session_id,
                "region": ask.region, "allow_queue": ask.allow_queue,
                "metadata": {"drill": self.drill_id, **ask.metadata}}
        try:
            reply = await self.nc.request(subjects.LLM_COMPLETE, json.dumps(body).encode(),
                                          timeout=self.timeout_s)
            _fill(answer, json.loads(reply.data), ask)
        except NatsTimeout:
            answer.status = "timeout"
        except NoRespondersError:
            answer.status = "no_responders"
        except nats.errors.Error as e:  # connection closed or reconnecting: the caller got nothing
            answer.status, answer.error_kind = "disconnected", type(e).__name__
        finally:
            answer.done = self.clock()
            answer.latency_ms = round((answer.done - answer.sent) * 1000, 2)
            self._slots.release()
            if self.on_answer is not None:
                self.on_answer(answer)


def _fill(answer: Answer, result: dict[str, Any], ask: Ask) -> None:
    answer.status = result.get("status", "error")
    answer.tier = result.get("tier")
    answer.provider = result.get("provider")
    answer.model = result.get("model")
    answer.fallback_depth = result.get("fallback_depth")
    answer.answered_by = result.get("answered_by")
    answer.cost_usd = float(result.get("cost_usd") or 0.0)
    answer.ticket = result.get("ticket")
    answer.error_kind = (result.get("error") or {}).get("kind")
    if ask.check is not None and answer.status == "ok":
        answer.right = ask.check(result.get("content") or "")
