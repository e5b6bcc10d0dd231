"""What a snapshot takes from the bus, and gives back on restore: KV buckets, the STATUS stream's
recent history, and the LLM_EVENTS sequence the database covers."""

import base64
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, NotFoundError

from schemas.backup import CONFIG_KEY
from schemas.streams import CONFIG, LLM_EVENTS, STATUS
from services.runtime.bus import MSG_ID
from services.runtime.ranges import read_stream

log = logging.getLogger(__name__)

KV_OPERATION = "KV-Operation"  # DEL or PURGE on a deletion marker


@dataclass
class Coverage:
    seq: int  # every LLM_EVENTS event up to here is in the database
    last_seq: int  # the stream's last sequence then
    floors: dict[str, int] = field(default_factory=dict)


async def covered_seq(js: JetStreamContext, consumers: list[str]) -> Coverage:
    """Read BEFORE the export begins. Each ingesting service acks an event only after it is
    committed, so a durable consumer's ack floor bounds what its tables hold; the lowest floor
    over the ingesting consumers is a sequence up to which the database is complete (a replay
    from there may repeat events, which ingest skips, and misses none). With no such consumer
    (nothing ingests), the stream's last sequence."""
    try:
        info = await js.stream_info(LLM_EVENTS.name)
    except NotFoundError:
        return Coverage(0, 0)
    last = info.state.last_seq  # read before the consumers (see below)
    floors = {}
    for name in consumers:
        try:
            consumer = await js.consumer_info(LLM_EVENTS.name, name)
        except NotFoundError:
            continue  # that service is not deployed: it holds nothing from the stream
        if not consumer.num_pending and not consumer.num_ack_pending:
            # Caught up: everything stored when `last` was read has been acked (a consumer
            # whose filter matched nothing yet has an ack floor of 0, which would say less).
            floors[name] = last
        else:
            floors[name] = consumer.ack_floor.stream_seq if consumer.ack_floor else 0
    return Coverage(min(floors.values()) if floors else last, last, floors)


def _value(data: bytes | None) -> dict[str, Any]:
    if not data:
        return {"value": ""}
    try:
        return {"value": data.decode()}
    except UnicodeDecodeError:
        return {"value_b64": base64.b64encode(data).decode()}


def _bytes(row: dict[str, Any]) -> bytes:
    if "value_b64" in row:
        return base64.b64decode(row["value_b64"])
    return str(row.get("value", "")).encode()


async def export_kv(js: JetStreamContext, bucket: str, *, history: bool) -> list[dict[str, Any]]:
    """Every revision (history) or each key's current one, oldest first; deletions included
    as markers so a restored history reads the same."""
    prefix = f"$KV.{bucket}."
    rows = []
    try:
        async for msgs in read_stream(js, f"KV_{bucket}", last_per_subject=not history):
            for msg in msgs:
                op = (msg.headers or {}).get(KV_OPERATION, "PUT")
                if not history and op != "PUT":
                    continue  # a deleted key is not state
                rows.append({"key": msg.subject.removeprefix(prefix), "op": op,
                             "revision": msg.metadata.sequence.stream,
                             "at": msg.metadata.timestamp.isoformat(), **_value(msg.data)})
    except NotFoundError:
        return []  # the bucket was never created: nothing to keep
    return rows


async def current_kv(js: JetStreamContext, bucket: str) -> dict[str, bytes]:
    """Each key's current value. Read from the bucket's stream like an export, not with
    `kv.keys()`: nats-py's watcher can report "no keys" when its consumer info arrives before the
    first message it already received (seen under load), and a restore would then take a bucket
    that holds keys for an empty one."""
    return {row["key"]: _bytes(row) for row in await export_kv(js, bucket, history=False)}


async def restore_kv(js: JetStreamContext, bucket: str, rows: list[dict[str, Any]], *,
                     force: bool) -> str:
    """An empty bucket gets the snapshot's revisions in order (history: every one, deletions
    too). A bucket that holds keys is left as it is (`kept`), unless `force`: then it is made
    to hold exactly the snapshot's current values. Returns what was done."""
    kv = await js.key_value(bucket)
    now = await current_kv(js, bucket)
    if now and not force:
        return "kept"
    if now:
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:
            latest[row["key"]] = row
        wanted = {k: _bytes(r) for k, r in latest.items() if r["op"] == "PUT"}
        for key in now.keys() - wanted.keys():
            await kv.delete(key)
        for key, value in wanted.items():
            if now.get(key) != value:
                await kv.put(key, value)
        return "replaced"
    for row in rows:
        if row["op"] == "PUT":
            await kv.put(row["key"], _bytes(row))
        else:
            await kv.delete(row["key"])
    return "restored"


async def export_status(js: JetStreamContext, since: datetime) -> list[dict[str, Any]]:
    rows = []
    try:
        async for msgs in read_stream(js, STATUS.name, since=since):
            for msg in msgs:
                rows.append({"seq": msg.metadata.sequence.stream, "subject": msg.subject,
                             "at": msg.metadata.timestamp.isoformat(),
                             "headers": dict(msg.headers or {}), **_value(msg.data)})
    except NotFoundError:
        return []
    return rows


async def restore_status(js: JetStreamContext, rows: list[dict[str, Any]]) -> int:
    """Republishes the history into an empty STATUS stream (a new bus); a stream that holds
    events already keeps them (and the snapshot's are not added twice). Returns events sent."""
    info = await js.stream_info(STATUS.name)
    if info.state.messages:
        return 0
    for row in rows:
        headers = {k: v for k, v in row.get("headers", {}).items() if not k.startswith("Nats-")}
        if msg_id := row.get("headers", {}).get(MSG_ID):
            headers[MSG_ID] = msg_id
        await js.publish(row["subject"], _bytes(row), headers=headers or None)
    return len(rows)


async def publish_config(js: JetStreamContext, data: bytes) -> bool:
    """Puts the active lifeline.yaml into the `config` bucket when it differs from the newest
    revision there: the configuration's history. True when a new revision was written."""
    kv = await js.key_value(CONFIG.name)
    try:
        current = await kv.get(CONFIG_KEY)
        if current.value == data:
            return False
    except KeyNotFoundError:
        pass
    await kv.put(CONFIG_KEY, data)
    return True
