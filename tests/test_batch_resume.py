"""A batch outlives its gateway: SIGKILLed twice and restarted, and shared by two gateways on one PostgreSQL.

Calls are counted from the agencies' own metrics (grpc_server_handled_total), not the gateway's.
"""

import asyncio
import json

import aiohttp
import pytest

from tests.support.auth import auth_headers
from tests.support.batch import batch, csv_bytes, register_cases, results, submit_csv, wait_ended
from tests.support.gateway_process import start_gateway
from tests.support.metrics import calls_served

QUERY_METHOD = {"bank": "QueryAccounts", "vehicle": "QueryVehicles", "realestate": "QueryProperties"}


def agency_calls(agencies) -> dict[str, float]:
    return {a.id: calls_served(a, QUERY_METHOD[a.kind]) for a in agencies}


async def wait_done_at_least(session, batch_id: str, done: int, timeout: float = 60.0) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        shown = await batch(session, batch_id)
        if shown["done"] >= done or shown["state"] != "RUNNING":
            return shown
        assert loop.time() < deadline, shown
        await asyncio.sleep(0.05)


def all_answered(records: list[dict], agencies) -> None:
    for record in records:
        assert record["item_state"] == "DONE", record
        assert sorted(a["agency_id"] for a in record["agencies"]) == sorted(a.id for a in agencies), record
        assert all(a["status"] == "OK" for a in record["agencies"]), record


GATEWAY_ENV = {"BATCH_CONCURRENCY": "8", "LEDGER_LEASE_SECONDS": "1"}


@pytest.mark.timeout(240)
async def test_a_batch_completes_across_two_sigkills_and_asks_each_agency_once_per_row(
        healthy, tmp_path, start_service, ledger_url):
    rows_n, concurrency, kills = 600, int(GATEWAY_ENV["BATCH_CONCURRENCY"]), 2
    env = {**GATEWAY_ENV, "LEDGER_URL": ledger_url}
    gateway, _, base = start_gateway(tmp_path, start_service, healthy, **env)
    before = agency_calls(healthy)
    async with aiohttp.ClientSession(base_url=base, headers=auth_headers()) as session:
        rows = await register_cases(session, rows_n)
        status, submitted = await submit_csv(session, csv_bytes(rows))
        assert status == 202, submitted
        batch_id = submitted["batch_id"]
    for kill, at in enumerate((rows_n // 5, rows_n // 2)):
        async with aiohttp.ClientSession(base_url=base, headers=auth_headers()) as session:
            shown = await wait_done_at_least(session, batch_id, at)
        assert shown["state"] == "RUNNING", f"the batch ended before kill {kill + 1}; make it longer: {shown}"
        gateway.kill()
        gateway, _, base = start_gateway(tmp_path, start_service, healthy, **env)
    async with aiohttp.ClientSession(base_url=base, headers=auth_headers()) as session:
        ended = await wait_ended(session, batch_id, timeout=150)
        assert ended["state"] == "DONE" and ended["done"] == rows_n, ended
        records = [json.loads(x) for x in (await results(session, batch_id, "jsonl")).splitlines()]
    assert len(records) == rows_n
    all_answered(records, healthy)
    after = agency_calls(healthy)
    for agency in healthy:
        asked = after[agency.id] - before[agency.id]
        # Each row once; at most the calls in flight at each kill again (their answers died with the gateway).
        assert rows_n <= asked <= rows_n + kills * concurrency, (agency.id, asked)


@pytest.mark.timeout(240)
async def test_two_gateways_on_one_postgresql_share_a_batch_and_do_no_row_twice(
        healthy, tmp_path, start_service, pg_ledger_url):
    rows_n = 600
    env = {**GATEWAY_ENV, "LEDGER_URL": pg_ledger_url}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    _, _, base = start_gateway(tmp_path / "a", start_service, healthy, DATA_DIR=str(tmp_path / "a"), **env)
    start_gateway(tmp_path / "b", start_service, healthy, DATA_DIR=str(tmp_path / "b"), **env)
    before = agency_calls(healthy)
    async with aiohttp.ClientSession(base_url=base, headers=auth_headers()) as session:
        rows = await register_cases(session, rows_n)
        status, submitted = await submit_csv(session, csv_bytes(rows))
        assert status == 202, submitted
        ended = await wait_ended(session, submitted["batch_id"], timeout=150)
        assert ended["state"] == "DONE" and ended["done"] == rows_n, ended
        records = [json.loads(x) for x in (await results(session, submitted["batch_id"], "jsonl")).splitlines()]
    all_answered(records, healthy)
    after = agency_calls(healthy)
    assert all(after[a.id] - before[a.id] == rows_n for a in healthy), (before, after)
    from services.gateway.ledger import Ledger

    ledger = await Ledger.open(pg_ledger_url, tmp_path / "unused.db", 0)
    try:
        owners = await ledger.batches.item_owners(submitted["batch_id"])
    finally:
        await ledger.close()
    assert sum(owners.values()) == rows_n and len(owners) == 2, owners
    assert min(owners.values()) >= rows_n // 10, f"the work is split between the gateways: {owners}"
