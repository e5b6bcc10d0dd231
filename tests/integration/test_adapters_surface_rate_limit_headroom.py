"""Rate-limit headers on real HTTP answers reach the router's ordering: the adapters read them
(OpenAI's x-ratelimit-*, Anthropic's anthropic-ratelimit-*), on answers and on errors, and the
engine stops sending first attempts to a member that says it has no room left.

Real things used: aiohttp servers on 127.0.0.1 standing in for the vendors' HTTP APIs.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from aiohttp import web

from schemas.completion import CompletionRequest
from services.providers import ChatCall, ProviderError, ProviderSpec, make_provider
from services.router.engine import Engine
from services.runtime.config import parse_config

OPENAI_OK = {"model": "m", "choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
ANTHROPIC_OK = {"type": "message", "role": "assistant", "model": "m", "stop_reason": "end_turn",
                "content": [{"type": "text", "text": "ok"}], "usage": {"input_tokens": 1, "output_tokens": 1}}


@asynccontextmanager
async def vendor(path: str, status: int, body: dict, headers: dict[str, str]) -> AsyncIterator[str]:
    calls = []

    async def answer(request: web.Request) -> web.Response:
        calls.append(request.path)
        return web.json_response(body, status=status, headers=headers)
    app = web.Application()
    app.router.add_post(path, answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_openai_headroom_on_an_answer_and_anthropic_headroom_on_a_429():
    low = {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "2",
           "x-ratelimit-reset-requests": "30s"}
    async with vendor("/v1/chat/completions", 200, OPENAI_OK, low) as url:
        p = make_provider(ProviderSpec(name="o", kind="openai", base_url=f"{url}/v1", api_key="k"))
        answer = await p.complete(ChatCall(model="m", messages=[{"role": "user", "content": "hi"}]), timeout=5)
        await p.aclose()
    assert (answer.headroom.limit, answer.headroom.fraction, answer.headroom.reset_s) == ("requests", 0.02, 30.0)

    reset = (datetime.now(UTC) + timedelta(seconds=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
    spent = {"anthropic-ratelimit-tokens-limit": "40000", "anthropic-ratelimit-tokens-remaining": "0",
             "anthropic-ratelimit-tokens-reset": reset}
    error = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    async with vendor("/v1/messages", 429, error, spent) as url:
        p = make_provider(ProviderSpec(name="a", kind="anthropic", base_url=url, api_key="k"))
        try:
            await p.complete(ChatCall(model="m", messages=[{"role": "user", "content": "hi"}]), timeout=5)
        except ProviderError as e:
            caught = e
        await p.aclose()
    assert (caught.headroom.limit, caught.headroom.fraction) == ("tokens", 0.0)
    assert 35 < caught.headroom.reset_s <= 40


async def test_the_engine_moves_first_attempts_off_a_member_whose_headers_say_it_is_spent():
    low = {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "1",
           "x-ratelimit-reset-requests": "1m0s"}
    async with vendor("/v1/chat/completions", 200, OPENAI_OK, low) as a_url, \
            vendor("/v1/messages", 200, ANTHROPIC_OK, {}) as b_url:
        config = parse_config(f"""
providers:
  a: {{kind: openai, base_url: "{a_url}/v1", models: {{m: {{input_per_mtok: 1, output_per_mtok: 1}}}}}}
  b: {{kind: anthropic, base_url: "{b_url}", models: {{m: {{input_per_mtok: 1, output_per_mtok: 1}}}}}}
routes:
  chat: {{chain: [a/m, b/m]}}
""")
        specs = config.provider_specs({}, "")
        providers = {n: make_provider(s) for n, s in specs.items()}
        engine = Engine(config, providers)
        ask = CompletionRequest(messages=[{"role": "user", "content": "hi"}])
        try:
            first = (await engine.complete(ask)).result
            second = (await engine.complete(ask)).result
        finally:
            for p in providers.values():
                await p.aclose()
    assert (first.provider, first.tier) == ("a", "full")
    assert (second.provider, second.tier) == ("b", "degraded")  # a said 1 % left: it goes last
