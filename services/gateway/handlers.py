"""The HTTP edge: OpenAI's /v1/chat/completions and /v1/models, Anthropic's /v1/messages, and
/v1/lifeline/results/{ticket}. Each request: authenticate, read, parse (pure), one bus request,
answer in the caller's wire format with x-lifeline-* headers."""

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from aiohttp import web

from schemas.completion import CompletionRequest, CompletionResult
from services.runtime.config import LifelineConfig

from . import anthropic_wire, openai_wire
from .bus import BusClient
from .errors import SHUTTING_DOWN, ApiError, from_result, invalid
from .inputs import ChatInput, completion_request, lifeline_fields, lifeline_headers, options
from .keys import Keyring, presented
from .metrics import GatewayMetrics
from .streams import relay

log = logging.getLogger(__name__)
_TICKET = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # one subject token: no dots, no wildcards


@dataclass(frozen=True)
class Wire:
    """What differs between the OpenAI and the Anthropic front door."""

    api: str
    parse: Callable[[Any, Any], ChatInput | ApiError]
    error_body: Callable[[ApiError], dict[str, Any]]


OPENAI = Wire("openai", openai_wire.parse_chat, ApiError.openai)
ANTHROPIC = Wire("anthropic", anthropic_wire.parse_messages, ApiError.anthropic)


def error_response(wire: Wire, error: ApiError, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(wire.error_body(error), status=error.status,
                             headers={**error.headers(), **(headers or {})})


class Gateway:
    def __init__(self, config: LifelineConfig, bus: BusClient, keyring: Keyring,
                 metrics: GatewayMetrics, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.bus = bus
        self.keyring = keyring
        self.metrics = metrics
        self.clock = clock
        self.in_flight = 0
        self.stopping = False  # set when the service stops taking work: answer 503, not a bus error

    # --- the routes ---------------------------------------------------------------------------

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, OPENAI)

    async def messages(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, ANTHROPIC)

    def _refused(self, request: web.Request) -> ApiError | None:
        who = self.keyring.authenticate(presented(request.headers),
                                        require_keys=self.config.gateway.require_keys)
        return who if isinstance(who, ApiError) else None

    async def models(self, request: web.Request) -> web.Response:
        """The routes, as models: in OpenAI's list shape, with Anthropic's fields beside."""
        if refused := self._refused(request):
            return error_response(OPENAI, refused)
        data = [_model(name) for name in self.config.routes]
        return web.json_response({"object": "list", "data": data, "has_more": False,
                                  "first_id": data[0]["id"], "last_id": data[-1]["id"]})

    async def model(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return error_response(OPENAI, refused)
        name = request.match_info["model"]
        if name not in self.config.routes:
            return error_response(OPENAI, ApiError(404, f"The model `{name}` does not exist",
                                                   param="model", code="model_not_found"))
        return web.json_response(_model(name))

    async def result(self, request: web.Request) -> web.Response:
        wire = ANTHROPIC if request.query.get("format") == "anthropic" else OPENAI
        if refused := self._refused(request):
            return error_response(wire, refused)
        ticket = request.match_info["ticket"]
        if not _TICKET.match(ticket):
            return error_response(wire, invalid(f"{ticket!r} is not a ticket", param="ticket"))
        result = await self.bus.result(ticket)
        if result is None:
            return error_response(wire, ApiError(
                404, f"no result for ticket {ticket} yet: still queued, or unknown (results are "
                "kept 24 h); ask again later", code="result_not_ready", retry_after_s=1))
        return self._answer(wire, result, route=request.query.get("model", "-"), max_tokens=None)

    # --- one chat request ---------------------------------------------------------------------

    async def _serve(self, request: web.Request, wire: Wire) -> web.StreamResponse:
        self.in_flight += 1
        started = time.monotonic()
        route = "-"
        response: web.StreamResponse | None = None
        try:
            parsed = await self._parse(request, wire)
            if isinstance(parsed, ApiError):
                response = error_response(wire, parsed)
                return response
            chat, bus_request = parsed
            route = chat.route
            if chat.stream:
                response = await self._stream(request, wire, chat, bus_request)
                return response
            response = await self._complete(wire, chat, bus_request)
            return response
        finally:
            self.in_flight -= 1
            status = response.status if response is not None else 500
            self.metrics.requests.labels(wire.api, route, str(status)).inc()
            self.metrics.seconds.labels(wire.api, route).observe(time.monotonic() - started)

    async def _parse(self, request: web.Request,
                     wire: Wire) -> tuple[ChatInput, CompletionRequest] | ApiError:
        if self.stopping:
            return SHUTTING_DOWN
        gw = self.config.gateway
        who = self.keyring.authenticate(presented(request.headers), require_keys=gw.require_keys)
        if isinstance(who, ApiError):
            return who
        data = await self._body(request)
        if isinstance(data, ApiError):
            return data
        chat = wire.parse(data, self.config.routes)
        if isinstance(chat, ApiError):
            return chat
        extra = options(request.headers, chat.metadata)
        if isinstance(extra, ApiError):
            return extra
        return chat, completion_request(uuid4().hex, chat, who, extra)

    async def _body(self, request: web.Request) -> Any:
        limit = self.config.gateway.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return _too_large(request.content_length, limit)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _too_large(None, limit)
        try:
            return json.loads(raw)
        except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
            return invalid(f"We could not parse the JSON body of your request: {e}",
                           code="invalid_json")

    def _deadline_s(self, bus_request: CompletionRequest) -> float:
        route = self.config.routes[bus_request.route]
        return (route.deadline_ms + self.config.gateway.router_grace_ms) / 1000

    async def _complete(self, wire: Wire, chat: ChatInput, bus_request: CompletionRequest) -> web.Response:
        result = await self.bus.complete(bus_request, timeout=self._deadline_s(bus_request))
        if isinstance(result, ApiError):
            return error_response(wire, result, {"x-lifeline-request-id": bus_request.request_id})
        return self._answer(wire, result, route=chat.route, max_tokens=chat.max_tokens)

    def _answer(self, wire: Wire, result: CompletionResult, *, route: str,
                max_tokens: int | None) -> web.Response:
        meta = lifeline_fields(request_id=result.request_id, tier=result.tier, provider=result.provider,
                               model=result.model, fallback_depth=result.fallback_depth,
                               cached=result.cached)
        headers = lifeline_headers(meta)
        if result.status == "queued":
            ticket = result.ticket or result.request_id
            return web.json_response({"id": result.request_id, "object": "lifeline.queued",
                                      "status": "queued", "ticket": ticket,
                                      "result_url": f"/v1/lifeline/results/{result.request_id}",
                                      "lifeline": meta}, status=202, headers=headers)
        if result.status == "error":
            return error_response(wire, from_result(result.error), headers)
        # The router's result has no finish reason yet; an answer that used its whole allowance
        # was cut by it (the router path reports "length" from the vendor when streaming).
        hit_limit = max_tokens is not None and result.usage.output_tokens >= max_tokens
        finish = "length" if hit_limit else "stop"
        body = (openai_wire.completion(result, route=route, created=int(time.time()), finish=finish,
                                       lifeline=meta) if wire is OPENAI
                else anthropic_wire.message(result, route=route, finish=finish, lifeline=meta))
        return web.json_response(body, headers=headers)

    async def _stream(self, request: web.Request, wire: Wire, chat: ChatInput,
                      bus_request: CompletionRequest) -> web.StreamResponse:
        route = self.config.routes[chat.route]
        streaming = self.config.gateway.streaming
        idle = (streaming.inter_token_timeout_ms + route.deadline_ms
                + self.config.gateway.router_grace_ms) / 1000
        renderer = (openai_wire.StreamRenderer(request_id=bus_request.request_id, route=chat.route,
                                               created=int(time.time()), include_usage=chat.include_usage)
                    if wire is OPENAI else
                    anthropic_wire.StreamRenderer(request_id=bus_request.request_id, route=chat.route))
        started = self.clock()
        chunks = self.bus.stream(bus_request, first=self._deadline_s(bus_request), idle=idle)
        return await relay(request, chunks, renderer, bus_request.request_id,
                           on_first_token=lambda: self.metrics.ttft.labels(chat.route).observe(
                               self.clock() - started),
                           on_failure=lambda outcome: self.metrics.stream_failures.labels(
                               chat.route, route.on_stream_failure, outcome).inc(),
                           answer=lambda result: self._answer(wire, result, route=chat.route,
                                                              max_tokens=chat.max_tokens),
                           error=lambda e: error_response(wire, e),
                           cancel=self.bus.cancel)


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "lifeline",
            "type": "model", "display_name": name, "created_at": "1970-01-01T00:00:00Z"}


def _too_large(size: int | None, limit: int) -> ApiError:
    of = f"of {size} bytes " if size is not None else ""
    return ApiError(413, f"Request body {of}is larger than the gateway's limit of {limit} bytes "
                    "(gateway.max_body_bytes in lifeline.yaml)", code="request_too_large")


@web.middleware
async def json_errors(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
    """aiohttp's own 404/405/413 and any crash, in OpenAI's error shape; the gateway keeps serving."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return error_response(OPENAI, ApiError(e.status, f"{e.reason}: {request.method} {request.path}",
                                               code=e.reason.lower().replace(" ", "_")))
    except Exception:  # a bug: logged with its traceback, answered, and the next request served
        log.exception("gateway error on %s %s", request.method, request.path)
        return error_response(OPENAI, ApiError(500, "internal gateway error", type="server_error"))


def web_app(gateway: Gateway) -> web.Application:
    app = web.Application(middlewares=[json_errors],
                          client_max_size=gateway.config.gateway.max_body_bytes)
    app.router.add_post("/v1/chat/completions", gateway.chat_completions)
    app.router.add_post("/v1/messages", gateway.messages)
    app.router.add_get("/v1/models", gateway.models)
    app.router.add_get("/v1/models/{model}", gateway.model)
    app.router.add_get("/v1/lifeline/results/{ticket}", gateway.result)
    return app
