"""Point-in-time recovery's second half: each ingesting service replays LLM_EVENTS after the
snapshot's sequence up to the recovery time, through its own request-reply subject
(conversation.replay, cost.replay: schemas/backup.py). The backup agent imports no service; it
asks, a batch at a time, until each says the range is done."""

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

import nats
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from pydantic import ValidationError

from schemas.backup import ReplayReply, ReplayRequest


@dataclass
class Replayed:
    subject: str
    requests: int = 0
    read: int = 0  # events the service read
    replayed: int = 0  # rows it wrote that it did not hold
    last_seq: int = 0
    seconds: float = 0.0
    error: str | None = None


async def replay(nc: nats.NATS, subject: str, *, from_seq: int, to_time: datetime | None,
                 batch: int, wait_s: float, timeout_s: float) -> Replayed:
    done = Replayed(subject, last_seq=from_seq - 1)
    started = time.monotonic()
    seq = from_seq
    while True:
        request = ReplayRequest(from_seq=seq, to_time=to_time, batch=batch)
        reply = await _ask(nc, subject, request, wait_s if done.requests == 0 else timeout_s,
                           timeout_s)
        if isinstance(reply, str):
            done.error = reply
            break
        done.requests += 1
        done.read += reply.read
        done.replayed += reply.replayed
        if reply.error:
            done.error = f"{subject}: {reply.error}"
            break
        done.last_seq = max(done.last_seq, reply.last_seq)
        if reply.done:
            break
        if reply.last_seq < seq:
            done.error = f"{subject}: no progress from sequence {seq}"
            break
        seq = reply.last_seq + 1
    done.seconds = round(time.monotonic() - started, 3)
    return done


async def _ask(nc: nats.NATS, subject: str, request: ReplayRequest, wait_s: float,
               timeout_s: float) -> ReplayReply | str:
    """The reply, or why there is none. Until `wait_s` has passed, nobody answering is waited
    out: after a disaster the services may still be starting."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            msg = await nc.request(subject, request.model_dump_json().encode(), timeout=timeout_s)
        except NoRespondersError:
            if time.monotonic() >= deadline:
                return (f"nobody answered {subject} within {wait_s:g}s: start the service that "
                        "serves it, then restore again (replay is idempotent)")
            await asyncio.sleep(0.25)
            continue
        except NatsTimeout:
            return f"{subject}: no answer within {timeout_s:g}s"
        try:
            return ReplayReply.model_validate_json(msg.data)
        except ValidationError as e:
            return f"{subject}: not a ReplayReply: {e.errors()[0]['msg']}"
