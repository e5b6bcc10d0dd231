"""What the `lifeline` command says to the bus and to the simulator."""

import asyncio
import json
from typing import Any

import aiohttp
import nats
from nats.errors import NoRespondersError, NoServersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import NotFoundError

from schemas import subjects
from schemas.streams import STREAMS


class CliError(Exception):
    """Something the operator can act on; printed without a traceback."""


async def _quiet(error: Exception) -> None:
    """nats-py logs every failed connect with a traceback; the CLI says it once, plainly."""


async def _connect(url: str) -> nats.NATS:
    # max_reconnect_attempts must be positive: nats-py reads 0 as "retry for ever".
    try:
        # NATS_URL may list a cluster's nodes, comma-separated (docker-compose.yml).
        return await nats.connect(url.split(","), connect_timeout=2, max_reconnect_attempts=1,
                                  reconnect_time_wait=0.2, allow_reconnect=False, error_cb=_quiet)
    except (NoServersError, OSError):
        raise CliError(f"cannot reach NATS at {url}; is the mesh up? (make run)") from None


async def ask(url: str, request: dict[str, Any], *, timeout: float) -> dict[str, Any]:
    nc = await _connect(url)
    try:
        msg = await nc.request(subjects.LLM_COMPLETE, json.dumps(request).encode(), timeout=timeout)
    except NoRespondersError:
        raise CliError("no router is serving llm.complete; is the mesh up? (make run)") from None
    except NatsTimeout:
        raise CliError(f"no answer within {timeout:g}s") from None
    finally:
        await nc.close()
    return json.loads(msg.data)


async def status(url: str, *, listen: float) -> dict[str, Any]:
    nc = await _connect(url)
    services: dict[str, dict[str, Any]] = {}

    async def on_beat(msg: Any) -> None:
        beat = json.loads(msg.data)
        services.setdefault(beat["service"], {})[beat["instance"]] = {
            "health_url": beat.get("health_url"), "in_flight": beat.get("in_flight", 0),
            "started_at": beat.get("started_at"),
        }

    sub = await nc.subscribe(f"{subjects.SERVICE_HEARTBEAT_PREFIX}.>", cb=on_beat)
    js = nc.jetstream()
    streams = {}
    for spec in STREAMS:
        try:
            state = (await js.stream_info(spec.name)).state
            streams[spec.name] = {"messages": state.messages, "bytes": state.bytes}
        except NotFoundError:
            streams[spec.name] = None
    await asyncio.sleep(listen)  # heartbeats arrive every interval: listen for one
    await sub.unsubscribe()
    await nc.close()
    return {"bus": {"url": url, "connected": True}, "streams": streams, "services": services}


async def simulator_vendors(sim_url: str) -> dict[str, Any] | None:
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s:
            async with s.get(f"{sim_url}/_sim/vendors") as r:
                return (await r.json())["vendors"]
    except (aiohttp.ClientError, TimeoutError):
        return None


async def set_chaos(sim_url: str, vendor: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s:
            async with s.put(f"{sim_url}/_sim/vendors/{vendor}", json=body) as r:
                data = await r.json(content_type=None)
                if r.status != 200:
                    raise CliError(f"simulator refused: {data.get('error', data)}")
                return data
    except (aiohttp.ClientError, TimeoutError) as e:
        raise CliError(f"cannot reach the simulator at {sim_url} ({e}); is the mesh up?") from None
