"""A process dies under load: one instance of a service (SIGKILL), or one node of the NATS cluster.

The drill kills; it does not restart (that is the supervisor's job: systemd, Kubernetes, compose's
restart policy). How it finds the process: `--pid`, or for a service the instance name
(LIFELINE_INSTANCE, set by `lifeline up` and the mesh) looked up in /proc on this host, or for a
bus node its client port (`--node-port`, a nats-server started with `-p PORT`).
"""

import asyncio
import json
import uuid
from typing import ClassVar
from urllib.parse import urlparse

from nats.errors import Error as NatsError
from nats.js.errors import NotFoundError

from schemas import subjects
from schemas.streams import LLM_EVENTS, LLM_RESULTS

from .. import faults, measure
from ..bus import DrillError
from ..context import DrillContext
from ..verdict import Check
from .base import Outcome, common, tiers


class ServiceCrash:
    name: ClassVar[str] = "service-crash"
    summary: ClassVar[str] = "SIGKILL one instance of a service under load"
    runbook: ClassVar[str] = "bus-or-database-loss.md"

    async def victim(self, ctx: DrillContext) -> tuple[str, int]:
        service = ctx.options.service
        alive = sorted((await ctx.bus.instances(ctx.settings.heartbeat_interval + 0.5)).get(service, ()))
        instance = ctx.options.instance or (alive[-1] if alive else None)
        if ctx.options.pid is not None:
            return instance or f"pid {ctx.options.pid}", ctx.options.pid
        if instance is None:
            raise DrillError(f"no instance of {service} is beating on the bus")
        if ctx.options.instance is None and len(alive) < 2:
            raise DrillError(f"only one {service} is running ({instance}): killing it is an outage, "
                             "not a drill (run two: lifeline up --routers 2), or name it with --instance")
        return instance, faults.find_service_pid(instance, "services." + service.replace("-", "_"))

    async def run(self, ctx: DrillContext) -> None:
        instance, pid = await self.victim(ctx)
        ctx.facts.update(instance=instance, pid=pid)
        ctx.traffic()
        await ctx.hold(ctx.warmup)
        ctx.mark("fault")
        faults.kill(pid)
        ctx.note(f"SIGKILL {ctx.options.service} {instance} (pid {pid})")
        await ctx.hold(ctx.duration)
        ctx.facts["died"] = not faults.alive(pid)
        ctx.mark("cleared")
        await ctx.stop_traffic()
        await ctx.bus.wait_status(subjects.SERVICE_DOWN, 5.0, after=ctx.timeline.marks["fault"],
                                  where=lambda e: e.body.get("instance") == instance)

    def measure(self, ctx: DrillContext) -> Outcome:
        tl = ctx.timeline
        killed = tl.marks["fault"]
        instance = ctx.facts.get("instance")
        down = measure.first_event(tl.events, subjects.SERVICE_DOWN, killed,
                                   lambda e: e.body.get("instance") == instance)
        figures = {
            **common(ctx),
            "instance": instance,
            "detection_s": measure.since(down, killed),
            "rto_s": measure.rto(tl.answers, killed, lambda a: a.status == "ok"),
            "lost_replies": measure.count(tl.answers, lambda a: a.status == "timeout"),
        }
        checks = {"process_died": Check(bool(ctx.facts.get("died")), f"pid {ctx.facts.get('pid')}")}
        return Outcome(figures, checks, tiers(ctx))


class BusNodeLoss:
    name: ClassVar[str] = "bus-node-loss"
    summary: ClassVar[str] = "SIGKILL one node of the 3-node NATS cluster under load"
    runbook: ClassVar[str] = "bus-or-database-loss.md"

    async def check_cluster(self, ctx: DrillContext) -> None:
        try:
            info = await ctx.bus.js.stream_info(LLM_EVENTS.name)
        except NotFoundError:
            raise DrillError("no LLM_EVENTS stream: is the mesh up?") from None
        if info.config.num_replicas < 3:
            raise DrillError(f"LLM_EVENTS has {info.config.num_replicas} replica(s): bus-node-loss "
                             "needs a 3-node cluster with LIFELINE_STREAM_REPLICAS=3")

    def node_pid(self, ctx: DrillContext) -> tuple[int, int | None]:
        if ctx.options.pid is not None:
            return ctx.options.pid, ctx.options.node_port
        port = ctx.options.node_port or urlparse(str(ctx.bus.nc.connected_url.geturl())).port
        if port is None:
            raise DrillError("cannot tell which node to kill: pass --node-port or --pid")
        return faults.find_nats_pid(port), port

    async def run(self, ctx: DrillContext) -> None:
        await self.check_cluster(ctx)
        pid, port = self.node_pid(ctx)
        ctx.facts.update(pid=pid, node_port=port)
        ctx.traffic()
        parker = asyncio.create_task(self.park(ctx))
        await ctx.hold(ctx.warmup)
        ctx.mark("fault")
        faults.kill(pid)
        ctx.note(f"SIGKILL nats-server pid {pid} (port {port})")
        await ctx.hold(ctx.duration)
        killed = ctx.timeline.marks["fault"]
        while not self.writes_back(ctx, killed) and ctx.now() - killed < ctx.recovery_timeout:
            await ctx.hold(0.25)  # JetStream's election may outlast the drill's duration
        ctx.mark("cleared")
        ctx.facts["parking"] = False
        await parker
        await ctx.stop_traffic()
        await self.results(ctx)

    @staticmethod
    def writes_back(ctx: DrillContext, since: float) -> bool:
        """An acknowledged write after the last failed one since `since`."""
        tries = [(t, ok) for t, ok in ctx.facts.get("writes", []) if t >= since]
        return bool(tries) and tries[-1][1]

    async def park(self, ctx: DrillContext) -> None:
        """Acknowledged writes: requests stored in the durable queue (PubAck), each of which must
        get its answer on llm.result.<id> whatever node dies."""
        acked: dict[str, float] = {}
        writes: list[tuple[float, bool]] = []  # (when it was tried, acknowledged)
        ctx.facts.update(acked=acked, writes=writes, parking=True)
        n = 0
        while ctx.facts["parking"]:
            rid = f"drill-{ctx.drill_id}-q{n:05d}-{uuid.uuid4().hex[:6]}"
            body = {"request_id": rid, "route": ctx.route_name, "priority": "interactive",
                    "messages": [{"role": "user", "content": f"Drill parked request {n}."}],
                    "metadata": {"drill": ctx.drill_id}}
            at = ctx.now()
            try:
                await ctx.bus.js.publish(subjects.LLM_QUEUE_INTERACTIVE, json.dumps(body).encode(),
                                         headers={"Nats-Msg-Id": rid}, timeout=2)
                acked[rid] = at
                writes.append((at, True))
            except (NatsError, TimeoutError) as e:  # not acknowledged: not a promise
                writes.append((at, False))
                ctx.facts.setdefault("write_errors", {}).setdefault(type(e).__name__, repr(e)[:200])
            n += 1
            await asyncio.sleep(2 / ctx.rate)

    async def results(self, ctx: DrillContext) -> None:
        waiting = dict(ctx.facts.get("acked", {}))
        deadline = ctx.now() + ctx.recovery_timeout
        while waiting and ctx.now() < deadline:
            for rid in list(waiting):
                try:
                    if await ctx.bus.last_on(LLM_RESULTS.name, subjects.llm_result(rid)) is not None:
                        waiting.pop(rid)
                except (NatsError, TimeoutError):
                    break  # the cluster is still electing: ask again
            if waiting:
                await asyncio.sleep(0.5)
        ctx.facts["lost_times"] = list(waiting.values())

    def measure(self, ctx: DrillContext) -> Outcome:
        tl = ctx.timeline
        killed = tl.marks["fault"]
        acked = ctx.facts.get("acked", {})
        lost = len(ctx.facts.get("lost_times", []))
        writes = [(t, ok) for t, ok in ctx.facts.get("writes", []) if t >= killed]
        failed = [t for t, ok in writes if not ok]
        back = [t for t, ok in writes if ok and (not failed or t > failed[-1])]
        figures = {
            **common(ctx),
            "rto_s": measure.rto(tl.answers, killed, lambda a: a.status == "ok"),
            "queue_acked": len(acked),
            "queue_answered": len(acked) - lost,
            "queue_lost": lost,
            "write_failures": len(failed),
            # The kill -> JetStream takes writes again (a stream leader lost: an election).
            "write_recovery_s": (0.0 if not failed else measure.since(back[0], killed) if back
                                 else None),
        }
        # What JetStream acknowledged is the promise here. An answer whose llm.completed could not
        # be stored (the router answers anyway) is counted apart, as `unrecorded`.
        figures["lost"] = lost
        figures["rpo_s"] = measure.rpo(ctx.facts.get("lost_times", []), killed)
        if figures["unrecorded"]:
            ctx.note(f"{figures['unrecorded']} answers were given while their llm.completed could not "
                     "be stored: spend and history miss them")
        checks = {"nothing_acknowledged_lost": Check(
            lost == 0, f"{lost} of {len(acked)} acknowledged parked requests without an answer")}
        return Outcome(figures, checks, {**tiers(ctx), "write_errors": ctx.facts.get("write_errors", {})})
