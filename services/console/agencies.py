"""What the agencies page shows of each agency: the gateway's view of its health, and its call figures from /metrics."""

import math
from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families

DURATION = "chakong_gateway_agency_call_duration_seconds"
CALLS = "chakong_gateway_agency_calls_total"
IN_FLIGHT = "chakong_gateway_agency_calls_in_flight"
UP = "chakong_gateway_agency_up"
# Answers still awaited after the officer's reply went (the gateway keeps them: late answers).
LATE = "chakong_gateway_late_calls_in_flight"


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """histogram_quantile over cumulative (upper bound, count) buckets, as Prometheus computes it; None when empty."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def call_figures(metrics_text: str) -> dict[str, dict]:
    """Per agency, over every method since the gateway started: p50 and p99 (ms), error ratio, calls, in flight,
    late answers waiting, up."""
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    calls: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    in_flight: dict[str, float] = defaultdict(float)
    late: dict[str, float] = defaultdict(float)
    up: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            agency = sample.labels.get("agency")
            if agency is None:
                continue
            if sample.name == f"{DURATION}_bucket":
                buckets[agency][float(sample.labels["le"])] += sample.value
            elif sample.name == CALLS:
                calls[agency][sample.labels.get("outcome", "")] += sample.value
            elif sample.name == IN_FLIGHT:
                in_flight[agency] += sample.value
            elif sample.name == LATE:
                late[agency] += sample.value
            elif sample.name == UP:
                up[agency] = sample.value
    figures = {}
    for agency in set(buckets) | set(calls) | set(up):
        series = list(buckets[agency].items())
        total = sum(calls[agency].values())
        failed = total - calls[agency].get("OK", 0.0)
        p50, p99 = quantile(0.5, series), quantile(0.99, series)
        figures[agency] = {
            "p50_ms": None if p50 is None else p50 * 1000,
            "p99_ms": None if p99 is None else p99 * 1000,
            "calls": int(total),
            "error_ratio": failed / total if total else None,
            "in_flight": int(in_flight[agency]),
            "late": int(late[agency]),
            "up": up.get(agency),
        }
    return figures
