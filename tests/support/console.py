"""The console in a real browser: the full stack on port 0 (8 mock agencies, the gateway, the console), Chromium
driven by Playwright, axe-core injected into each page, screenshots under test-artifacts/console/.

Debian's chromium is used as it is (`playwright install` cannot download browsers here): without it the
browser tests skip, except in CI, where they fail.
"""

import asyncio
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.agencies import Agency, agency_env, start_all
from tests.support.gateway import register_showcase_case, write_registry
from tests.support.harness import REPO, ServiceProcess
from tests.support.tls import TLS_PORTS_ENV, GatewayEndpoints, run_ca

CHROMIUM = os.environ.get("CHAKONG_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = REPO / "test-artifacts" / "console"
# The launcher's registry: six banks, the vehicle and the real-estate registry.
EIGHT = (("icbc", "bank", "bank"), ("ccb", "bank", "bank"), ("boc", "bank", "bank"), ("hsbank", "bank", "bank"),
         ("alipay", "bank", "payment"), ("gyzq", "bank", "securities"), ("hefei-vmo", "vehicle", None),
         ("hefei-rer", "realestate", None))


def require_browser() -> None:
    """Skip (fail in CI) without Debian's chromium or axe-core."""
    missing = []
    if not Path(CHROMIUM).is_file():
        missing.append(f"{CHROMIUM} (apt-get install chromium; scripts/install_ci_tools.sh)")
    if not AXE.is_file():
        missing.append(f"{AXE} (scripts/install_node_tools.sh)")
    if missing:
        message = "the browser tests need " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@dataclass
class Stack:
    agencies: list[Agency]
    gateway: ServiceProcess
    console: ServiceProcess
    processes: list[ServiceProcess] = field(default_factory=list)

    @property
    def console_url(self) -> str:
        return self.console.endpoints["url"]

    @property
    def gateway_endpoints(self) -> GatewayEndpoints:
        return GatewayEndpoints.of(self.gateway)

    def agency(self, agency_id: str) -> ServiceProcess:
        return next(a.process for a in self.agencies if a.id == agency_id)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def start_stack(directory: Path) -> Stack:
    """8 agencies, the gateway on TLS ports (ejecting an agency after 2 failures) and the console, as processes."""
    started: list[ServiceProcess] = []

    def start(module: str, **env: str) -> ServiceProcess:
        service = ServiceProcess(module, {"DATA_DIR": str(directory), **env})
        started.append(service)
        return service.start()

    try:
        processes = start_all(start, [(i, kind, agency_env(i, kind, profile)) for i, kind, profile in EIGHT])
        agencies = [Agency(i, kind, p.endpoints["grpc"], timeout_ms=3000, process=p)
                    for (i, kind, _), p in zip(EIGHT, processes)]
        gateway = start("services.gateway", GATEWAY_GRPC_ADDRESS="127.0.0.1:0", GATEWAY_HTTP_ADDRESS="127.0.0.1:0",
                        AGENCY_REGISTRY=str(write_registry(directory, agencies)), QUERY_DEADLINE_MS="3000",
                        GRACE_SECONDS="1", **TLS_PORTS_ENV, EJECT_AFTER_FAILURES="2",
                        EJECT_COOLDOWN_SECONDS="60", AGENCY_IDLE_PROBE_SECONDS="1", LOG_FORMAT="text")
        endpoints = GatewayEndpoints.of(gateway)
        asyncio.run(register_showcase_case(endpoints))
        console = start("services.console", CONSOLE_HTTP_ADDRESS="127.0.0.1:0",
                        CONSOLE_GATEWAY_URL=endpoints.base_url, CONSOLE_GATEWAY_CA=str(run_ca()),
                        CONSOLE_DEV_SIGNING_KEY=os.environ["CHAKONG_TOKEN_SIGNING_KEY"], LOG_FORMAT="text")
    except BaseException:
        for service in reversed(started):
            service.stop()
        raise
    return Stack(agencies, gateway, console, started)


def artifacts() -> Path:
    """test-artifacts/console/, emptied once per run (the folder is in .gitignore)."""
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


def axe_violations(page, impacts=("serious", "critical")) -> list[str]:
    """axe-core run in the page: one line per serious or critical violation, with the nodes it found."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated over the DevTools protocol: an injected <script> would be refused by the page's CSP.
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("async () => await window.axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {json.dumps([n['target'] for n in v['nodes']][:3])}"
        for v in result["violations"] if v["impact"] in impacts
    ]
