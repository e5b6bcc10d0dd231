"""flush() after subscribe proves the server has the subscription (see services/runtime/natsfix.py)."""

import nats

from services.runtime import natsfix

ROUNDS = 300


async def no_responders_after_flushed_subscribe(url: str) -> int:
    """How often a request from another connection finds nobody, right after subscribe + flush."""
    requester, responder = await nats.connect(url), await nats.connect(url)
    misses = 0
    try:
        for i in range(ROUNDS):
            async def answer(msg):
                await msg.respond(b"here")
            sub = await responder.subscribe(f"flush.order.{i}", queue="q", cb=answer)
            await responder.flush()
            try:
                await requester.request(f"flush.order.{i}", b"?", timeout=2)
            except nats.errors.NoRespondersError:
                misses += 1
            await sub.unsubscribe()
    finally:
        await requester.close()
        await responder.close()
    return misses


async def test_flush_orders_after_the_subscription_with_our_fix(nats_server):
    natsfix.apply()
    assert await no_responders_after_flushed_subscribe(nats_server.url) == 0


async def wire_order_of_subscribe_then_flush(url: str) -> list[bytes]:
    """The protocol verbs a client writes for `subscribe(); flush()`, in socket order."""
    nc = await nats.connect(url)
    written: list[bytes] = []
    transport = nc._transport
    write, writelines = transport.write, transport.writelines
    transport.write = lambda data: (written.append(bytes(data)), write(data))[1]
    transport.writelines = lambda lines: ([written.append(bytes(x)) for x in lines], writelines(lines))[1]
    try:
        await nc.subscribe("flush.order")
        await nc.flush()
    finally:
        transport.write, transport.writelines = write, writelines
        await nc.close()
    return [chunk.split(b" ")[0].strip() for chunk in written if chunk.startswith((b"SUB", b"PING"))]


async def test_the_library_bug_is_real_and_our_fix_orders_the_ping(nats_server):
    natsfix.revert()
    try:
        unfixed = await wire_order_of_subscribe_then_flush(nats_server.url)
    finally:
        natsfix.apply()
    fixed = await wire_order_of_subscribe_then_flush(nats_server.url)
    # If this first assertion fails, nats-py fixed its flush: natsfix can go.
    assert unfixed == [b"PING", b"SUB"]
    assert fixed == [b"SUB", b"PING"]
