"""Agency quotas (the agency's own peak in-flight count), interactive before batch, and late answers kept."""

import asyncio
import dataclasses
import json
import time

import pytest

from services.gateway.agencies.quotas import BATCH, INTERACTIVE, PRIORITY, AgencyQuota
from tests.support.agencies import start_agencies
from tests.support.batch import csv_bytes, register_cases, results, submit_csv, wait_ended
from tests.support.control import control_stack
from tests.support.metrics import sample_value, scrape

DEADLINE_MS = 1000


async def test_a_quota_holds_its_caps_and_serves_interactive_calls_first():
    quota = AgencyQuota("unit-bank", max_concurrent=3)
    running, peak, order = 0, 0, []

    async def call(name: str, priority: str):
        nonlocal running, peak
        PRIORITY.set(priority)
        await quota.acquire()
        try:
            running += 1
            peak = max(peak, running)
            order.append(name)
            await asyncio.sleep(0.01)
        finally:
            running -= 1
            quota.release()

    batch = [asyncio.create_task(call(f"b{i}", BATCH)) for i in range(12)]
    await asyncio.sleep(0)  # the batch holds all 3 slots and 9 wait
    urgent = asyncio.create_task(call("urgent", INTERACTIVE))
    await asyncio.gather(*batch, urgent)
    assert peak == 3
    assert order.index("urgent") == 3, order  # the first slot freed, ahead of 9 waiting batch calls

    rate = AgencyQuota("unit-bank-rate", per_second=20)
    started = time.monotonic()
    for _ in range(30):
        await rate.acquire()
        rate.release()
    # A burst of one second's worth (20), then 20 a second.
    assert 0.45 <= time.monotonic() - started < 1.0


def peak_in_flight(agency, method: str = "QueryAccounts") -> float:
    return sample_value(scrape(agency.process.endpoints["metrics"]), "grpc_server_peak_in_flight_requests",
                        grpc_method=method)


@pytest.mark.timeout(180)
async def test_an_agency_with_a_quota_of_5_never_sees_more_and_interactive_queries_go_first(
        healthy, tmp_path, start_service, ledger_url):
    (capped,) = start_agencies(start_service, ("capped-bank", "bank", {"FAULT_LATENCY_P50_MS": "100"}))
    capped = dataclasses.replace(capped, entry=(("max_concurrent", 5),))
    async with control_stack(tmp_path, [healthy[0], capped], ledger_url, batch_concurrency=40,
                             query_deadline_ms=DEADLINE_MS) as stack:
        session = stack.http.session
        rows = await register_cases(session, 200)
        status, submitted = await submit_csv(session, csv_bytes(rows))
        assert status == 202, submitted
        await asyncio.sleep(1.0)  # the batch fills the quota and queues behind it
        row = rows[0]
        body = {"case": {"case_number": row["case_number"], "court_code": row["court_code"],
                         "executor_id": "E0001", "document_number": row["document_number"]},
                "subject": {"type": 1, "id_number": row["debtor_id"]}, "agency_ids": ["capped-bank"]}
        latencies = []
        for _ in range(5):
            started = time.monotonic()
            async with session.post("/v1/queries", json=body) as response:
                answer = await response.json()
            latencies.append(time.monotonic() - started)
            assert answer["results"][0]["status"] == "AGENCY_STATUS_OK", answer
        ended = await wait_ended(session, submitted["batch_id"], timeout=150)
        assert ended["state"] == "DONE" and ended["agencies"]["capped-bank"]["ok"] == 200, ended
        async with session.get("/metrics") as response:
            metrics = await response.text()
    assert peak_in_flight(capped) == 5, "the cap is reached, and never passed"
    # A slot frees every ~20 ms (5 calls of 100 ms); the batch has ~35 calls waiting behind the quota, which
    # at the back of the queue would take ~700 ms: served first, the executor waits one call and a bit.
    assert max(latencies) < 0.45, latencies
    waits = sample_value(metrics, "chakong_gateway_agency_quota_wait_seconds_count", agency_id="capped-bank",
                         priority="batch")
    assert waits >= 200


@pytest.mark.timeout(120)
async def test_a_late_answer_is_kept_and_the_interactive_reply_still_comes_by_its_deadline(
        healthy, tmp_path, start_service, ledger_url):
    (late,) = start_agencies(start_service, ("late-bank", "bank", {"FAULT_LATENCY_P50_MS": str(3 * DEADLINE_MS)}))
    late = dataclasses.replace(late, timeout_ms=5000)
    async with control_stack(tmp_path, [healthy[0], late], ledger_url, query_deadline_ms=DEADLINE_MS) as stack:
        session = stack.http.session
        answered_before = await late_calls_answered(session)
        rows = await register_cases(session, 1)
        row = rows[0]
        body = {"case": {"case_number": row["case_number"], "court_code": row["court_code"],
                         "executor_id": "E0001", "document_number": row["document_number"]},
                "subject": {"type": 1, "id_number": row["debtor_id"]}, "request_id": "late-1"}
        started = time.monotonic()
        async with session.post("/v1/queries", json=body) as response:
            answer = await response.json()
        elapsed = time.monotonic() - started
        assert elapsed < DEADLINE_MS / 1000 + 0.3, elapsed
        statuses = {r["agency_id"]: r["status"] for r in answer["results"]}
        assert statuses == {"icbc": "AGENCY_STATUS_OK", "late-bank": "AGENCY_STATUS_TIMEOUT"}
        status, submitted = await submit_csv(session, csv_bytes(rows))
        assert status == 202, submitted

        deadline = time.monotonic() + 30
        while True:
            async with session.get("/v1/queries/late-1") as response:
                recorded = await response.json()
                assert response.status == 200, recorded
            answers = {a["agency_id"]: a for a in recorded["answers"]}
            if answers["late-bank"]["status"] != "PENDING":
                break
            assert time.monotonic() < deadline, recorded
            await asyncio.sleep(0.2)
        assert recorded["origin"] == "interactive" and recorded["case_number"] == row["case_number"]
        assert answers["icbc"]["status"] == "OK" and not answers["icbc"]["late"]
        assert answers["late-bank"]["status"] == "OK" and answers["late-bank"]["late"], answers
        assert answers["late-bank"]["arrived_at"] > answers["icbc"]["arrived_at"]
        assert answers["late-bank"]["result"]["accounts"] == [] or answers["late-bank"]["result"]["accounts"]

        ended = await wait_ended(session, submitted["batch_id"], timeout=30)
        assert ended["agencies"]["late-bank"] == {"ok": 1, "timeout": 0, "error": 0, "pending": 0}, ended
        (record,) = [json.loads(x) for x in (await results(session, ended["batch_id"], "jsonl")).splitlines()]
        assert {a["agency_id"]: a["status"] for a in record["agencies"]} == {"icbc": "OK", "late-bank": "OK"}
        assert await late_calls_answered(session) - answered_before == 1


async def late_calls_answered(session) -> float:
    async with session.get("/metrics") as response:
        metrics = await response.text()
    return sample_value(metrics, "chakong_gateway_late_calls_total", agency_id="late-bank", outcome="answered")
