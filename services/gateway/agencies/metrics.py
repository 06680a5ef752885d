"""Agency metrics: calls, their duration and outcome, admission; label children bound once per agency and method."""

from prometheus_client import Counter, Gauge, Histogram

from services.common.answers import INVALID_RESPONSE

# 1 ms resolves a local agency; the top buckets cover the 2 s default
# deadline and the 5 s a caller could be configured for.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)

AGENCY_CALL_SECONDS = Histogram(
    "chakong_gateway_agency_call_duration_seconds",
    "Duration of one call (one attempt) to an agency.",
    ["agency", "method"],
    buckets=LATENCY_BUCKETS,
)
AGENCY_CALLS = Counter(
    "chakong_gateway_agency_calls_total",
    "Calls (attempts) to agencies, by outcome: the gRPC code, TIMEOUT when the query deadline cut the call off,"
    " or INVALID_RESPONSE when the agency answered with a reply that breaks the contract.",
    ["agency", "method", "outcome"],
)
AGENCY_CALLS_IN_FLIGHT = Gauge(
    "chakong_gateway_agency_calls_in_flight",
    "Calls to an agency waiting for an answer now.",
    ["agency"],
    multiprocess_mode="livesum",
)
AGENCY_UP = Gauge(
    "chakong_gateway_agency_up",
    "1 while the gateway admits calls to the agency, 0 while it is ejected after repeated failures.",
    ["agency"],
    # With GATEWAY_WORKERS > 1: 0 as soon as any worker has ejected it.
    multiprocess_mode="livemin",
)
AGENCY_EJECTIONS = Counter(
    "chakong_gateway_agency_ejections_total",
    "Times the gateway ejected the agency (after consecutive failures or a failed probe).",
    ["agency"],
)

TIMEOUT = "TIMEOUT"


class AgencyCallMetrics:
    """Label children for one agency and method, so a call touches no label lookup."""

    __slots__ = ("agency", "method", "seconds", "in_flight", "_outcomes")

    def __init__(self, agency: str, method: str):
        self.agency = agency
        self.method = method
        self.seconds = AGENCY_CALL_SECONDS.labels(agency, method)
        self.in_flight = AGENCY_CALLS_IN_FLIGHT.labels(agency)
        # Bound up front so every likely outcome shows as 0 before it happens.
        self._outcomes = {
            outcome: AGENCY_CALLS.labels(agency, method, outcome)
            for outcome in ("OK", "UNAVAILABLE", "DEADLINE_EXCEEDED", TIMEOUT, INVALID_RESPONSE)
        }

    def outcome(self, outcome: str) -> Counter:
        child = self._outcomes.get(outcome)
        if child is None:
            # Bounded: gRPC has 17 codes.
            child = self._outcomes[outcome] = AGENCY_CALLS.labels(self.agency, self.method, outcome)
        return child


_CALL_METRICS: dict[tuple[str, str], AgencyCallMetrics] = {}


def agency_call_metrics(agency: str, method: str) -> AgencyCallMetrics:
    """Label children for a control method, made once per agency and method."""
    found = _CALL_METRICS.get((agency, method))
    if found is None:
        found = _CALL_METRICS[(agency, method)] = AgencyCallMetrics(agency, method)
    return found
