"""Provisioning is idempotent and upgrades an older deployment's streams in place."""

from nats.js.api import KeyValueConfig, StreamConfig

from schemas.streams import BUCKETS, STATUS, STREAMS
from services.runtime.bus import provision


async def test_first_run_creates_everything_second_run_changes_nothing(nc):
    js = nc.jetstream()
    first = await provision(js)
    assert set(first.values()) == {"created"}
    assert len(first) == len(STREAMS) + len(BUCKETS)
    assert set((await provision(js)).values()) == {"unchanged"}
    info = await js.stream_info("LLM_QUEUE")
    assert info.config.retention == "workqueue"
    assert (await js.stream_info("KV_control")).config.max_msgs_per_subject == 64


async def test_an_older_stream_and_bucket_are_updated_and_keep_their_messages(nc):
    js = nc.jetstream()
    # What an older release might have left behind: fewer subjects, shorter age, less history.
    await js.add_stream(StreamConfig(name=STATUS.name, subjects=["provider.>"], max_age=60.0))
    await js.publish("provider.down", b'{"provider": "openai"}')
    await js.create_key_value(KeyValueConfig(bucket="control", history=1))
    await (await js.key_value("control")).put("killswitch", b"off")

    done = await provision(js)

    assert done["STATUS"] == "updated" and done["KV_control"] == "updated"
    status = await js.stream_info(STATUS.name)
    assert sorted(status.config.subjects) == sorted(STATUS.subjects)
    assert status.config.max_age == STATUS.max_age
    assert status.state.messages == 1
    assert (await js.stream_info("KV_control")).config.max_msgs_per_subject == 64
    assert (await (await js.key_value("control")).get("killswitch")).value == b"off"


async def test_a_publish_with_the_same_msg_id_is_stored_once(nc):
    js = nc.jetstream()
    await provision(js)
    for _ in range(3):
        await js.publish("llm.completed", b"{}", headers={"Nats-Msg-Id": "req-1"})
    assert (await js.stream_info("LLM_EVENTS")).state.messages == 1
