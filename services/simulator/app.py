"""The simulator's HTTP edge: stand-in LLM vendors speaking their real wire formats, with faults.

Each vendor lives under its own prefix: an OpenAI-format vendor NAME answers at
`/NAME/v1/chat/completions` (base URL `http://HOST:PORT/NAME/v1`), an Anthropic-format one at
`/NAME/v1/messages` (base URL `http://HOST:PORT/NAME`). Faults are switched through `/_sim`
(see control.py). The hot path parses the body once with `json` and validates only what a
vendor would refuse; no pydantic per chat request.
"""

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from aiohttp import web

from services.simulator import anthropic_format, control, openai_format, stream_faults
from services.simulator.keys import CLOCK, VENDORS
from services.simulator.logic import (
    ChatRequest,
    Decision,
    Format,
    Vendor,
    answer,
    count_prompt_tokens,
    decide,
)
from services.simulator.stream_faults import close_connection
from services.simulator.wire import Failure, WireFormat

FORMATS: Mapping[str, WireFormat] = MappingProxyType({"openai": openai_format, "anthropic": anthropic_format})
# "local" stands for an OpenAI-compatible self-hosted model (vLLM, Ollama, llama.cpp server).
DEFAULT_VENDORS: Mapping[str, Format] = MappingProxyType(
    {"openai": "openai", "anthropic": "anthropic", "local": "openai"}
)
# Outcomes counted under their own name rather than "200": the vendor never finished the answer.
_COUNTED_AS_MODE = frozenset({"cut", "stall", "stream_error", "malformed_chunk"})


def build_app(
    vendors: Mapping[str, Format] | None = None,
    *,
    seed: int = 0,
    clock: Callable[[], float] = time.monotonic,
) -> web.Application:
    """The simulator app. `clock` (seconds, monotonic) decides when a timed fault mode expires."""
    vendors = DEFAULT_VENDORS if vendors is None else vendors
    for name, fmt in vendors.items():
        if fmt not in FORMATS:
            raise ValueError(f"vendor {name!r}: format must be one of {sorted(FORMATS)}, not {fmt!r}")
        if not name or "/" in name or name.startswith("_"):
            raise ValueError(f"vendor name {name!r} must be a plain path segment, not starting with '_'")
    # Anthropic's own request limit is 32 MB; aiohttp's 1 MiB default would turn a long prompt into
    # a 413 before the simulator could answer "prompt is too long" as the vendor does.
    app = web.Application(client_max_size=32 * 1024 * 1024)
    app[VENDORS] = {name: Vendor(name, fmt, seed=seed) for name, fmt in vendors.items()}
    app[CLOCK] = clock
    app.router.add_get("/healthz", healthz)
    control.add_routes(app.router)
    app.router.add_post("/{vendor}/v1/chat/completions", chat)
    app.router.add_post("/{vendor}/v1/messages", chat)
    app.router.add_get("/{vendor}/v1/models", list_models)
    app.router.add_route("*", "/{tail:.*}", not_found)  # last: JSON 404s instead of aiohttp's text ones
    return app


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _vendor_for(request: web.Request) -> tuple[Vendor, WireFormat] | None:
    """The vendor named by the path, if it exists and speaks the format this path belongs to."""
    vendor = request.app[VENDORS].get(request.match_info.get("vendor", ""))
    if vendor is None:
        return None
    wire = FORMATS[vendor.format]
    if request.path.endswith("/v1/models") or request.path.endswith(wire.CHAT_PATH):
        return vendor, wire
    return None


async def not_found(request: web.Request) -> web.Response:
    name, _, rest = request.path.lstrip("/").partition("/")
    vendor = request.app[VENDORS].get(name)
    if vendor is not None:  # a known vendor answers in its own format, as the real API would
        return _failure_response(FORMATS[vendor.format], FORMATS[vendor.format].not_found(request.method, f"/{rest}"))
    known = ", ".join(request.app[VENDORS])
    message = f"no such path: {request.method} {request.path} (vendors: {known}; control API under /_sim)"
    return web.json_response({"error": {"type": "not_found_error", "message": message}}, status=404)


def _failure_response(wire: WireFormat, failure: Failure) -> web.Response:
    headers = {wire.REQUEST_ID_HEADER: wire.new_request_id(), **failure.headers}
    return web.Response(body=json.dumps(failure.body).encode(), status=failure.status,
                        content_type="application/json", headers=headers)


def _refused(request: web.Request) -> web.Response:
    close_connection(request, reset=True)
    # Never sent (the transport is gone); 444 is nginx's "closed without response", for the access log.
    return web.Response(status=444)


def _fault(vendor: Vendor, wire: WireFormat, decision: Decision, model: str | None) -> Failure | None:
    """The HTTP error a fault mode answers with, if it answers with one."""
    if decision.outcome == "down":
        return wire.unavailable()
    if decision.outcome == "ratelimit":
        return wire.rate_limited(model, vendor.settings.retry_after_s)
    if decision.outcome == "error":
        return wire.server_error()
    return None


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:  # includes UnicodeDecodeError: the format's parse() answers "not JSON"
        return None


def _validate(vendor: Vendor, wire: WireFormat, body: Any) -> ChatRequest | Failure:
    parsed = wire.parse(body)
    if isinstance(parsed, Failure):
        return parsed
    tokens = count_prompt_tokens(parsed.messages, parsed.system)
    window = vendor.context_window()
    return wire.context_too_long(tokens, window) if tokens > window else parsed


async def chat(request: web.Request) -> web.StreamResponse:
    """One chat request. Checks run in the order a real edge applies them: connection, key,
    infrastructure faults, then the body; every request that reaches a vendor is counted."""
    found = _vendor_for(request)
    if found is None:
        return await not_found(request)
    vendor, wire = found
    body = _loads(await request.read())
    model = body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) else None
    decision = decide(vendor, request.app[CLOCK]())
    if decision.outcome == "refuse":
        vendor.counters.record("reset", model)
        return _refused(request)
    result = (
        wire.check_headers(request.headers)
        or _fault(vendor, wire, decision, model)
        or _validate(vendor, wire, body)
    )
    if isinstance(result, Failure):
        vendor.counters.record(str(result.status), model)
        return _failure_response(wire, result)
    headers = {wire.REQUEST_ID_HEADER: wire.new_request_id()}
    if decision.outcome == "garbage" or (decision.outcome == "malformed_chunk" and not result.stream):
        vendor.counters.record("200", model)
        content_type, payload = wire.garbage(result.stream)
        return web.Response(body=payload, content_type=content_type, charset="utf-8", headers=headers)
    reply = answer(vendor.name, result, wrong=decision.outcome == "wrong")
    vendor.counters.record(decision.outcome if decision.outcome in _COUNTED_AS_MODE else "200", model)
    if result.stream:
        frames, first_content = wire.stream_frames(result, reply, int(time.time()))
        return await stream_faults.stream(request, wire, frames, first_content, decision,
                                          vendor.settings, headers)
    if decision.outcome == "stream_error":  # not streamed: the error body inside a 200
        return web.json_response(wire.error_in_ok(), headers=headers)
    if decision.outcome == "stall":  # not streamed: a vendor that hangs, then hangs up
        await stream_faults.stall(request, vendor.settings.latency_ms / 1000)
        close_connection(request, reset=False)
        return web.Response(status=444)
    if decision.delay_s:
        await asyncio.sleep(decision.delay_s)
    payload = json.dumps(wire.completion(result, reply, int(time.time()))).encode()
    if decision.outcome == "cut":
        return await _cut_body(request, payload, headers)
    return web.Response(body=payload, content_type="application/json", headers=headers)


async def _cut_body(request: web.Request, payload: bytes, headers: dict[str, str]) -> web.StreamResponse:
    """A non-streamed answer that dies halfway: Content-Length promises more than arrives."""
    response = web.StreamResponse(headers=headers)
    response.content_type = "application/json"
    response.content_length = len(payload)
    await response.prepare(request)
    await response.write(payload[: len(payload) // 2])
    close_connection(request, reset=False)
    return response


async def list_models(request: web.Request) -> web.StreamResponse:
    """The models list. Faults apply (a probe must see an outage) but it is not a counted chat request."""
    found = _vendor_for(request)
    if found is None:
        return await not_found(request)
    vendor, wire = found
    decision = decide(vendor, request.app[CLOCK]())
    if decision.outcome == "refuse":
        return _refused(request)
    failure = wire.check_headers(request.headers) or _fault(vendor, wire, decision, None)
    if failure is not None:
        return _failure_response(wire, failure)
    headers = {wire.REQUEST_ID_HEADER: wire.new_request_id()}
    if decision.outcome == "garbage":
        return web.Response(body=wire.garbage(False)[1], content_type="application/json", headers=headers)
    if decision.delay_s:
        await asyncio.sleep(decision.delay_s)
    return web.json_response(wire.models(), headers=headers)
