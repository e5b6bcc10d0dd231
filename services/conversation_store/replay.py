"""conversation.replay: after a restore, re-ingest a range of LLM_EVENTS (point-in-time recovery).

The range is read with a consumer of its own (services/runtime/ranges.py), not the durable one:
the durable consumer's position stays where live ingest left it. Each event goes through the
same decisions and the same idempotent write as live ingest (logic.to_turn, retention,
TurnStore.add: ON CONFLICT (request_id) DO NOTHING, purge tombstones), so a turn the database
holds already is skipped and a purged user's turn stays gone. An event that does not parse is
counted and skipped (live ingest dead-lettered it already).
"""

from collections.abc import Callable
from datetime import datetime

from nats.js import JetStreamContext

from schemas import subjects
from schemas.backup import ReplayReply, ReplayRequest
from schemas.streams import LLM_EVENTS
from services.runtime.config.store import RetentionConfig
from services.runtime.ranges import read_range

from . import logic
from .records import TurnRecord
from .store import TurnStore


async def replay(js: JetStreamContext, store: TurnStore, request: ReplayRequest, *,
                 retention: RetentionConfig, clock: Callable[[], datetime]) -> ReplayReply:
    span = await read_range(js, LLM_EVENTS.name, from_seq=request.from_seq,
                            to_time=request.to_time, limit=request.batch,
                            subjects=[subjects.LLM_COMPLETED])
    now = clock()
    limits = logic.cutoffs(retention, now)
    records: dict[str, TurnRecord] = {}
    for msg in span.messages:
        event = logic.parse_completed(msg.data)
        if isinstance(event, str):
            continue
        record = logic.to_turn(event, stored_at=now)
        if record is not None and not logic.expired(record, limits):
            records.setdefault(record.request_id, record)
    added = await store.add(list(records.values())) if records else None
    return ReplayReply(read=len(span.messages), replayed=len(added.stored) if added else 0,
                       last_seq=span.last_seq, done=span.done)
