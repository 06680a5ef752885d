"""Hedged queries: the budget's rule (hypothesis), the delay learnt from recent latency, and against mock hosts:
a slow agency is hedged and the losing attempt cancelled (the agency sees it), a failing agency gets no hedges,
and a caller that goes away cancels the agency calls without blaming the agency."""

import asyncio
import re

import aiohttp
import grpc
from hypothesis import given
from hypothesis import strategies as st

from protos.gateway.v1 import gateway_pb2_grpc
from services.gateway.agencies.hedging import HedgeBudget, HedgePolicy, LatencyWindow
from tests.support.agencies import start_mock_host
from tests.support.auth import auth_headers, issue_token
from tests.support.gateway import asset_request, query_body, running_gateway, sample
from tests.support.tls import GatewayEndpoints

HEDGES = "chakong_gateway_agency_hedges_total"
CALLS = "chakong_gateway_agency_calls_total"


@given(st.lists(st.sampled_from(["call", "hedge", "failure"]), max_size=400))
def test_hedges_never_exceed_the_budget_share_of_calls(events):
    budget = HedgeBudget(ratio=0.05, max_tokens=10.0)
    calls = hedges = 0
    for event in events:
        if event == "call":
            budget.earn()
            calls += 1
        elif event == "hedge":
            hedges += budget.spend()
        else:
            budget.failed()
    # Tokens start at zero: every hedge was earned by twenty calls.
    assert hedges <= 0.05 * calls + 1e-9
    assert 0.0 <= budget.tokens <= 10.0


def test_a_failure_costs_the_hedges_of_twenty_calls():
    budget = HedgeBudget(ratio=0.05, max_tokens=10.0)
    for _ in range(40):
        budget.earn()
    budget.failed()
    assert budget.spend() and not budget.spend()


def test_the_delay_is_a_high_percentile_of_recent_latency_and_none_before_enough_samples():
    window = LatencyWindow(HedgePolicy(percentile=0.9, window=100, refresh=10, min_samples=50, min_delay_s=0.001))
    for i in range(40):
        window.add(0.010)
    assert window.value is None
    for i in range(60):
        window.add(0.010 if i % 10 else 0.200)
    # 6 slow of the last 100: the 90th percentile is a normal answer's time.
    assert window.value == 0.010
    for _ in range(100):
        window.add(0.050)
    assert window.value == 0.050


async def mock_calls(host, outcome: str) -> float:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://{host.endpoints['metrics']}/metrics") as response:
            text = await response.text()
    found = re.search(rf'^chakong_mockhost_calls_total\{{outcome="{outcome}"\}} (\S+)$', text, re.M)
    return float(found.group(1))


async def test_a_slow_agency_is_hedged_and_a_failing_one_is_not(tmp_path, start_service):
    # Both: 30% of calls 300 ms late, a fixed hedge delay of 20 ms. The failing one also fails half its calls
    # (INTERNAL: not a reason to eject it, so it goes on being called).
    slow_host, slow = start_mock_host(start_service, tmp_path, "slow", MOCK_STRAGGLER_RATE="0.3",
                                      MOCK_STRAGGLER_MS="300")
    failing_host, failing = start_mock_host(start_service, tmp_path, "failing", MOCK_STRAGGLER_RATE="0.3",
                                            MOCK_STRAGGLER_MS="300", MOCK_ERROR_RATE="0.5",
                                            MOCK_ERROR_CODE="INTERNAL")
    registry = tmp_path / "agencies.toml"
    registry.write_text((slow + "\n" + failing).replace("timeout_ms = 2000", "timeout_ms = 2000\nhedge_delay_ms = 20"),
                        encoding="utf-8")
    async with running_gateway(tmp_path, [], registry=registry, hold_sync_seconds=0.0) as gateway:
        async with GatewayEndpoints.of(gateway).session(headers=auth_headers()) as session:
            async def ask(n: int) -> None:
                for _ in range(n):
                    async with session.post("/v1/queries", json=query_body()) as response:
                        assert response.status == 200, await response.text()

            await asyncio.gather(*(ask(40) for _ in range(8)))

    # 320 calls earn 16 hedges at 5%; the slow agency's stragglers use them, and the hedges win.
    assert 5 <= sample(HEDGES, agency="slow0000", event="sent") <= 16
    assert sample(HEDGES, agency="slow0000", event="won") >= 3
    assert sample(HEDGES, agency="slow0000", event="budget_exhausted") > 0
    # The attempts that lost were cancelled: counted so by the gateway, seen so by the agency.
    assert sample(CALLS, agency="slow0000", method="QueryAccounts", outcome="CANCELLED") >= 3
    assert await mock_calls(slow_host, "cancelled") >= 3
    assert sample(CALLS, agency="slow0000", method="QueryAccounts", outcome="TIMEOUT") == 0
    # Half its calls fail: it never earns a hedge.
    assert sample(HEDGES, agency="failing0000", event="sent") == 0
    assert sample(HEDGES, agency="failing0000", event="budget_exhausted") > 10
    assert await mock_calls(failing_host, "cancelled") == 0


async def test_a_caller_that_goes_away_cancels_the_agency_calls_without_blame(tmp_path, start_service):
    host, text = start_mock_host(start_service, tmp_path, "stuck", MOCK_STRAGGLER_RATE="1", MOCK_STRAGGLER_MS="5000")
    registry = tmp_path / "agencies.toml"
    registry.write_text(text.replace("timeout_ms = 2000", "timeout_ms = 10000\nhedge = false"), encoding="utf-8")
    async with running_gateway(tmp_path, [], 10_000, registry=registry, hold_sync_seconds=0.0,
                               eject_after_failures=2) as gateway:
        endpoints = GatewayEndpoints.of(gateway)
        channel = endpoints.channel(issue_token())
        stub = gateway_pb2_grpc.AssetGatewayStub(channel)
        try:
            for n in range(1, 4):
                call = stub.QueryAssets(asset_request(), timeout=10)
                await asyncio.sleep(0.3)
                call.cancel()
                assert await call.code() == grpc.StatusCode.CANCELLED
                await wait_for(lambda: mock_calls(host, "cancelled"), n)
            # An SSE stream closed before the agency answered: the same.
            async with endpoints.session(headers=auth_headers()) as session:
                async with session.post("/v1/queries/stream", json=query_body()) as response:
                    assert response.status == 200
                    await asyncio.sleep(0.3)
            await wait_for(lambda: mock_calls(host, "cancelled"), 4)
        finally:
            await channel.close()
        await wait_for(lambda: asyncio.sleep(0, sample(CALLS, agency="stuck0000", method="QueryAccounts",
                                                       outcome="CANCELLED")), 4)
        assert sample(CALLS, agency="stuck0000", method="QueryAccounts", outcome="TIMEOUT") == 0
        # Four calls cut off, with ejection after two failures: still admitted, since none was a failure.
        assert sample("chakong_gateway_agency_up", agency="stuck0000") == 1


async def wait_for(read, at_least: float, within_s: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + within_s
    while (value := await read()) < at_least:
        assert loop.time() < end, f"{value} after {within_s} s, expected at least {at_least}"
        await asyncio.sleep(0.05)
