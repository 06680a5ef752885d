"""Real Prometheus and Alertmanager servers (Debian's packages) on free loopback ports, with the shipped
rules and routing, and a webhook receiver that records what Alertmanager sends.
"""

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.harness import REPO

PROMETHEUS_DIR = REPO / "ops" / "prometheus"
ALERTMANAGER_CONFIG = REPO / "ops" / "alertmanager" / "alertmanager.yml"


def tool(name: str) -> str:
    """The path of a Debian-packaged tool; skipped locally, failed in CI (CI set) when absent."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (scripts/install_ci_tools.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def wait_for(check, timeout: float, interval: float = 0.5, what: str = "condition"):
    """check() until it returns something truthy, within `timeout` seconds; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except OSError:
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Webhook:
    """An HTTP server standing in for the on-call bridge: every POST body, by path, in order."""

    def __init__(self):
        received: list[tuple[float, str, dict]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((time.monotonic(), self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def posts(self, path: str) -> list[tuple[float, dict]]:
        return [(at, body) for at, p, body in list(self.received) if p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Server:
    """One monitoring server process; stopped (and waited for) by close()."""

    def __init__(self, args: list[str], url: str, log: Path):
        self.url = url
        self._log = log.open("w")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: self._ready(), 30, 0.2, f"{args[0]} to be ready")
        except AssertionError:
            self.close()
            raise AssertionError(f"{args[0]} did not start:\n{log.read_text()}") from None

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError("exited")
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
            return response.status == 200

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def start_alertmanager(directory: Path, webhook: Webhook) -> Server:
    """The shipped routing, with the receivers' URLs pointed at `webhook` (/page, /ticket)."""
    config = ALERTMANAGER_CONFIG.read_text(encoding="utf-8")
    for path in ("page", "ticket"):
        config = config.replace(f"http://oncall-bridge:8080/chakong/{path}", f"http://127.0.0.1:{webhook.port}/{path}")
    assert f"127.0.0.1:{webhook.port}/page" in config
    (directory / "alertmanager.yml").write_text(config, encoding="utf-8")
    port = free_port()
    return Server(
        [
            tool("prometheus-alertmanager"),
            f"--config.file={directory / 'alertmanager.yml'}",
            f"--storage.path={directory / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        f"http://127.0.0.1:{port}",
        directory / "alertmanager.log",
    )


def start_prometheus(directory: Path, gateway: str, agencies: dict[str, str], alertmanager: str) -> Server:
    """Prometheus with the shipped rule files, scraping every second, sending to `alertmanager`.

    `agencies`: agency ID -> its metrics address, labelled as ops/prometheus/prometheus.yml does.
    """
    for name in ("alerts.yml", "slo.yml"):
        shutil.copy(PROMETHEUS_DIR / name, directory / name)
    agency_targets = "\n".join(
        f'      - targets: ["{address}"]\n        labels: {{agency: {agency_id}}}' for agency_id, address in agencies.items()
    )
    (directory / "prometheus.yml").write_text(
        f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [alerts.yml, slo.yml]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["{alertmanager.removeprefix('http://')}"]
scrape_configs:
  - job_name: gateway
    static_configs:
      - targets: ["{gateway}"]
  - job_name: agencies
    honor_labels: true
    static_configs:
{agency_targets}
""",
        encoding="utf-8",
    )
    port = free_port()
    return Server(
        [
            tool("prometheus"),
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--enable-feature=exemplar-storage",
        ],
        f"http://127.0.0.1:{port}",
        directory / "prometheus.log",
    )


def query(prometheus: Server, expr: str, at: float | None = None) -> list[dict]:
    params = {"query": expr, **({"time": repr(at)} if at is not None else {})}
    answer = get_json(f"{prometheus.url}/api/v1/query?{urllib.parse.urlencode(params)}")
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def value(prometheus: Server, expr: str, at: float | None = None) -> float | None:
    result = query(prometheus, expr, at)
    return float(result[0]["value"][1]) if result else None
