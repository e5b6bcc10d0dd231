"""Our streaming adapters against the simulator: a healthy stream yields text then one end; every
broken stream (cut, stall, error event inside the 200, malformed chunk, garbage, no answer)
raises with the right kind and never yields an end."""

import time
from contextlib import aclosing

import pytest

from schemas.completion import ErrorKind
from services.providers import make_provider
from services.providers.base import ChatCall, ProviderSpec
from services.providers.streaming import StreamEnd, StreamError, StreamTimeouts, TextDelta
from tests.integration.conftest import set_mode

QUESTION = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is your refund policy?"}]
FAST = StreamTimeouts(first_token=2.0, idle=0.3, total=10.0)
VENDORS = [("openai", "openai", "gpt-4o-mini"), ("anthropic", "anthropic", "claude-haiku-4-5")]


def provider(sim, name: str, kind: str):
    return make_provider(ProviderSpec(name=name, kind=kind, base_url=sim.base_url(name), api_key="k"))


async def collect(p, model: str, timeouts: StreamTimeouts = FAST) -> tuple[list[str], list[StreamEnd]]:
    texts, ends = [], []
    async with aclosing(p.stream(ChatCall(model=model, messages=QUESTION), timeouts=timeouts)) as events:
        async for event in events:
            (texts.append(event.text) if isinstance(event, TextDelta) else ends.append(event))
    return texts, ends


@pytest.mark.parametrize(("name", "kind", "model"), VENDORS)
async def test_a_healthy_stream_yields_the_text_then_one_end(sim, name, kind, model):
    p = provider(sim, name, kind)
    try:
        texts, ends = await collect(p, model)
    finally:
        await p.aclose()
    assert "".join(texts) == f"[{name}/{model}] You asked: What is your refund policy. This is a simulated answer."
    assert len(texts) > 5  # word by word, not one block
    [end] = ends
    assert end.finish_reason == "stop"
    assert end.input_tokens > 0 and end.output_tokens > 0


@pytest.mark.parametrize(("name", "kind", "model"), VENDORS)
@pytest.mark.parametrize(("mode", "settings", "kind_seen", "says"), [
    ("cut", {"cut_after": 2}, ErrorKind.CONNECTION, ""),
    ("stall", {"cut_after": 2, "latency_ms": 5000}, ErrorKind.TIMEOUT, "stalled"),
    ("stream_error", {"cut_after": 2}, ErrorKind.SERVER_ERROR, "error event inside the stream"),
    ("malformed_chunk", {"cut_after": 2}, ErrorKind.MALFORMED_RESPONSE, "not JSON"),
    ("garbage", {}, ErrorKind.MALFORMED_RESPONSE, ""),
    ("down", {}, ErrorKind.SERVER_ERROR, "503"),
])
async def test_a_broken_stream_raises_and_never_ends(sim, name, kind, model, mode, settings,
                                                     kind_seen, says):
    await set_mode(sim, name, mode, **settings)
    p = provider(sim, name, kind)
    texts: list[str] = []
    t0 = time.monotonic()
    try:
        with pytest.raises(StreamError) as caught:
            async with aclosing(p.stream(ChatCall(model=model, messages=QUESTION), timeouts=FAST)) as events:
                async for event in events:
                    assert isinstance(event, TextDelta), f"an end after a {mode}: {event}"
                    texts.append(event.text)
    finally:
        await p.aclose()
    assert caught.value.kind is kind_seen, caught.value.message
    assert says in caught.value.message
    if "cut_after" in settings:
        assert len(texts) == settings["cut_after"] == caught.value.deltas
    assert time.monotonic() - t0 < 2.0  # a stall is noticed after `idle`, not after the vendor's 5 s


@pytest.mark.parametrize(("name", "kind", "model"), VENDORS)
async def test_no_first_token_in_time_is_a_timeout(sim, name, kind, model):
    await set_mode(sim, name, "slow", latency_ms=1000)
    p = provider(sim, name, kind)
    t0 = time.monotonic()
    try:
        with pytest.raises(StreamError) as caught:
            await collect(p, model, StreamTimeouts(first_token=0.3, idle=5, total=10))
    finally:
        await p.aclose()
    assert caught.value.kind is ErrorKind.TIMEOUT and "first token" in caught.value.message
    assert time.monotonic() - t0 < 1.5


async def test_a_refused_connection_is_a_connection_error(sim):
    await set_mode(sim, "openai", "refuse")
    p = provider(sim, "openai", "openai")
    try:
        with pytest.raises(StreamError) as caught:
            await collect(p, "gpt-4o-mini")
    finally:
        await p.aclose()
    assert caught.value.kind is ErrorKind.CONNECTION
