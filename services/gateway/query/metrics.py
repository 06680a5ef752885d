"""Query metrics: duration and result per API, label children bound once per API."""

from prometheus_client import Counter, Histogram

from services.gateway.agencies.metrics import LATENCY_BUCKETS

APIS = ("grpc", "grpc_stream", "http", "http_stream")

QUERY_SECONDS = Histogram(
    "chakong_gateway_query_duration_seconds",
    "Duration of one asset query, from validation to the last result.",
    ["api"],
    buckets=LATENCY_BUCKETS,
)
QUERIES = Counter(
    "chakong_gateway_queries_total",
    "Asset queries by result: complete (every agency OK), partial, or rejected (invalid request).",
    ["api", "result"],
)


class QueryMetrics:
    """Label children for one API."""

    __slots__ = ("seconds", "complete", "partial", "rejected")

    def __init__(self, api: str):
        self.seconds = QUERY_SECONDS.labels(api)
        self.complete = QUERIES.labels(api, "complete")
        self.partial = QUERIES.labels(api, "partial")
        self.rejected = QUERIES.labels(api, "rejected")

    def finished(self, complete: bool, seconds: float) -> None:
        self.seconds.observe(seconds)
        (self.complete if complete else self.partial).inc()


_QUERY_METRICS: dict[str, QueryMetrics] = {}


def query_metrics(api: str) -> QueryMetrics:
    """The one QueryMetrics per API (label children are cached by prometheus_client too)."""
    metrics = _QUERY_METRICS.get(api)
    if metrics is None:
        if api not in APIS:
            raise ValueError(f"unknown api label {api!r}")
        metrics = _QUERY_METRICS[api] = QueryMetrics(api)
    return metrics
