"""A server span per HTTP request, continuing the caller's trace (W3C `traceparent`), so that one
trace runs from the application through the gateway, the bus and the router to the provider
call. The bus client (bus.py) puts the span's context in the NATS headers."""

from aiohttp import web
from aiohttp.typedefs import Handler
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Tracer


def traced(tracer: Tracer) -> web.middleware:  # type: ignore[valid-type]
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.resource
        name = f"{request.method} {route.canonical if route is not None else request.path}"
        with tracer.start_as_current_span(
                name, context=propagate.extract(dict(request.headers)), kind=SpanKind.SERVER,
                attributes={"http.request.method": request.method,
                            "url.path": request.path}) as span:
            response = await handler(request)
            span.set_attribute("http.response.status_code", response.status)
            return response
    return middleware
