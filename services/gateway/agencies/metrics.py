"""Agency metrics: calls, their duration and outcome, admission.

Every series of an agency exists from the moment it is registered (at start
or by a reload): one per method of its kind and outcome, at zero, so the
first failure of a kind shows in `increase()` like any other. An agency
removed from the registry has its series removed. Outcomes come from one
known set: the gRPC code names (CANCELLED also when the gateway cancelled the
call with no blame on the agency: the caller went away, or a hedge answered
first), TIMEOUT (cut off by the query deadline),
EJECTED (not called: the agency was ejected) and INVALID_RESPONSE (the agency
answered, but with a reply that breaks the contract: services/common/answers.py).
"""

import os

import grpc
from prometheus_client import Counter, Gauge, Histogram

from services.common.answers import INVALID_RESPONSE
from services.gateway.agencies.methods import CASE_HOLDS, CONTROL_METHODS, HOLD_CHANGES, QUERY

# 1 ms resolves a local agency; the top buckets cover the 2 s default
# deadline and the 5 s a caller could be configured for.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)

AGENCY_CALL_SECONDS = Histogram(
    "chakong_gateway_agency_call_duration_seconds",
    "Duration of one call (one attempt) to an agency; exemplars carry the request ID.",
    ["agency", "method"],
    buckets=LATENCY_BUCKETS,
)
AGENCY_CALLS = Counter(
    "chakong_gateway_agency_calls_total",
    "Calls (attempts) to agencies, by outcome: the gRPC code, TIMEOUT when the query deadline cut the call off,"
    " EJECTED when it was not made because the agency is ejected, INVALID_RESPONSE when the agency answered with a reply that breaks the contract.",
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

AGENCY_HEDGES = Counter(
    "chakong_gateway_agency_hedges_total",
    "Hedged queries (agencies/hedging.py), by event: sent (a second attempt went out after the hedge delay),"
    " won (it answered first; the first attempt was cancelled), budget_exhausted (one was due, but the hedge"
    " budget had nothing left: too many hedges lately, or the agency is failing).",
    ["agency", "event"],
)
HEDGE_EVENTS = ("sent", "won", "budget_exhausted")

TIMEOUT = "TIMEOUT"
EJECTED = "EJECTED"
OUTCOMES = (*(code.name for code in grpc.StatusCode), TIMEOUT, EJECTED, INVALID_RESPONSE)
_OUTCOME_SET = frozenset(OUTCOMES)


# OpenMetrics caps an exemplar's labels at 128 characters in all.
_EXEMPLAR_VALUE_CHARS = 128 - len("request_id")


def exemplar(request_id: str) -> dict[str, str] | None:
    """The request ID as a histogram observation's exemplar: shown in the OpenMetrics format only, never a label."""
    return {"request_id": request_id[:_EXEMPLAR_VALUE_CHARS]} if request_id else None


def kind_methods(kind: str) -> tuple[str, ...]:
    """The method labels of an agency of this kind: its query, its control methods, its hold feed and listing."""
    control = tuple(m.method_name for m in CONTROL_METHODS.values() if m.name.startswith(f"{kind}."))
    return (QUERY[kind].method_name, *control, HOLD_CHANGES[kind].method_name, CASE_HOLDS[kind].method_name)


class AgencyCallMetrics:
    """Label children for one agency and method, so a call touches no label lookup."""

    __slots__ = ("agency", "method", "seconds", "in_flight", "_outcomes")

    def __init__(self, agency: str, method: str):
        self.agency = agency
        self.method = method
        self.seconds = AGENCY_CALL_SECONDS.labels(agency, method)
        self.in_flight = AGENCY_CALLS_IN_FLIGHT.labels(agency)
        self._outcomes = {outcome: AGENCY_CALLS.labels(agency, method, outcome) for outcome in OUTCOMES}

    def outcome(self, outcome: str) -> Counter:
        # A code a newer grpcio might add still lands in a known series.
        return self._outcomes[outcome if outcome in _OUTCOME_SET else grpc.StatusCode.UNKNOWN.name]


_CALL_METRICS: dict[tuple[str, str], AgencyCallMetrics] = {}


def agency_call_metrics(agency: str, method: str) -> AgencyCallMetrics:
    """Label children for one agency and method, made once."""
    found = _CALL_METRICS.get((agency, method))
    if found is None:
        found = _CALL_METRICS[(agency, method)] = AgencyCallMetrics(agency, method)
    return found


def register_agency(agency: str, kind: str) -> None:
    """Create every series of the agency at zero (idempotent)."""
    for method in kind_methods(kind):
        agency_call_metrics(agency, method)
    AGENCY_UP.labels(agency)
    AGENCY_EJECTIONS.labels(agency)
    for event in HEDGE_EVENTS:
        AGENCY_HEDGES.labels(agency, event)


def forget_agency(agency: str) -> None:
    """Remove the series of an agency that left the registry.

    Not in multiprocess mode (GATEWAY_WORKERS > 1), where prometheus_client
    cannot remove samples: they stay until the workers restart.
    """
    for key in [key for key in _CALL_METRICS if key[0] == agency]:
        del _CALL_METRICS[key]
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    for metric in (AGENCY_CALL_SECONDS, AGENCY_CALLS, AGENCY_CALLS_IN_FLIGHT, AGENCY_UP, AGENCY_EJECTIONS,
                   AGENCY_HEDGES):
        metric.remove_by_labels({"agency": agency})
