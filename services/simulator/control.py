"""The control API under /_sim: see and switch each vendor's fault mode, read and reset counters.

    GET  /_sim/vendors                            -> {"vendors": {NAME: state}}
    GET  /_sim/vendors/{name}                     -> state
    PUT  /_sim/vendors/{name}   VendorUpdate      -> the new state
    POST /_sim/vendors/{name}/reset-counters      -> state, counters at zero
    POST /_sim/reset                              -> {"vendors": ...}, all ok, all counters at zero

A PUT replaces the vendor's settings: a field left out takes its default, not its old value.
"""

import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.simulator.keys import CLOCK, VENDORS
from services.simulator.logic import (
    DEFAULT_SLOW_LATENCY_MS, DEFAULT_STALL_MS, FaultSettings, Mode, Vendor,
)


class VendorUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    mode: Mode
    latency_ms: int | None = Field(None, ge=0, le=600_000)  # None: 1000 in slow, 30000 in stall, else 0
    error_rate: float = Field(0.3, ge=0.0, le=1.0)  # fraction of 500s in mode flaky
    retry_after_s: int = Field(1, ge=0, le=86_400)  # Retry-After of a 429 in mode ratelimit
    cut_after: int = Field(3, ge=0)  # content chunks before a stream fault (cut, stall, stream_error, malformed_chunk)
    chunk_delay_ms: int = Field(0, ge=0, le=60_000)  # pacing between a stream's content chunks
    context_window: int | None = Field(None, ge=1)  # tokens; None = the format's default
    for_s: float | None = Field(None, gt=0)  # seconds until the mode reverts to ok; None = until changed

    def to_settings(self) -> FaultSettings:
        latency = self.latency_ms
        if latency is None:
            latency = {"slow": DEFAULT_SLOW_LATENCY_MS, "stall": DEFAULT_STALL_MS}.get(self.mode, 0)
        return FaultSettings(
            mode=self.mode,
            latency_ms=latency,
            error_rate=self.error_rate,
            retry_after_s=self.retry_after_s,
            cut_after=self.cut_after,
            chunk_delay_ms=self.chunk_delay_ms,
            context_window=self.context_window,
            for_s=self.for_s,
        )


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/_sim/vendors", list_vendors)
    router.add_get("/_sim/vendors/{name}", get_vendor)
    router.add_put("/_sim/vendors/{name}", put_vendor)
    router.add_post("/_sim/vendors/{name}/reset-counters", reset_counters)
    router.add_post("/_sim/reset", reset_all)


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": {"message": message, **extra}}, status=status)


def _vendor(request: web.Request) -> Vendor:
    name = request.match_info["name"]
    vendor = request.app[VENDORS].get(name)
    if vendor is None:
        known = ", ".join(request.app[VENDORS])
        body = {"error": {"message": f"unknown vendor {name!r}; known: {known}"}}
        raise web.HTTPNotFound(text=json.dumps(body), content_type="application/json")
    return vendor


def _state(request: web.Request, vendor: Vendor) -> dict[str, Any]:
    return vendor.describe(request.app[CLOCK]())


def _all(request: web.Request) -> dict[str, Any]:
    return {"vendors": {name: _state(request, v) for name, v in request.app[VENDORS].items()}}


async def list_vendors(request: web.Request) -> web.Response:
    return web.json_response(_all(request))


async def get_vendor(request: web.Request) -> web.Response:
    return web.json_response(_state(request, _vendor(request)))


def _field_errors(error: ValidationError) -> list[dict[str, str]]:
    """One entry per bad field, each naming the field and what it accepts."""
    allowed_fields = ", ".join(VendorUpdate.model_fields)
    out = []
    for e in error.errors():
        field = ".".join(str(part) for part in e["loc"]) or "body"
        message = e["msg"]  # for `mode` pydantic lists the allowed values itself
        if e["type"] == "extra_forbidden":
            message = f"unknown field; allowed fields: {allowed_fields}"
        elif e["type"] == "json_invalid":
            message = f"body is not valid JSON ({e['msg']}); expected an object with fields: {allowed_fields}"
        out.append({"field": field, "message": message})
    return out


async def put_vendor(request: web.Request) -> web.Response:
    vendor = _vendor(request)
    try:
        update = VendorUpdate.model_validate_json(await request.read())
    except ValidationError as error:
        fields = _field_errors(error)
        message = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return _error(400, message, fields=fields)
    vendor.configure(update.to_settings(), request.app[CLOCK]())
    return web.json_response(_state(request, vendor))


async def reset_counters(request: web.Request) -> web.Response:
    vendor = _vendor(request)
    vendor.reset_counters()
    return web.json_response(_state(request, vendor))


async def reset_all(request: web.Request) -> web.Response:
    for vendor in request.app[VENDORS].values():
        vendor.reset()
    return web.json_response(_all(request))
