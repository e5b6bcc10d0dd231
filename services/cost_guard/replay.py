"""cost.replay: after a restore, record a range of LLM_EVENTS in the ledger again (point-in-time
recovery).

The range (llm.completed and llm.attempt, in stream order) is read with a consumer of its own
(services/runtime/ranges.py); the durable ledger consumers stay where live ingest left them. The
charges go through Guard.record, the ledger's own idempotent path (a row id already recorded adds
nothing; attempts and their completion count once), so replaying a range twice changes nothing.
"""

from nats.js import JetStreamContext
from pydantic import ValidationError

from schemas import subjects
from schemas.backup import ReplayReply, ReplayRequest
from schemas.events import LlmAttempt, LlmCompleted
from schemas.streams import LLM_EVENTS
from services.runtime.ranges import read_range

from . import ledger
from .guard import Guard


async def replay(js: JetStreamContext, guard: Guard, request: ReplayRequest) -> ReplayReply:
    span = await read_range(js, LLM_EVENTS.name, from_seq=request.from_seq,
                            to_time=request.to_time, limit=request.batch,
                            subjects=[subjects.LLM_COMPLETED, subjects.LLM_ATTEMPT])
    charges = []
    for msg in span.messages:
        try:
            if msg.subject == subjects.LLM_COMPLETED:
                charge = ledger.completed_charge(LlmCompleted.model_validate_json(msg.data))
            else:
                charge = ledger.attempt_charge(LlmAttempt.model_validate_json(msg.data))
        except ValidationError:
            continue  # live ingest dead-lettered it already
        if charge is not None:
            charges.append(charge)
    recorded = await guard.record(charges)
    return ReplayReply(read=len(span.messages), replayed=recorded.charges,
                       last_seq=span.last_seq, done=span.done)
