"""The ledger's PostgreSQL drops every connection, again and again, under load: no 500, every 503 says
when to retry, and every action retried with its key ends in one final state, done once at the bank."""

import asyncio
import time
import uuid

import asyncpg
import pytest

from tests.support.agencies import BANK
from tests.support.control import FAST, bank_freezes, control_stack, freeze_body, new_case_number

CASES = 6


async def terminate_connections(database_url: str, stop: asyncio.Event) -> int:
    """pg_terminate_backend on every other connection to the database, as a restart would (AdminShutdownError)."""
    terminated = 0
    conn = await asyncpg.connect(database_url.split("?")[0])
    try:
        while not stop.is_set():
            terminated += len(await conn.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ))
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    return terminated


@pytest.mark.timeout(120)
async def test_dropped_ledger_connections_give_503_with_retry_after_and_lose_nothing(agencies, tmp_path, pg_ledger_url):
    async with control_stack(tmp_path, agencies, pg_ledger_url, hold_sync_seconds=0, **FAST) as stack:
        debtors = [stack.debtor(5 + n) for n in range(CASES)]
        numbers = [new_case_number() for _ in debtors]
        for number, debtor in zip(numbers, debtors):
            await stack.http.register(number, debtor)
        stop = asyncio.Event()
        terminator = asyncio.create_task(terminate_connections(pg_ledger_url, stop))
        statuses: list[int] = []

        async def freeze(number, debtor, key):
            reply = await stack.http.post("/v1/freezes", freeze_body(number, debtor, 1000), key=key)
            statuses.append(reply.status)
            assert reply.status != 500, reply.body
            if reply.status == 503:
                assert reply.headers.get("Retry-After"), reply.headers
            return reply

        async def view(number):
            reply = await stack.http.get(f"/v1/cases/{number}")
            statuses.append(reply.status)
            assert reply.status != 500, reply.body
            if reply.status == 503:
                assert reply.headers.get("Retry-After"), reply.headers

        keys = [f"outage-{uuid.uuid4().hex}" for _ in numbers]
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            await asyncio.gather(
                *(freeze(number, debtor, key) for number, debtor, key in zip(numbers, debtors, keys)),
                *(view(number) for number in numbers),
            )
        stop.set()
        terminated = await terminator
        print(f"{terminated} connections terminated; answers: {sorted(set(statuses))}, {statuses.count(503)} x 503")
        assert terminated > 0 and 503 in statuses

        # Every action, retried with its key now that the database is back, ends in one final state.
        for number, debtor, key in zip(numbers, debtors, keys):
            for _ in range(100):
                reply = await freeze(number, debtor, key)
                if reply.status == 200:
                    break
                await asyncio.sleep(0.1)
            assert reply.status == 200 and reply.body["state"] == "ACTION_STATE_SUCCEEDED", reply.body
            case = await stack.http.case(number)
            assert [a["idempotency_key"] for a in case["actions"]] == [key]
            assert len(bank_freezes(stack.agencies[BANK], number)) == 1
