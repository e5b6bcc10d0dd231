"""The /_sim control API shows and switches vendor state, validating what it is given.

Uses: the real simulator app on a free port, raw aiohttp.
"""

from typing import Any

import aiohttp
import pytest

from services.simulator.app import build_app
from services.simulator.server import RunningSimulator, running

OPENAI_HEADERS = {"Authorization": "Bearer k"}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def _fresh(name: str, fmt: str, window: int) -> dict[str, Any]:
    return {
        "name": name, "format": fmt, "mode": "ok", "latency_ms": 0, "error_rate": 0.3, "retry_after_s": 1,
        "cut_after": 3, "chunk_delay_ms": 0, "context_window": None, "effective_context_window": window,
        "for_s": None,
        "remaining_s": None, "requests": {"total": 0, "by_status": {}, "by_model": {}},
    }


async def _json(response: aiohttp.ClientResponse) -> Any:
    return await response.json()


async def test_vendors_start_ok_with_zero_counters(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{sim.url}/_sim/vendors") as r:
        assert r.status == 200
        assert await r.json() == {"vendors": {
            "openai": _fresh("openai", "openai", 128_000),
            "anthropic": _fresh("anthropic", "anthropic", 200_000),
            "local": _fresh("local", "openai", 128_000),
        }}
    async with http.get(f"{sim.url}/_sim/vendors/anthropic") as r:
        assert await r.json() == _fresh("anthropic", "anthropic", 200_000)


async def test_put_replaces_the_settings_and_returns_the_new_state(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    async with http.put(f"{sim.url}/_sim/vendors/openai",
                        json={"mode": "flaky", "error_rate": 0.5, "context_window": 64, "for_s": 12.5}) as r:
        assert r.status == 200
        state = await r.json()
    assert {k: state[k] for k in ("mode", "error_rate", "context_window", "effective_context_window", "for_s")} == {
        "mode": "flaky", "error_rate": 0.5, "context_window": 64, "effective_context_window": 64, "for_s": 12.5}
    assert 0 < state["remaining_s"] <= 12.5
    # A PUT replaces: what is left out goes back to its default.
    async with http.put(f"{sim.url}/_sim/vendors/openai", json={"mode": "down"}) as r:
        state = await r.json()
    assert (state["mode"], state["error_rate"], state["context_window"], state["for_s"]) == ("down", 0.3, None, None)


async def test_slow_without_latency_defaults_to_one_second(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    async with http.put(f"{sim.url}/_sim/vendors/local", json={"mode": "slow"}) as r:
        assert (await r.json())["latency_ms"] == 1000


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"mode": "exploded"}, "mode",
         ["'ok'", "'down'", "'refuse'", "'slow'", "'ratelimit'", "'flaky'", "'garbage'", "'cut'"]),
        ({}, "mode", ["Field required"]),
        ({"mode": "flaky", "error_rate": 1.5}, "error_rate", ["less than or equal to 1"]),
        ({"mode": "slow", "latency_ms": -1}, "latency_ms", ["greater than or equal to 0"]),
        ({"mode": "slow", "latency_ms": "100"}, "latency_ms", ["valid integer"]),
        ({"mode": "down", "for_s": 0}, "for_s", ["greater than 0"]),
        ({"mode": "ok", "context_window": 0}, "context_window", ["greater than or equal to 1"]),
        ({"mode": "down", "latency": 5}, "latency", ["unknown field", "latency_ms", "error_rate", "for_s"]),
    ],
)
async def test_a_bad_put_is_a_400_naming_the_field_and_what_it_accepts(
    sim: RunningSimulator, http: aiohttp.ClientSession, body: dict[str, Any], field: str, words: list[str]
) -> None:
    async with http.put(f"{sim.url}/_sim/vendors/openai", json=body) as r:
        assert r.status == 400
        error = (await r.json())["error"]
    assert [f["field"] for f in error["fields"]] == [field]
    assert error["message"].startswith(f"{field}: ")
    for word in words:
        assert word in error["message"]
    async with http.get(f"{sim.url}/_sim/vendors/openai") as r:
        assert (await r.json())["mode"] == "ok"  # nothing changed


async def test_a_put_that_is_not_json_is_a_400(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    async with http.put(f"{sim.url}/_sim/vendors/openai", data=b"mode=down") as r:
        assert r.status == 400
        error = (await r.json())["error"]
    assert error["fields"][0]["field"] == "body" and "mode" in error["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/_sim/vendors/nosuch"), ("PUT", "/_sim/vendors/nosuch"), ("POST", "/_sim/vendors/nosuch/reset-counters")],
)
async def test_an_unknown_vendor_is_a_404(
    sim: RunningSimulator, http: aiohttp.ClientSession, method: str, path: str
) -> None:
    async with http.request(method, f"{sim.url}{path}", json={"mode": "ok"}) as r:
        assert r.status == 404
        message = (await r.json())["error"]["message"]
    assert "nosuch" in message and "openai" in message


async def test_counters_count_and_reset(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    for _ in range(2):
        async with http.post(f"{sim.url}/openai/v1/chat/completions", json=CHAT, headers=OPENAI_HEADERS) as r:
            assert r.status == 200
    async with http.post(f"{sim.url}/openai/v1/chat/completions", json=CHAT) as r:
        assert r.status == 401
    async with http.post(f"{sim.url}/openai/v1/chat/completions", json={"model": "x"}, headers=OPENAI_HEADERS) as r:
        assert r.status == 400
    async with http.get(f"{sim.url}/_sim/vendors/openai") as r:
        assert (await r.json())["requests"] == {
            "total": 4, "by_status": {"200": 2, "401": 1, "400": 1}, "by_model": {"m": 3, "x": 1}}
    async with http.post(f"{sim.url}/_sim/vendors/openai/reset-counters") as r:
        state = await r.json()
    assert state["requests"] == {"total": 0, "by_status": {}, "by_model": {}}


async def test_reset_puts_every_vendor_back_to_ok_with_zero_counters(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{sim.url}/local/v1/chat/completions", json=CHAT, headers=OPENAI_HEADERS) as r:
        assert r.status == 200
    for name, mode in (("openai", "down"), ("anthropic", "ratelimit")):
        async with http.put(f"{sim.url}/_sim/vendors/{name}", json={"mode": mode, "context_window": 9}) as r:
            assert r.status == 200
    async with http.post(f"{sim.url}/_sim/reset") as r:
        assert r.status == 200
        assert await r.json() == {"vendors": {
            "openai": _fresh("openai", "openai", 128_000),
            "anthropic": _fresh("anthropic", "anthropic", 200_000),
            "local": _fresh("local", "openai", 128_000),
        }}


async def test_vendors_are_configurable_at_build_time(http: aiohttp.ClientSession) -> None:
    async with running(build_app({"acme": "anthropic"})) as sim:
        assert sim.base_url("acme") == f"{sim.url}/acme"
        async with http.get(f"{sim.url}/_sim/vendors") as r:
            assert list((await r.json())["vendors"]) == ["acme"]
        async with http.post(f"{sim.url}/openai/v1/chat/completions", json=CHAT, headers=OPENAI_HEADERS) as r:
            assert r.status == 404


@pytest.mark.parametrize("vendors", [{"x": "cohere"}, {"_sim": "openai"}, {"a/b": "openai"}, {"": "openai"}])
def test_bad_vendor_definitions_fail_at_build_time(vendors: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        build_app(vendors)
