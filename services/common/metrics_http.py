"""Expose the process's Prometheus registry over HTTP: on its own port, or as what a /metrics handler exports."""

import os

from prometheus_client import REGISTRY, CollectorRegistry, disable_created_metrics, multiprocess, start_http_server

# Set for the workers of a multi-process gateway (services/gateway/workers.py).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


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
