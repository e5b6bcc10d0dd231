"""One OpenTelemetry span per provider call, a child of the request's span (the bus handler's,
itself the child of the caller's: the gateway's), so a trace shows which member was called,
for how long, and how it failed. The attribute names follow OpenTelemetry's GenAI conventions
where there is one (https://opentelemetry.io/docs/specs/semconv/gen-ai/)."""

from contextlib import AbstractContextManager

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from services.providers.base import ProviderError

from .logic import Member


def provider_call(tracer: Tracer, member: Member, *, request_id: str, route: str,
                  streamed: bool = False) -> AbstractContextManager[Span]:
    return tracer.start_as_current_span(
        f"chat {member.key}", kind=SpanKind.CLIENT, attributes={
            "gen_ai.system": member.provider, "gen_ai.request.model": member.model,
            "lifeline.request_id": request_id, "lifeline.route": route,
            "lifeline.fallback_depth": member.depth, "lifeline.streamed": streamed})


def failed(span: Span, error: ProviderError) -> None:
    span.set_attribute("error.type", str(error.kind))
    if error.status_code is not None:
        span.set_attribute("http.response.status_code", error.status_code)
    span.set_status(Status(StatusCode.ERROR, error.message[:200]))
