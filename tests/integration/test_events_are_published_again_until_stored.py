"""runtime.bus.publish_events on a real nats-server: an event its stream cannot take yet (no
stream leader, here no stream at all) is sent again with the same message id until it is stored
or the time is up; stored once whatever the number of sends; and an error that sending again
cannot mend is returned at once."""

import asyncio
import time

import nats
from nats.errors import MaxPayloadError
from nats.js.api import StreamConfig
from nats.js.errors import NoStreamResponseError

from services.runtime.bus import publish_events


async def test_an_event_is_stored_once_the_stream_can_take_it(nc: nats.NATS):
    js = nc.jetstream()
    events = [("deploytest.a", b"first", "event-1"), ("deploytest.b", b"second", "event-2")]
    sending = asyncio.create_task(publish_events(js, events, timeout=10))
    await asyncio.sleep(0.5)  # a stream leader that takes its time to be elected
    assert not sending.done()
    created = time.monotonic()
    await js.add_stream(StreamConfig(name="DEPLOYTEST", subjects=["deploytest.>"]))
    assert await sending == [None, None]
    print(f"\nstored {time.monotonic() - created:.2f}s after the stream could take them")
    assert time.monotonic() - created < 1.0  # the pause between sends is at most 0.5 s

    assert await publish_events(js, events) == [None, None]  # again: a no-op for the stream
    assert (await js.stream_info("DEPLOYTEST")).state.messages == 2


async def test_sending_again_stops_when_the_time_is_up(nc: nats.NATS):
    started = time.monotonic()
    [failure] = await publish_events(nc.jetstream(), [("nostream.x", b"x", "e")], timeout=1.0)
    assert isinstance(failure, NoStreamResponseError)
    assert 1.0 <= time.monotonic() - started < 2.0


async def test_an_error_that_sending_again_cannot_mend_is_returned_at_once(nc: nats.NATS):
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="DEPLOYTEST", subjects=["deploytest.>"]))
    started = time.monotonic()
    big, ok = await publish_events(js, [("deploytest.big", b"x" * (nc.max_payload + 1), "big"),
                                        ("deploytest.ok", b"fine", "ok")], timeout=10)
    assert isinstance(big, MaxPayloadError) and ok is None
    assert time.monotonic() - started < 1.0
