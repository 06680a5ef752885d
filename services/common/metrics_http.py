"""Expose the process's Prometheus registry over HTTP on its own port."""

from prometheus_client import disable_created_metrics, start_http_server


def start_metrics_server(address: str) -> int:
    """Serve /metrics on host:port (port 0 picks one); returns the bound port."""
    # `_created` series double the output and no alert or dashboard uses them.
    disable_created_metrics()
    host, _, port = address.rpartition(":")
    httpd, _thread = start_http_server(int(port), addr=host)
    return httpd.server_address[1]
