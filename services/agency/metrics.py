"""Prometheus metrics of the mock agencies, defined once per process."""

from prometheus_client import Gauge

AGENCY_RECORDS = Gauge(
    "chakong_agency_records",
    "Records the agency holds from seeding: accounts, vehicles or properties.",
    ["agency", "kind"],
)
