"""Lifecycle: SIGTERM drains the gateway and the agencies; /readyz follows the ledger."""

import asyncio
import signal
import time
import uuid

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.gateway.access.stores import StoreProbe
from tests.support.agencies import Agency, agency_env
from tests.support.auth import auth_headers
from tests.support.gateway import register_showcase_case
from tests.support.gateway_process import query, start_gateway
from tests.support.postgres import pg_admin
from tests.support.tls import GatewayEndpoints

SLOW_MS = "1500"


async def test_sigterm_during_a_slow_query_stops_taking_work_and_finishes_it(tmp_path, start_service):
    slow = start_service("services.bank", **agency_env("icbc", "bank", "bank", FAULT_LATENCY_P50_MS=SLOW_MS))
    agency = Agency("icbc", "bank", slow.endpoints["grpc"], timeout_ms=4000)
    gateway, _, base = start_gateway(tmp_path, start_service, [agency], QUERY_DEADLINE_MS="4000", GRACE_SECONDS="5")
    await register_showcase_case(base)
    async with (
        GatewayEndpoints.of(gateway).channel() as channel,
        aiohttp.ClientSession(headers=auth_headers()) as session,
    ):
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        in_flight = asyncio.create_task(query(session, base))
        await asyncio.sleep(0.3)
        gateway.signal(signal.SIGTERM)
        signalled = time.monotonic()
        assert (await asyncio.wait_for(watch.read(), 1)).status == health_pb2.HealthCheckResponse.NOT_SERVING
        async with session.get(f"{base}/readyz") as response:
            assert response.status == 503
        not_ready_after = time.monotonic() - signalled
        # New work is refused while the old finishes.
        async with session.post(f"{base}/v1/queries", json={}) as response:
            assert response.status == 503
        results = await in_flight
        assert results["icbc"]["status"] == "AGENCY_STATUS_OK"
    assert await asyncio.to_thread(gateway.proc.wait, 10) == 0
    assert not_ready_after < 0.5
    print(f"\nNOT_SERVING and /readyz 503 within {not_ready_after * 1000:.0f} ms of SIGTERM; in-flight query OK")


async def test_an_agency_stopped_with_sigterm_answers_the_call_in_flight(tmp_path, start_service):
    slow = start_service("services.bank", **agency_env("icbc", "bank", "bank", FAULT_LATENCY_P50_MS=SLOW_MS))
    agency = Agency("icbc", "bank", slow.endpoints["grpc"], timeout_ms=4000)
    _, _, base = start_gateway(tmp_path, start_service, [agency], QUERY_DEADLINE_MS="4000")
    await register_showcase_case(base)
    async with aiohttp.ClientSession(headers=auth_headers()) as session:
        in_flight = asyncio.create_task(query(session, base))
        await asyncio.sleep(0.3)
        slow.signal(signal.SIGTERM)
        assert (await in_flight)["icbc"]["status"] == "AGENCY_STATUS_OK"
    assert await asyncio.to_thread(slow.proc.wait, 10) == 0


async def test_readyz_follows_the_ledger(tmp_path, start_service, pg_database):
    # A database of its own, so dropping it harms no other test.
    name = f"chakong_ready_{uuid.uuid4().hex[:8]}"
    admin = pg_database.rpartition("/")[0] + "/postgres"
    pg_admin(admin, f'CREATE DATABASE "{name}"')
    try:
        bank = start_service("services.bank", **agency_env("icbc", "bank", "bank"))
        _, _, base = start_gateway(
            tmp_path, start_service, [Agency("icbc", "bank", bank.endpoints["grpc"])],
            LEDGER_URL=pg_database.rpartition("/")[0] + f"/{name}",
        )
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/readyz") as response:
                assert response.status == 200, await response.text()
            await asyncio.to_thread(pg_admin, admin, f'DROP DATABASE "{name}" WITH (FORCE)')
            async with session.get(f"{base}/readyz") as response:
                assert response.status == 503
                assert any(r.startswith("ledger unreachable") for r in (await response.json())["reasons"])
            # Readiness asks again each time: back when the database is.
            await asyncio.to_thread(pg_admin, admin, f'CREATE DATABASE "{name}"')
            started = time.monotonic()
            while True:
                async with session.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        break
                assert time.monotonic() - started < 10
                await asyncio.sleep(0.1)
    finally:
        await asyncio.to_thread(pg_admin, admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class _InstantStore:
    async def ping(self) -> None:
        await asyncio.sleep(0)


async def test_the_store_probe_stops_even_when_cancelled_as_a_ping_completes():
    # A cancel landing in the loop turn a ping completes in was swallowed by
    # asyncio.wait_for (Python 3.11), and the gateway's stop hung for good.
    for _ in range(300):
        probe = StoreProbe(_InstantStore(), _InstantStore(), interval_s=0, timeout_s=1)
        probe.start()
        for _ in range(3):
            await asyncio.sleep(0)
        async with asyncio.timeout(5):
            await probe.close()
