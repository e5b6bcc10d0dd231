"""OpenTelemetry set-up. Trace context crosses the bus in NATS headers (FastStream middleware)."""

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased


def tracer_provider(service: str, instance: str, exporter: str) -> TracerProvider:
    """One provider per service process. `exporter`: none | console | otlp.

    With no exporter, a trace this process starts is not sampled: its spans are not recorded
    (measured: recording cost the router ~1.6 ms of CPU per request, most of its budget), yet
    trace context still travels in NATS headers, and a caller's sampled trace is recorded.
    """
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"lifeline-{service}",
                                  "service.instance.id": instance}),
        sampler=ParentBased(ALWAYS_OFF if exporter == "none" else ALWAYS_ON),
    )
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "otlp":
        # The OTLP exporter is an optional install (opentelemetry-exporter-otlp); the
        # deployment image adds it. Failing loudly beats silently exporting nothing.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif exporter != "none":
        raise ValueError(f"LIFELINE_OTEL_EXPORTER must be none, console or otlp, not {exporter!r}")
    return provider
