"""OpenTelemetry set-up. Trace context crosses the bus in NATS headers (FastStream middleware)."""

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter


def tracer_provider(service: str, instance: str, exporter: str) -> TracerProvider:
    """One provider per service process. `exporter`: none | console | otlp."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"lifeline-{service}",
                                  "service.instance.id": instance})
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
