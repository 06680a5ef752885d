"""The asset gateway over gRPC: parallel fan-out to real mock agencies, deadlines, retries, streaming."""

import asyncio
import contextlib
import re
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from protos.common.v1 import common_pb2
from protos.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from tests.support.agencies import Agency, start_agencies
from tests.support.auth import issue_token
from tests.support.gateway import (
    DEADLINE_MS,
    ask_directly,
    asset_request,
    debtor,
    register_showcase_case,
    running_gateway,
    sample,
    write_registry,
    wrong_check_character,
)
from tests.support.harness import REPO, ServiceProcess
from tests.support.tls import GatewayEndpoints

OK = gateway_pb2.AGENCY_STATUS_OK
TIMEOUT = gateway_pb2.AGENCY_STATUS_TIMEOUT
UNAVAILABLE = gateway_pb2.AGENCY_STATUS_UNAVAILABLE
ERROR = gateway_pb2.AGENCY_STATUS_ERROR


@contextlib.asynccontextmanager
async def gateway_stub(directory: Path, agencies: list[Agency], deadline_ms: int = DEADLINE_MS):
    async with running_gateway(directory, agencies, deadline_ms) as gateway:
        async with GatewayEndpoints.of(gateway).channel(issue_token()) as channel:
            yield gateway_pb2_grpc.AssetGatewayStub(channel)


def by_id(response) -> dict[str, gateway_pb2.AgencyResult]:
    return {result.agency_id: result for result in response.results}


async def test_every_agency_answers_and_the_summary_adds_up(healthy, tmp_path):
    async with gateway_stub(tmp_path, healthy) as stub:
        call = stub.QueryAssets(asset_request(request_id="req-all-1"))
        response = await call
        trailing = dict(await call.trailing_metadata())

    assert response.request_id == "req-all-1" == trailing["x-request-id"]
    assert [r.agency_id for r in response.results] == [a.id for a in healthy]  # registry order
    assert all(r.status == OK and r.attempts == 1 and r.error_message == "" for r in response.results)
    assert response.complete
    results = by_id(response)
    direct = {a.id: await ask_directly(a, debtor()) for a in healthy}
    assert list(results["icbc"].accounts) == direct["icbc"] and direct["icbc"]
    assert list(results["alipay"].accounts) == direct["alipay"]
    assert list(results["hefei-vmo"].vehicles) == direct["hefei-vmo"] and direct["hefei-vmo"]
    assert list(results["hefei-rer"].properties) == direct["hefei-rer"] and direct["hefei-rer"]
    assert results["hefei-vmo"].kind == gateway_pb2.AGENCY_KIND_VEHICLE
    assert results["icbc"].display_name == "icbc 测试"

    accounts = direct["icbc"] + direct["alipay"]
    summary = response.summary
    assert summary.total_balance_fen == sum(a.balance_fen for a in accounts)
    assert summary.available_balance_fen == sum(a.available_balance_fen for a in accounts)
    assert summary.frozen_fen == sum(a.frozen_fen for a in accounts)
    assert (summary.account_count, summary.vehicle_count, summary.property_count) == (
        len(accounts),
        len(direct["hefei-vmo"]),
        len(direct["hefei-rer"]),
    )
    assert (summary.agencies_asked, summary.agencies_ok) == (4, 4)
    assert 0 < max(r.latency_ms for r in response.results) <= response.latency_ms < DEADLINE_MS
    # Each agency got the request ID (it logs the query under it).
    for agency in healthy:
        await wait_for_output(agency.process, "query req-all-1")


async def wait_for_output(process: ServiceProcess, text: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(text in line for line in list(process.output)):
        assert time.monotonic() < deadline, f"{text!r} not in the output of {process.module}"
        await asyncio.sleep(0.02)


async def test_request_id_is_generated_and_agencies_can_be_chosen(healthy, tmp_path):
    async with gateway_stub(tmp_path, healthy) as stub:
        response = await stub.QueryAssets(asset_request(agency_ids=["hefei-rer", "icbc"]))
        agencies = await stub.ListAgencies(gateway_pb2.ListAgenciesRequest())

    assert re.fullmatch(r"[0-9a-f]{32}", response.request_id)
    # Registry order, not the order asked in.
    assert [r.agency_id for r in response.results] == ["icbc", "hefei-rer"]
    assert (response.summary.agencies_asked, response.summary.agencies_ok, response.complete) == (2, 2, True)
    assert [(a.agency_id, a.kind, a.address, a.timeout_ms) for a in agencies.agencies] == [
        (a.id, gateway_pb2.AgencyKind.Value(f"AGENCY_KIND_{a.kind.upper()}"), a.address, 1500) for a in healthy
    ]


async def test_a_killed_agency_is_unavailable_and_the_rest_still_answer(healthy, tmp_path, start_service):
    (doomed,) = start_agencies(start_service, ("doomed-bank", "bank", {}))
    async with gateway_stub(tmp_path, [*healthy, doomed]) as stub:
        assert (await stub.QueryAssets(asset_request())).complete  # its channel was up
        doomed.process.kill()
        started = time.monotonic()
        response = await stub.QueryAssets(asset_request())
        elapsed = time.monotonic() - started

    print(f"\nkilled agency (SIGKILL): answered in {elapsed * 1000:.1f} ms, deadline {DEADLINE_MS} ms")
    assert elapsed < DEADLINE_MS / 1000 + 0.5
    results = by_id(response)
    assert results["doomed-bank"].status == UNAVAILABLE
    assert results["doomed-bank"].error_message.startswith("UNAVAILABLE: ")
    assert results["doomed-bank"].attempts == 3  # refused fast, so every retry fits
    assert all(results[a.id].status == OK for a in healthy)
    assert not response.complete
    assert (response.summary.agencies_asked, response.summary.agencies_ok) == (5, 4)


async def test_a_hung_agency_times_out_at_the_deadline(healthy, tmp_path, start_service):
    # SIGSTOP keeps the connection open but nothing answers: only the deadline ends the wait.
    (hung,) = start_agencies(start_service, ("hung-bank", "bank", {}))
    async with gateway_stub(tmp_path, [*healthy, hung]) as stub:
        assert (await stub.QueryAssets(asset_request())).complete
        hung.process.signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            response = await stub.QueryAssets(asset_request())
            elapsed = time.monotonic() - started
        finally:
            hung.process.signal(signal.SIGCONT)

    print(f"\nhung agency (SIGSTOP): answered in {elapsed * 1000:.1f} ms, deadline {DEADLINE_MS} ms")
    assert DEADLINE_MS / 1000 - 0.01 <= elapsed < DEADLINE_MS / 1000 + 0.5
    results = by_id(response)
    assert results["hung-bank"].status == TIMEOUT
    assert results["hung-bank"].error_message.startswith("DEADLINE_EXCEEDED: ")
    assert results["hung-bank"].attempts == 1
    assert all(results[a.id].status == OK for a in healthy)
    assert not response.complete


async def test_deadlines_slow_agency_overall_per_request_and_per_agency(healthy, tmp_path, start_service):
    (slow,) = start_agencies(
        start_service, ("slow-bank", "bank", {"FAULT_LATENCY_P50_MS": "1500", "FAULT_LATENCY_P99_MS": "1500"})
    )
    icbc = healthy[0]
    async with gateway_stub(tmp_path, [icbc, slow, replace(slow, id="slow-capped", timeout_ms=200)]) as stub:
        timings = {}
        for label, deadline_ms, agency_ids in (
            ("default", 0, ["icbc", "slow-bank"]),
            ("above default, lowered", 60_000, ["icbc", "slow-bank"]),
            ("shorter, honoured", 300, ["icbc", "slow-bank"]),
            ("agency timeout_ms 200", 0, ["icbc", "slow-capped"]),
        ):
            started = time.monotonic()
            response = await stub.QueryAssets(asset_request(deadline_ms=deadline_ms, agency_ids=agency_ids))
            timings[label] = elapsed = time.monotonic() - started
            slow_result = response.results[1]
            assert response.results[0].status == OK, label
            assert slow_result.status == TIMEOUT, label
            assert slow_result.error_message.startswith("DEADLINE_EXCEEDED: "), label
            assert not response.complete and response.summary.agencies_ok == 1, label
            # Generous: CI machines are loaded; the slow agency needs 1.5 s, so any
            # answer well before that shows the call was cut off.
            assert elapsed == pytest.approx(slow_result.latency_ms / 1000, abs=0.3), label

    print("\n" + ", ".join(f"{label}: {t * 1000:.0f} ms" for label, t in timings.items()))
    assert DEADLINE_MS / 1000 - 0.01 <= timings["default"] < DEADLINE_MS / 1000 + 0.45
    assert DEADLINE_MS / 1000 - 0.01 <= timings["above default, lowered"] < DEADLINE_MS / 1000 + 0.45
    assert 0.29 <= timings["shorter, honoured"] < 0.6
    assert 0.19 <= timings["agency timeout_ms 200"] < 0.5


async def test_the_callers_own_grpc_deadline_is_respected(healthy, tmp_path, start_service):
    (slow,) = start_agencies(start_service, ("slow-bank", "bank", {"FAULT_LATENCY_P50_MS": "1500"}))
    async with gateway_stub(tmp_path, [healthy[0], slow]) as stub:
        await stub.ListAgencies(gateway_pb2.ListAgenciesRequest())  # connected
        request = asset_request()
        started = time.monotonic()
        response = await stub.QueryAssets(request, timeout=0.4)
        elapsed = time.monotonic() - started
    # A partial answer just before the caller gives up, not DEADLINE_EXCEEDED.
    assert [r.status for r in response.results] == [OK, TIMEOUT]
    assert 0.3 < elapsed < 0.4


async def test_retries_only_what_did_not_take_effect(healthy, tmp_path, start_service):
    flaky, broken = start_agencies(
        start_service,
        ("down-bank", "bank", {"FAULT_ERROR_RATE": "1", "FAULT_ERROR_CODE": "UNAVAILABLE"}),
        ("broken-bank", "bank", {"FAULT_ERROR_RATE": "1", "FAULT_ERROR_CODE": "INTERNAL"}),
    )
    before_unavailable = sample(
        "chakong_gateway_agency_calls_total", agency="down-bank", method="QueryAccounts", outcome="UNAVAILABLE"
    )
    before_internal = sample(
        "chakong_gateway_agency_calls_total", agency="broken-bank", method="QueryAccounts", outcome="INTERNAL"
    )
    async with gateway_stub(tmp_path, [healthy[0], flaky, broken]) as stub:
        started = time.monotonic()
        response = await stub.QueryAssets(asset_request())
        elapsed = time.monotonic() - started

    results = by_id(response)
    assert (results["icbc"].status, results["icbc"].attempts) == (OK, 1)
    assert (results["down-bank"].status, results["down-bank"].attempts) == (UNAVAILABLE, 3)
    assert results["down-bank"].error_message == "UNAVAILABLE: injected fault (FAULT_ERROR_RATE)"
    assert (results["broken-bank"].status, results["broken-bank"].attempts) == (ERROR, 1)
    assert results["broken-bank"].error_message == "INTERNAL: injected fault (FAULT_ERROR_RATE)"
    assert not response.complete
    assert elapsed < 0.5  # backoff is tens of milliseconds, not the deadline
    after_unavailable = sample(
        "chakong_gateway_agency_calls_total", agency="down-bank", method="QueryAccounts", outcome="UNAVAILABLE"
    )
    after_internal = sample(
        "chakong_gateway_agency_calls_total", agency="broken-bank", method="QueryAccounts", outcome="INTERNAL"
    )
    assert (after_unavailable - before_unavailable, after_internal - before_internal) == (3, 1)


async def test_stream_yields_results_in_arrival_order_then_final(healthy, tmp_path, start_service):
    (slow,) = start_agencies(start_service, ("slow-bank", "bank", {"FAULT_LATENCY_P50_MS": "400"}))
    # The slow agency comes first in the registry, so arrival order shows.
    async with gateway_stub(tmp_path, [slow, *healthy]) as stub:
        call = stub.StreamAssets(asset_request(request_id="stream-1"))
        events = []
        async for event in call:
            events.append((time.monotonic(), event))
        initial = dict(await call.initial_metadata())

    assert initial["x-request-id"] == "stream-1"
    kinds = [event.WhichOneof("event") for _, event in events]
    assert kinds == ["result"] * 5 + ["final"]
    order = [event.result.agency_id for _, event in events[:-1]]
    assert sorted(order[:4]) == sorted(a.id for a in healthy) and order[4] == "slow-bank"
    assert all(event.result.status == OK for _, event in events[:-1])
    latencies = [event.result.latency_ms for _, event in events[:-1]]
    assert latencies == sorted(latencies) and latencies[-1] >= 400
    final = events[-1][1].final
    assert final.request_id == "stream-1" and final.complete and not final.results
    assert (final.summary.agencies_asked, final.summary.agencies_ok) == (5, 5)
    assert final.summary.account_count == sum(len(e.result.accounts) for _, e in events[:-1])
    assert final.latency_ms >= latencies[-1]


async def test_stream_reports_cut_off_agencies_before_the_final_event(healthy, tmp_path, start_service):
    (slow,) = start_agencies(start_service, ("slow-bank", "bank", {"FAULT_LATENCY_P50_MS": "1500"}))
    async with gateway_stub(tmp_path, [slow, healthy[0]]) as stub:
        started = time.monotonic()
        events = [event async for event in stub.StreamAssets(asset_request(deadline_ms=300))]
        elapsed = time.monotonic() - started
    assert [e.WhichOneof("event") for e in events] == ["result", "result", "final"]
    assert [(e.result.agency_id, e.result.status) for e in events[:2]] == [("icbc", OK), ("slow-bank", TIMEOUT)]
    assert not events[2].final.complete
    assert elapsed < 0.6


def bad(**changes) -> gateway_pb2.AssetQueryRequest:
    request = asset_request()
    for path, value in changes.items():
        target = request
        *parents, name = path.split("__")
        for parent in parents:
            target = getattr(target, parent)
        if isinstance(value, list):
            getattr(target, name).extend(value)
        else:
            setattr(target, name, value)
    return request


@pytest.mark.parametrize(
    ("request_changes", "field"),
    [
        ({"subject__id_number": "WRONG"}, "subject.id_number"),
        ({"subject__name": " 张三"}, "subject.name"),
        ({"subject__name": "张" * 101}, "subject.name"),
        ({"subject__type": common_pb2.SUBJECT_TYPE_UNSPECIFIED}, "subject.type"),
        ({"case__case_number": ""}, "case.case_number"),
        ({"case__court_code": "x" * 20}, "case.court_code"),
        ({"case__document_number": "D" * 65}, "case.document_number"),
        ({"request_id": "has spaces"}, "request_id"),
        ({"agency_ids": ["icbc", "nowhere"]}, "agency_ids"),
        ({"agency_ids": ["icbc", "icbc"]}, "agency_ids"),
        ({"deadline_ms": -1}, "deadline_ms"),
    ],
)
async def test_bad_requests_are_rejected_naming_the_field(healthy, tmp_path, request_changes, field):
    async with gateway_stub(tmp_path, healthy) as stub:
        for method in (stub.QueryAssets, stub.StreamAssets):
            call = method(bad(**request_changes))
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                if method is stub.QueryAssets:
                    await call
                else:
                    [event async for event in call]
            assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert raised.value.details().startswith(f"{field}: ")
            status = await rpc_status.aio.from_call(call)
            violation = error_details_pb2.BadRequest()
            assert status.details[0].Unpack(violation)
            assert violation.field_violations[0].field == field
    if "agency_ids" in request_changes:
        assert "nowhere" in raised.value.details() or "more than once" in raised.value.details()


async def test_a_wrong_check_character_is_rejected(healthy, tmp_path):
    async with gateway_stub(tmp_path, healthy) as stub:
        request = asset_request()
        request.subject.id_number = wrong_check_character(request.subject.id_number)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.QueryAssets(request)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith("subject.id_number: check character does not match")


async def test_the_gateway_runs_as_a_process_and_stops_on_sigterm(healthy, tmp_path, start_service):
    registry = write_registry(tmp_path, healthy)
    gateway = start_service(
        "services.gateway",
        GATEWAY_GRPC_ADDRESS="127.0.0.1:0",
        GATEWAY_HTTP_ADDRESS="127.0.0.1:0",
        AGENCY_REGISTRY=str(registry),
        QUERY_DEADLINE_MS=str(DEADLINE_MS),
        GRACE_SECONDS="1",
    )
    assert gateway.endpoints["service"] == "gateway"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", gateway.endpoints["http"])
    await register_showcase_case(f"http://{gateway.endpoints['http']}")
    async with GatewayEndpoints.of(gateway).channel(issue_token()) as channel:
        response = await gateway_pb2_grpc.AssetGatewayStub(channel).QueryAssets(asset_request(), timeout=5)
    assert response.complete
    started = time.monotonic()
    assert gateway.stop() == 0
    assert time.monotonic() - started < 3
    log = "".join(gateway.output)
    # One line per query, with the subject masked.
    assert response.request_id in log
    assert debtor().id_number not in log and debtor().id_number[:6] in log


def test_a_bad_registry_stops_start_up_with_one_clear_line(tmp_path):
    registry = tmp_path / "agencies.toml"
    registry.write_text('[[agency]]\nid = "x"\nkind = "ship"\nname = "n"\naddress = "h:1"\ntimeout_ms = 5\n')
    env = {**os.environ, "AGENCY_REGISTRY": str(registry), "GATEWAY_GRPC_ADDRESS": "127.0.0.1:0",
           "GATEWAY_HTTP_ADDRESS": "127.0.0.1:0"}
    done = subprocess.run(
        [sys.executable, "-m", "services.gateway"], cwd=REPO, env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"""error: {registry}: [[agency]] #1 (id "x"): kind: 'ship' is not one of bank, vehicle, realestate"""
    )
    assert "READY" not in done.stdout
