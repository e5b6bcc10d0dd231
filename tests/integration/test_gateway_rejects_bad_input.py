"""Bad input at the gateway: each case a 4xx in the caller's error shape that says what was wrong;
nothing reaches a provider; and a burst of malformed requests leaves valid ones unharmed."""

import asyncio
import json
from collections import Counter

import aiohttp
import pytest

from tests.fixtures.gateway import stream_config
from tests.integration.conftest import requests_served

LIMIT = 4000  # gateway.max_body_bytes in these tests
OK = {"model": "chat", "messages": [{"role": "user", "content": "What is your refund policy?"}]}
CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"

CASES = [
    # (path, body, status, words in error.message, error.param)
    (CHAT, b"{not json", 400, "could not parse the JSON body", None),
    (CHAT, b"\xff\xfe", 400, "could not parse the JSON body", None),
    (CHAT, b'["a", "list"]', 400, "must be a JSON object", None),
    (CHAT, {"model": "chat"}, 400, "Missing required parameter: 'messages'", "messages"),
    (CHAT, {"model": "chat", "messages": []}, 400, "non-empty array", "messages"),
    (CHAT, {"model": "chat", "messages": "hi"}, 400, "non-empty array", "messages"),
    (CHAT, {"model": "chat", "messages": [{"role": "robot", "content": "x"}]}, 400, "role", "messages[0].role"),
    (CHAT, {"messages": OK["messages"]}, 400, "you must provide a model", "model"),
    (CHAT, {**OK, "model": "gpt-nope"}, 404, "The model `gpt-nope` does not exist", "model"),
    (CHAT, {**OK, "n": 2}, 400, "n must be 1", "n"),
    (CHAT, {**OK, "tools": [{"type": "function", "function": {"name": "f"}}]}, 400, "tools", "tools"),
    (CHAT, {**OK, "stop": ["\n"]}, 400, "stop sequences are not supported", "stop"),
    (CHAT, {**OK, "frobnicate": 1}, 400, "Unrecognized request argument supplied: frobnicate", "frobnicate"),
    (CHAT, {**OK, "temperature": 7}, 400, "temperature", "temperature"),
    (CHAT, {**OK, "max_tokens": 0}, 400, "max_tokens", "max_tokens"),
    (CHAT, {**OK, "stream": "yes"}, 400, "stream", "stream"),
    (CHAT, {**OK, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
     400, "only text parts", "messages[0].content"),
    (CHAT, {**OK, "metadata": {"allow_queue": "maybe"}}, 400, "allow_queue must be true or false", "allow_queue"),
    (CHAT, {**OK, "messages": [{"role": "user", "content": "x" * LIMIT}]}, 413, "larger than the gateway's limit", None),
    (MESSAGES, {"model": "chat", "messages": OK["messages"]}, 400, "max_tokens: Field required", None),
    (MESSAGES, {"model": "nope", "max_tokens": 10, "messages": OK["messages"]}, 404, "is not a route", None),
    (MESSAGES, {"model": "chat", "max_tokens": 10, "messages": OK["messages"], "tools": [{"name": "t"}]},
     400, "tools are not supported", None),
    (MESSAGES, b"{", 400, "could not parse the JSON body", None),
]


@pytest.fixture
async def gateway(mesh_parts):
    return await mesh_parts(stream_config(max_body_bytes=LIMIT))


async def post(http: aiohttp.ClientSession, url: str, body: bytes | dict) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with http.post(url, data=data, headers={"Content-Type": "application/json"}) as r:
        return r.status, await r.json()


def message_of(path: str, body: dict) -> str:
    return body["error"]["message"]


@pytest.mark.parametrize(("path", "body", "status", "says", "param"), CASES)
async def test_bad_input_is_a_4xx_that_says_what_was_wrong(gateway, sim, http, path, body, status,
                                                           says, param):
    got, error = await post(http, gateway.url + path, body)
    assert got == status, error
    assert says in message_of(path, error)
    if path == CHAT:
        assert set(error["error"]) == {"message", "type", "param", "code"}
        assert error["error"]["param"] == param
    else:  # Anthropic's shape on /v1/messages
        assert error["type"] == "error" and error["error"]["type"] in ("invalid_request_error", "not_found_error")
    for vendor in ("openai", "anthropic", "local"):
        assert await requests_served(sim, vendor) == 0  # nothing reached a provider
    status, answer = await post(http, gateway.url + CHAT, OK)  # and the gateway keeps serving
    assert status == 200 and answer["choices"][0]["message"]["content"]


async def test_an_oversized_chunked_body_is_a_413(gateway, http):
    async def chunks():
        for _ in range(10):
            yield b"x" * 1000

    async with http.post(gateway.url + CHAT, data=chunks()) as r:
        assert r.status == 413
        assert "larger than the gateway's limit of 4000 bytes" in (await r.json())["error"]["message"]


async def test_unknown_paths_and_methods_answer_in_json(gateway, http):
    async with http.get(gateway.url + "/v1/nothing") as r:
        assert r.status == 404 and "Not Found" in (await r.json())["error"]["message"]
    async with http.get(gateway.url + CHAT) as r:
        assert r.status == 405 and "Method Not Allowed" in (await r.json())["error"]["message"]


async def test_a_burst_of_malformed_requests_leaves_valid_ones_unharmed(gateway, sim, http):
    bad = [(path, body, status) for path, body, status, _, _ in CASES] * 12  # 276 bad requests
    valid = 40

    async def one_bad(path: str, body: bytes | dict) -> int:
        return (await post(http, gateway.url + path, body))[0]

    async def one_good() -> str:
        status, answer = await post(http, gateway.url + CHAT, OK)
        assert status == 200, answer
        return answer["choices"][0]["message"]["content"]

    results = await asyncio.wait_for(asyncio.gather(
        *(one_bad(p, b) for p, b, _ in bad), *(one_good() for _ in range(valid))), 60)
    statuses, answers = results[:len(bad)], results[len(bad):]
    assert Counter(statuses) == Counter(status for _, _, status in bad)
    assert len(answers) == valid and all(a.startswith("[openai/gpt-4o-mini]") for a in answers)
    assert await requests_served(sim, "openai") == valid  # exactly the valid ones reached a vendor
    metrics = await (await http.get(f"{gateway.health.url}/metrics")).text()
    assert f'lifeline_gateway_requests_total{{api="openai",route="chat",status="200"}} {valid}.0' in metrics
