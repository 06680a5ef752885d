"""Answers that break the contract are no answers: a control reply without its hold leaves the action
PENDING (re-driven, never recorded as done), a broken query answer is that agency's error; both count
as INVALID_RESPONSE, and the CLI says the agency answered wrongly rather than not at all.
"""

import asyncio
import os
import sys

import pytest

from tests.support.agencies import BANK, start_agencies
from tests.support.control import COURT, FAST, control_stack, debtors, freeze_body, new_case_number
from tests.support.gateway import sample
from tests.support.harness import REPO


@pytest.fixture
async def stack(tmp_path, start_service):
    # The bank freezes, but answers without freeze_id, and its queries report available = balance.
    agencies = start_agencies(
        start_service, (BANK, "bank", {"AGENCY_DELIBERATE_FAULTS": "freeze_reply_without_id,available_ignores_frozen"}))
    async with control_stack(tmp_path, agencies, f"sqlite:///{tmp_path}/ledger.db", **FAST) as running:
        yield running


async def test_a_freeze_reply_without_its_id_is_never_recorded_as_done(stack):
    debtor = debtors()[0]
    case_number = new_case_number()
    await stack.http.register(case_number, debtor)
    invalid = {"agency": BANK, "method": "Freeze", "outcome": "INVALID_RESPONSE"}
    before_calls = sample("chakong_gateway_agency_calls_total", **invalid)
    before_pending = sample("chakong_gateway_actions_total", kind="freeze", outcome="pending", court=COURT)

    reply = await stack.http.post("/v1/freezes", freeze_body(case_number, debtor, 1_000), key="invalid-freeze-1")
    assert reply.status == 202, reply.body
    action = reply.body
    assert action["state"] == "ACTION_STATE_PENDING"
    assert action["error_code"] == "INVALID_RESPONSE"
    assert "freeze_id: is required" in action["error_message"]
    assert sample("chakong_gateway_agency_calls_total", **invalid) == before_calls + 1
    assert sample("chakong_gateway_actions_total", kind="freeze", outcome="pending", court=COURT) == before_pending + 1

    # The re-driver asks again with the same key; the same broken reply changes nothing.
    for _ in range(100):
        case = await stack.http.case(case_number)
        if int(case["actions"][0]["attempts"]) >= 2:
            break
        await asyncio.sleep(0.1)
    assert int(case["actions"][0]["attempts"]) >= 2
    assert case["actions"][0]["state"] == "ACTION_STATE_PENDING" and case["holds"] == []
    assert sample("chakong_gateway_agency_calls_total", **invalid) >= before_calls + 2

    # The CLI tells an invalid answer from no answer.
    out = await chakong(stack, "case", "show", "--case", case_number)
    assert "PENDING" in out and "INVALID_RESPONSE: the agency answered with an invalid response" in out


async def test_a_broken_query_answer_is_that_agencys_error_and_the_cli_says_so(stack):
    debtor = debtors()[1]
    case_number = new_case_number()
    await stack.http.register(case_number, debtor)
    # Funds are frozen at the bank (its reply is broken, its ledger is not): now its query answers
    # available_balance_fen = balance_fen with frozen_fen > 0.
    await stack.http.post("/v1/freezes", freeze_body(case_number, debtor, 1_000), key="invalid-freeze-2")
    invalid = {"agency": BANK, "method": "QueryAccounts", "outcome": "INVALID_RESPONSE"}
    before = sample("chakong_gateway_agency_calls_total", **invalid)

    out = await chakong(stack, "query", "--subject", debtor.subject.id_number, "--case", case_number)
    assert "INVALID" in out and "available_balance_fen: must equal balance_fen - frozen_fen" in out
    assert "PARTIAL (1 answered with an invalid response)" in out
    assert sample("chakong_gateway_agency_calls_total", **invalid) == before + 1


async def chakong(stack, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli.main", "--gateway", stack.grpc_address, *args, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ},
    )
    out, err = await process.communicate()
    assert process.returncode in (0, 3), err.decode()
    return out.decode()
