"""Expose the process's Prometheus registry over HTTP: on its own port, or as what a /metrics handler exports."""

import importlib.metadata
import os
import platform
import re

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Gauge,
    disable_created_metrics,
    multiprocess,
    start_http_server,
)

# Set for the workers of a multi-process gateway (services/gateway/workers.py).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

BUILD_INFO = Gauge(
    "chakong_build_info",
    "Always 1: the running build's package version, source revision (CHAKONG_REVISION, set at image build) and"
    " Python version.",
    ["version", "revision", "python"],
    multiprocess_mode="max",
)


def _version() -> str:
    try:
        return importlib.metadata.version("chakong")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _revision() -> str:
    revision = os.environ.get("CHAKONG_REVISION", "")
    # One short token or nothing: it is a label value.
    return revision if re.fullmatch(r"[0-9A-Za-z._-]{1,40}", revision) else "unknown"


BUILD_INFO.labels(_version(), _revision(), platform.python_version()).set(1)


def start_metrics_server(address: str) -> int:
    """Serve /metrics on host:port (port 0 picks one); returns the bound port."""
    # `_created` series double the output and no alert or dashboard uses them.
    disable_created_metrics()
    host, _, port = address.rpartition(":")
    httpd, _thread = start_http_server(int(port), addr=host)
    return httpd.server_address[1]


def scrape_registry() -> CollectorRegistry:
    """What /metrics exports: this process's registry, or every worker's samples in multiprocess mode."""
    if not os.environ.get(MULTIPROC_ENV):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry
