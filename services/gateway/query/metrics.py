"""Query metrics: duration per API, results per API and court; every series created at zero.

Results: complete (every agency OK), partial, rejected (an invalid
request), and the door's refusals (access/labels.py: unauthenticated,
denied, rate_limited, unknown_case, unavailable). The court label is bounded
by the courts of registered cases (access/labels.py `COURTS`).
"""

from prometheus_client import Counter, Histogram

from services.gateway.access.labels import COURTS, DOOR_OUTCOMES, REJECTED
from services.gateway.agencies.metrics import LATENCY_BUCKETS, exemplar

# "enforce": the queries of enforcement plans (enforce/service.py).
APIS = ("grpc", "grpc_stream", "http", "http_stream", "enforce")
COMPLETE, PARTIAL = "complete", "partial"
RESULTS = (COMPLETE, PARTIAL, REJECTED, *DOOR_OUTCOMES)

QUERY_SECONDS = Histogram(
    "chakong_gateway_query_duration_seconds",
    "Duration of one asset query, from validation to the last result; exemplars carry the request ID.",
    ["api"],
    buckets=LATENCY_BUCKETS,
)
QUERIES = Counter(
    "chakong_gateway_queries_total",
    "Asset queries by result: complete (every agency OK), partial, rejected (invalid request), or refused at the"
    " door (unauthenticated, denied, rate_limited, unknown_case, unavailable); by court.",
    ["api", "result", "court"],
)


class QueryMetrics:
    """Label children for one API."""

    __slots__ = ("api", "seconds", "_counts")

    def __init__(self, api: str):
        self.api = api
        self.seconds = QUERY_SECONDS.labels(api)
        self._counts: dict[tuple[str, str], Counter] = {}

    def create(self, court: str) -> None:
        for result in RESULTS:
            self._counts[(result, court)] = QUERIES.labels(self.api, result, court)

    def count(self, result: str, court: str) -> None:
        """One query's `result`; `court` is a label from COURTS (or OTHER, UNKNOWN)."""
        child = self._counts.get((result, court))
        if child is None:
            if result not in RESULTS:
                raise ValueError(f"unknown query result {result!r}")
            child = self._counts[(result, court)] = QUERIES.labels(self.api, result, court)
        child.inc()

    def rejected(self, court_code: str) -> None:
        self.count(REJECTED, COURTS.label(court_code))

    def finished(self, complete: bool, seconds: float, court: str, request_id: str = "") -> None:
        self.seconds.observe(seconds, exemplar(request_id))
        self.count(COMPLETE if complete else PARTIAL, court)


_QUERY_METRICS: dict[str, QueryMetrics] = {api: QueryMetrics(api) for api in APIS}


def query_metrics(api: str) -> QueryMetrics:
    """The one QueryMetrics per API."""
    metrics = _QUERY_METRICS.get(api)
    if metrics is None:
        raise ValueError(f"unknown api label {api!r}")
    return metrics


def count_refusal(api: str, outcome: str, court: str) -> None:
    """The door refused a query (or could not parse it): for Operation.count."""
    query_metrics(api if api in APIS else "grpc").count(outcome, court)


def _create_court(court: str) -> None:
    for metrics in _QUERY_METRICS.values():
        metrics.create(court)


COURTS.subscribe(_create_court)
