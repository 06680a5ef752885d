"""GATEWAY_WORKERS: several gateway processes on one host sharing the ports, one supervisor, one set of metrics."""

import asyncio
import os
import signal

from prometheus_client.parser import text_string_to_metric_families

from protos.gateway.v1 import gateway_pb2_grpc
from tests.support.agencies import start_agencies
from tests.support.auth import auth_headers, issue_token
from tests.support.gateway import asset_request, query_body, register_showcase_case, write_registry
from tests.support.tls import TLS_PORTS_ENV, GatewayEndpoints

WORKERS = 2
# The mock agencies in plaintext; the workers' shared ports on TLS.
PLAINTEXT = {"INSECURE_PLAINTEXT": "1"}


def start_gateway(start_service, tmp_path, agencies, **env: str):
    return start_service(
        "services.gateway",
        GATEWAY_GRPC_ADDRESS="127.0.0.1:0",
        GATEWAY_HTTP_ADDRESS="127.0.0.1:0",
        AGENCY_REGISTRY=str(write_registry(tmp_path, agencies)),
        LEDGER_URL=f"sqlite:///{tmp_path}/gateway-ledger.db",
        GATEWAY_WORKERS=str(WORKERS),
        GRACE_SECONDS="1",
        LOG_FORMAT="text",
        **{**TLS_PORTS_ENV, **env},
    )


def worker_pids(supervisor_pid: int) -> set[int]:
    children = f"/proc/{supervisor_pid}/task/{supervisor_pid}/children"
    with open(children) as f:
        return {int(pid) for pid in f.read().split()}


async def scrape(gateway: GatewayEndpoints) -> dict[tuple[str, tuple], float]:
    async with gateway.session() as session, session.get("/metrics") as response:
        text = await response.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: dict, name: str) -> float:
    return sum(value for (n, _), value in samples.items() if n == name)


async def test_workers_share_the_ports_and_count_every_query_once(start_service, tmp_path):
    agencies = start_agencies(start_service, ("icbc", "bank", PLAINTEXT))
    gateway = start_gateway(start_service, tmp_path, agencies)
    endpoints = GatewayEndpoints.of(gateway)
    assert gateway.endpoints["workers"] == str(WORKERS) and endpoints.tls
    assert len(worker_pids(gateway.proc.pid)) == WORKERS
    await register_showcase_case(endpoints)

    # A new connection per query, so the kernel spreads them over the workers.
    http_queries, grpc_queries = 24, 8
    for _ in range(http_queries):
        async with endpoints.session(headers=auth_headers()) as session:
            async with session.post("/v1/queries", json=query_body()) as response:
                assert response.status == 200, await response.text()
    for _ in range(grpc_queries):
        async with endpoints.channel(issue_token()) as channel:
            assert (await gateway_pb2_grpc.AssetGatewayStub(channel).QueryAssets(asset_request(), timeout=5)).complete

    samples = await scrape(endpoints)
    assert total(samples, "chakong_gateway_queries_total") == http_queries + grpc_queries
    complete = ("chakong_gateway_queries_total", (("api", "http"), ("court", "340100"), ("result", "complete")))
    assert samples[complete] == http_queries
    bucket = ("chakong_gateway_query_duration_seconds_count", (("api", "http"),))
    assert samples[bucket] == http_queries
    # Live gauges add up across workers, and no scrape shows a per-pid series.
    assert not any(dict(labels).get("pid") for (_, labels) in samples)


async def test_a_crashed_worker_is_restarted_and_sigterm_stops_them_all(start_service, tmp_path):
    agencies = start_agencies(start_service, ("icbc", "bank", PLAINTEXT))
    gateway = start_gateway(start_service, tmp_path, agencies)
    endpoints = GatewayEndpoints.of(gateway)
    await register_showcase_case(endpoints)
    before = worker_pids(gateway.proc.pid)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)

    for _ in range(100):
        await asyncio.sleep(0.1)
        now = worker_pids(gateway.proc.pid)
        if len(now) == WORKERS and victim not in now:
            break
    assert len(now) == WORKERS and victim not in now, now
    assert "died" in "".join(gateway.output)

    # The survivors and the replacement serve on the same port meanwhile.
    for _ in range(6):
        async with endpoints.session(headers=auth_headers()) as session:
            async with session.post("/v1/queries", json=query_body()) as response:
                assert response.status == 200, await response.text()

    assert gateway.stop(timeout=20) == 0
    for pid in now:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
