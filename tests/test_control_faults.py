"""Faults between intent and outcome, on both ledger backends: a reply lost on
the way back from the bank, a bank that is down, and a gateway killed
(SIGKILL) at each point between recording the intent and recording the
outcome. Every action completes exactly once: one effect at the bank,
SUCCEEDED in the ledger, conservation intact.

`test_fault_loop` repeats the lost reply and the crashes
FAULT_LOOP_ITERATIONS times (default 2); for the long run:

    FAULT_LOOP_ITERATIONS=200 .venv/bin/python tests/fault_loop.py
"""

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import REGISTRY

from services.gateway.config import CRASH_POINTS
from tests.support.agencies import BANK, Agency
from tests.support.control import (
    FAST,
    Debtor,
    GatewayProcess,
    Http,
    account_at_bank,
    bank_conservation,
    bank_deductions,
    control_stack,
    debtors,
    direct_deduct_body,
    new_case_number,
    register_body,
)
from tests.support.faultproxy import FaultProxy

SUCCEEDED = "ACTION_STATE_SUCCEEDED"
PENDING = "ACTION_STATE_PENDING"
LOOP_ITERATIONS = int(os.environ.get("FAULT_LOOP_ITERATIONS", "2"))
def lane(ledger_url: str) -> int:
    return 0 if ledger_url.startswith("sqlite") else 1


def debtor_for(ledger_url: str, n: int) -> Debtor:
    return debtors()[2 * n + lane(ledger_url)]


@contextlib.asynccontextmanager
async def bank_behind_proxy(agencies: list[Agency]):
    """The agencies, with the bank reached through a FaultProxy."""
    bank = next(a for a in agencies if a.id == BANK)
    proxy = await FaultProxy(bank.address).start()
    try:
        routed = [Agency(a.id, a.kind, proxy.address, a.timeout_ms) if a.id == BANK else a for a in agencies]
        yield proxy, routed
    finally:
        await proxy.close()


async def settled(http: Http, case_number: str, action_id: str, timeout: float = 15.0) -> dict:
    """The action once it is no longer PENDING (re-driven by the gateway)."""
    deadline = time.monotonic() + timeout
    while True:
        view = await http.case(case_number)
        action = next((a for a in view["actions"] if a["action_id"] == action_id), None)
        if action and action["state"] != PENDING:
            return action
        assert time.monotonic() < deadline, f"action {action_id} still pending: {action}"
        await asyncio.sleep(0.1)


async def crash_and_recover(
    gateway: GatewayProcess, point: str, case_number: str, body: dict, key: str, *, armed: bool = False
) -> dict:
    """Ask for `body` from a gateway set to die at `point` (restarted so,
    unless `armed` says it already is); restart it; the action finishes
    once. Returns the recorded action."""
    if not armed:
        await gateway.start(crash_at=point)
    async with gateway.http() as http:
        with pytest.raises(aiohttp.ClientError):
            await http.post("/v1/deductions", body, key=key)
    assert await gateway.died() == -signal.SIGKILL
    assert any(f"CHAKONG_CRASH_AT={point} reached" in line for line in gateway.process.output)
    await gateway.start()
    async with gateway.http() as http:
        # The key names the action, recorded before the crash; the caller's
        # retry waits for the re-driven outcome and gets the same action.
        replay = await http.post("/v1/deductions", body, key=key)
        action = replay.body if replay.status == 200 else await settled(http, case_number, replay.body["action_id"])
        assert action["state"] == SUCCEEDED, action
        again = await http.post("/v1/deductions", body, key=key)
        assert again.status == 200 and again.body["action_id"] == action["action_id"]
        assert again.body["deduction"] == action["deduction"]
    return action


async def lost_reply(http: Http, proxy: FaultProxy, body: dict, key: str) -> dict:
    dropped = proxy.drop_next_response()
    reply = await http.post("/v1/deductions", body, key=key)
    assert dropped.is_set(), "the proxy saw no request to drop the answer to"
    assert reply.status == 200, reply.body
    assert reply.body["state"] == SUCCEEDED and reply.body["attempts"] >= 2
    return reply.body


async def test_a_lost_reply_is_retried_with_the_same_key_and_deducts_once(tmp_path, agencies, ledger_url):
    debtor = debtor_for(ledger_url, 0)
    case_number = new_case_number()
    bank = next(a for a in agencies if a.id == BANK)
    async with bank_behind_proxy(agencies) as (proxy, routed):
        async with control_stack(tmp_path, routed, ledger_url, **FAST) as stack:
            assert (await stack.http.post("/v1/cases", register_body(case_number, debtor))).status == 201
            before = await account_at_bank(bank, debtor)
            action = await lost_reply(stack.http, proxy, direct_deduct_body(case_number, debtor, 2_500), "lost-1")

    assert action["attempts"] == 2 and proxy.dropped_responses == 1
    # The bank saw the request twice (the second a replay of the first) and moved the money once.
    agency_key = f"gw.{action['action_id']}"
    assert sum(agency_key in line for line in bank.process.output) == 2
    assert [d["amount_fen"] for d in bank_deductions(bank, case_number)] == [2_500]
    assert (await account_at_bank(bank, debtor)).balance_fen == before.balance_fen - 2_500
    assert bank_conservation(bank) == []


async def test_an_agency_that_is_down_leaves_the_action_pending_until_it_is_back(tmp_path, agencies, ledger_url):
    debtor = debtor_for(ledger_url, 1)
    case_number = new_case_number()
    bank = next(a for a in agencies if a.id == BANK)
    async with bank_behind_proxy(agencies) as (proxy, routed):
        quick = {**FAST, "control_deadline_ms": 1000, "control_attempt_timeout_ms": 450}
        async with control_stack(tmp_path, routed, ledger_url, **quick) as stack:
            await stack.http.register(case_number, debtor, owed=10_000, costs=0)
            proxy.cut()
            reply = await stack.http.post("/v1/deductions", direct_deduct_body(case_number, debtor, 6_000))
            assert reply.status == 202, reply.body
            assert reply.body["state"] == PENDING and reply.body["attempts"] >= 1
            assert reply.body["error_code"] in ("UNAVAILABLE", "DEADLINE_EXCEEDED")
            # While pending, what it asks for counts against the case.
            view = await stack.http.case(case_number)
            assert view["freezable_fen"] == "4000"
            refused = await stack.http.post("/v1/deductions", direct_deduct_body(case_number, debtor, 4_001))
            assert refused.status == 409
            assert bank_deductions(bank, case_number) == []

            proxy.heal()
            action = await settled(stack.http, case_number, reply.body["action_id"])
            assert action["state"] == SUCCEEDED and action["deduction"]["amount_fen"] == "6000"
            async with stack.http.session.get("/metrics") as response:
                exposition = await response.text()
            for name in ("chakong_gateway_actions_pending", "chakong_gateway_actions_total",
                         "chakong_gateway_deducted_fen_total", "chakong_gateway_frozen_fen_total"):
                assert f"\n{name}" in exposition, name
    assert REGISTRY.get_sample_value(
        "chakong_gateway_actions_total", {"kind": "deduct", "outcome": "pending", "court": "340100"}
    ) >= 1
    assert [d["amount_fen"] for d in bank_deductions(bank, case_number)] == [6_000]
    assert bank_conservation(bank) == []


@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_a_gateway_killed_between_intent_and_outcome_completes_the_action_once(
    tmp_path, agencies, ledger_url, point
):
    debtor = debtor_for(ledger_url, 2 + CRASH_POINTS.index(point))
    case_number = new_case_number()
    bank = next(a for a in agencies if a.id == BANK)
    before = await account_at_bank(bank, debtor)
    # Registering a case is no action: the gateway set to crash does it and lives on.
    gateway = await GatewayProcess(tmp_path, agencies, ledger_url).start(crash_at=point)
    try:
        async with gateway.http() as http:
            await http.register(case_number, debtor)
        action = await crash_and_recover(
            gateway, point, case_number, direct_deduct_body(case_number, debtor, 1_234), f"crash-{point}", armed=True
        )
        async with gateway.http() as http:
            view = await http.case(case_number)
    finally:
        await gateway.stop()
    assert [a["state"] for a in view["actions"]] == [SUCCEEDED] and view["deducted_fen"] == "1234"
    deductions = bank_deductions(bank, case_number)
    assert [(d["deduction_id"], d["amount_fen"]) for d in deductions] == [(action["deduction"]["deduction_id"], 1_234)]
    assert (await account_at_bank(bank, debtor)).balance_fen == before.balance_fen - 1_234
    assert bank_conservation(bank) == []


async def run_fault_loop(directory: Path, agencies: list[Agency], ledger_url: str, iterations: int) -> dict:
    """Lost replies and crashes at every point, `iterations` times; then
    check nothing was lost or doubled and conservation holds."""
    debtor = debtor_for(ledger_url, 6)
    bank = next(a for a in agencies if a.id == BANK)
    case_number = new_case_number()
    opening = (await account_at_bank(bank, debtor)).balance_fen
    expected: dict[str, int] = {}  # idempotency key -> amount
    started = time.monotonic()
    async with bank_behind_proxy(agencies) as (proxy, routed):
        gateway = await GatewayProcess(directory, routed, ledger_url).start()
        try:
            async with gateway.http() as http:
                await http.register(case_number, debtor, owed=10**9, costs=0)
            for i in range(iterations):
                amount = 100 + 2 * i
                key = f"loop-{i}-lost"
                async with gateway.http() as http:
                    await lost_reply(http, proxy, direct_deduct_body(case_number, debtor, amount), key)
                expected[key] = amount
                key = f"loop-{i}-crash"
                point = CRASH_POINTS[i % len(CRASH_POINTS)]
                await crash_and_recover(
                    gateway, point, case_number, direct_deduct_body(case_number, debtor, amount + 1), key
                )
                expected[key] = amount + 1
            async with gateway.http() as http:
                view = await http.case(case_number)
        finally:
            await gateway.stop()
    seconds = time.monotonic() - started

    # No action lost or doubled: one SUCCEEDED action per key, one deduction each.
    actions = {a["idempotency_key"]: a for a in view["actions"]}
    assert len(view["actions"]) == len(expected) == len(actions)
    assert all(a["state"] == SUCCEEDED for a in actions.values())
    assert {k: int(a["deduction"]["amount_fen"]) for k, a in actions.items()} == expected
    deductions = bank_deductions(bank, case_number)
    assert sorted(d["deduction_id"] for d in deductions) == sorted(a["deduction"]["deduction_id"] for a in actions.values())
    total = sum(expected.values())
    assert sum(d["amount_fen"] for d in deductions) == total == int(view["deducted_fen"])
    # Conservation: what the account holds plus what was deducted is what it opened with.
    assert (await account_at_bank(bank, debtor)).balance_fen + total == opening
    assert bank_conservation(bank) == []
    return {"iterations": iterations, "actions": len(expected), "seconds": seconds,
            "lost_replies": proxy.dropped_responses}


async def test_fault_loop(tmp_path, agencies, ledger_url):
    figures = await run_fault_loop(tmp_path, agencies, ledger_url, LOOP_ITERATIONS)
    print(f"fault loop on {ledger_url.split(':')[0]}: {figures}")
