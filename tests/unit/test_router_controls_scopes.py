"""The control KV as the router reads it (router/controls.py): every scope, release by delete."""

import pytest
from pydantic import ValidationError

from schemas.completion import CompletionRequest
from schemas.control import Downgrade, Killswitch
from services.router.controls import Controls

ON = Killswitch(engaged=True, reason="runaway").model_dump_json().encode()
OFF = Killswitch(engaged=False).model_dump_json().encode()


def req(**kw) -> CompletionRequest:
    return CompletionRequest(messages=[{"role": "user", "content": "hi"}], **kw)


def test_the_global_switch_blocks_everything_until_released_or_deleted():
    c = Controls()
    assert c.apply("killswitch", ON) == "kill switch (all) ENGAGED: runaway"
    assert c.blocked(req(route="any", key_id="k")) == "runaway"
    assert c.apply("killswitch", OFF) == "kill switch (all) released"
    assert c.blocked(req()) is None
    c.apply("killswitch", ON)
    c.apply("killswitch", None)  # a deleted key releases
    assert c.blocked(req()) is None


def test_a_route_switch_blocks_that_route_only():
    c = Controls()
    assert c.apply("killswitch.route.chat", ON) == "kill switch (route chat) ENGAGED: runaway"
    assert c.blocked(req(route="chat")) == "runaway"
    assert c.blocked(req(route="summaries")) is None
    c.apply("killswitch.route.chat", None)
    assert c.blocked(req(route="chat")) is None


def test_a_key_switch_blocks_that_api_key_only():
    c = Controls()
    assert c.apply("killswitch.key.k-123", ON) == "kill switch (key k-123) ENGAGED: runaway"
    assert c.blocked(req(key_id="k-123")) == "runaway"
    assert c.blocked(req(key_id="k-456")) is None and c.blocked(req()) is None


def test_a_downgrade_flag_is_held_per_route():
    c = Controls()
    on = Downgrade(active=True, reason="monthly budget at 100 %").model_dump_json().encode()
    assert c.apply("downgrade.chat", on) == "downgrade of route chat ON: monthly budget at 100 %"
    assert c.downgraded == {"chat": "monthly budget at 100 %"}
    c.apply("downgrade.chat", Downgrade(active=False).model_dump_json().encode())
    assert c.downgraded == {}


def test_a_value_that_does_not_parse_changes_nothing():
    c = Controls()
    c.apply("killswitch.route.chat", ON)
    with pytest.raises(ValidationError):
        c.apply("killswitch.route.chat", b"{engaged: nope")
    assert c.blocked(req(route="chat")) == "runaway"


def test_keys_that_are_not_ours_are_ignored():
    assert Controls().apply("limits.user.u1", b"{}") is None
