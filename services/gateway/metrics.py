"""The gateway's metrics, on the service's own registry (served at /metrics of its health port)."""

from prometheus_client import CollectorRegistry, Counter, Histogram

# Time to first token lives between the router's few milliseconds and a slow vendor's seconds.
# A whole answer: a cached or static one in milliseconds, a vendor's long one in a minute.
REQUEST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "lifeline_gateway_requests", "HTTP requests by API, route and status",
            ["api", "route", "status"], registry=registry)
        self.seconds = Histogram(
            "lifeline_gateway_request_seconds", "from a request's arrival to the end of its answer "
            "(a stream's last chunk), by API and route", ["api", "route"],
            buckets=REQUEST_BUCKETS, registry=registry)
        self.ttft = Histogram(
            "lifeline_gateway_ttft_seconds", "from a streamed request's arrival to its first token",
            ["route"], buckets=TTFT_BUCKETS, registry=registry)
        self.stream_failures = Counter(
            "lifeline_gateway_stream_failures", "streams that failed after their first token, by "
            "the route's on_stream_failure and what the caller got", ["route", "policy", "outcome"],
            registry=registry)
