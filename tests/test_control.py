"""Control through the gateway, over HTTP, gRPC and the CLI, against real
agencies, on both ledger backends: the executor's whole flow, the rules the
gateway enforces, and idempotency.

The agencies are started once for the module and shared; every test uses
its own case numbers, and amounts small against the balances, so tests do
not disturb each other's rules.
"""

import asyncio
import json
import os
import sys

import grpc
import pytest
from grpc_status import rpc_status

from protos.common.v1 import common_pb2
from protos.gateway.v1 import control_pb2, control_pb2_grpc
from services import datagen
from tests.support.agencies import BANK, PROPERTIES, SEED, SUBJECTS, VEHICLES
from tests.support.auth import issue_token
from tests.support.control import (
    COURT,
    COURT_ACCOUNT,
    Stack,
    account_at_bank,
    bank_conservation,
    bank_deductions,
    bank_freezes,
    case_json,
    control_stack,
    debtors,
    direct_deduct_body,
    freeze_body,
    new_case_number,
    register_body,
    subject_json,
)
from tests.support.harness import REPO


def outsider() -> common_pb2.Subject:
    """Someone who is no debtor of any test case."""
    owners = {d.subject.id_number for d in debtors()}
    s = next(s for s in datagen.subjects(SEED, SUBJECTS) if s.id_number not in owners)
    return common_pb2.Subject(type=s.subject_type, id_number=s.id_number, name=s.name)


@pytest.fixture
async def stack(tmp_path, agencies, ledger_url):
    async with control_stack(tmp_path, agencies, ledger_url) as running:
        yield running


async def chakong(stack: Stack, *args: str) -> tuple[int, str]:
    """Run the CLI as a user would; (exit status, stdout)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli.main", "--gateway", stack.grpc_address, *args,
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    out, err = await process.communicate()
    assert process.returncode in (0, 2, 3), err.decode()
    return process.returncode, out.decode()


# The executor's flow


async def test_the_executor_flow_over_http(stack):
    debtor = stack.full_debtor(0)
    buyer = outsider()
    case_number = new_case_number()
    bank = stack.agencies[BANK]
    before = await account_at_bank(bank, debtor)

    registered = await stack.http.register(case_number, debtor, owed=500_000, costs=10_000)
    assert registered["freezable_fen"] == "510000"
    again = await stack.http.post("/v1/cases", register_body(case_number, debtor, owed=500_000, costs=10_000))
    assert again.status == 200
    other = await stack.http.post("/v1/cases", register_body(case_number, debtor, owed=1, costs=10_000))
    assert other.status == 409 and other.body["error"]["code"] == "ALREADY_EXISTS"

    frozen = await stack.http.post("/v1/freezes", freeze_body(case_number, debtor, 300_000))
    assert frozen.status == 200, frozen.body
    freeze = frozen.body
    hold = freeze["hold_id"]
    assert hold == freeze["action_id"] and freeze["state"] == "ACTION_STATE_SUCCEEDED"
    assert freeze["freeze"]["state"] == "HOLD_STATE_ACTIVE" and freeze["freeze"]["frozen_fen"] == "300000"
    assert frozen.headers["Idempotency-Key"] == freeze["idempotency_key"]

    deducted = await stack.http.post(
        f"/v1/freezes/{hold}/deduct",
        {"case": case_json(case_number), "amount_fen": "120000", "court_account": COURT_ACCOUNT},
    )
    assert deducted.status == 200, deducted.body
    assert deducted.body["deduction"]["amount_fen"] == "120000"
    assert deducted.body["deduction"]["freeze"]["frozen_fen"] == "180000"

    released = await stack.http.post(f"/v1/freezes/{hold}/release", {"case": case_json(case_number)})
    assert released.status == 200, released.body
    assert released.body["freeze"]["state"] == "HOLD_STATE_RELEASED"

    vehicle = await stack.http.post("/v1/seals", {
        "case": case_json(case_number), "agency_id": VEHICLES, "subject": subject_json(debtor.subject),
        "asset_id": debtor.plate})
    assert vehicle.status == 200, vehicle.body
    assert vehicle.body["seal"]["state"] == "HOLD_STATE_ACTIVE"
    prop = await stack.http.post("/v1/seals", {
        "case": case_json(case_number), "agency_id": PROPERTIES, "subject": subject_json(debtor.subject),
        "asset_id": debtor.certificate})
    assert prop.status == 200, prop.body
    renewed = await stack.http.post(f"/v1/seals/{vehicle.body['hold_id']}/renew", {"case": case_json(case_number)})
    assert renewed.status == 200, renewed.body
    assert renewed.body["seal"]["expires_at"] > vehicle.body["seal"]["expires_at"]

    transferred = await stack.http.post("/v1/transfers", {
        "case": case_json(case_number), "hold_id": prop.body["hold_id"], "buyer": subject_json(buyer, name=True),
        "ruling_number": f"{case_number}之一成交裁定书", "price_fen": "88800000"})
    assert transferred.status == 200, transferred.body
    assert prop.body["seal"]["seal_id"] in transferred.body["transfer"]["ended_seal_ids"]

    view = await stack.http.case(case_number)
    assert [(a["kind"], a["state"]) for a in view["actions"]] == [
        ("ACTION_KIND_FREEZE", "ACTION_STATE_SUCCEEDED"),
        ("ACTION_KIND_DEDUCT", "ACTION_STATE_SUCCEEDED"),
        ("ACTION_KIND_RELEASE_FREEZE", "ACTION_STATE_SUCCEEDED"),
        ("ACTION_KIND_SEAL", "ACTION_STATE_SUCCEEDED"),
        ("ACTION_KIND_SEAL", "ACTION_STATE_SUCCEEDED"),
        ("ACTION_KIND_RENEW_SEAL", "ACTION_STATE_SUCCEEDED"),
        ("ACTION_KIND_TRANSFER", "ACTION_STATE_SUCCEEDED"),
    ]
    holds = {h["hold_id"]: h for h in view["holds"]}
    assert holds[hold]["freeze"]["state"] == "HOLD_STATE_RELEASED"
    assert holds[hold]["freeze"]["deducted_fen"] == "120000"
    assert holds[vehicle.body["hold_id"]]["seal"]["state"] == "HOLD_STATE_ACTIVE"
    assert holds[vehicle.body["hold_id"]]["seal"]["expires_at"] == renewed.body["seal"]["expires_at"]
    assert holds[prop.body["hold_id"]]["seal"]["state"] == "HOLD_STATE_TRANSFERRED"
    assert (view["deducted_fen"], view["frozen_fen"], view["freezable_fen"]) == ("120000", "0", "390000")

    after = await account_at_bank(bank, debtor)
    assert after.balance_fen == before.balance_fen - 120_000
    assert [d["amount_fen"] for d in bank_deductions(bank, case_number)] == [120_000]
    assert bank_conservation(bank) == []


async def test_the_executor_flow_from_the_cli(stack):
    debtor = stack.full_debtor(1)
    buyer = outsider()
    case_number = new_case_number()
    case = ["--case", case_number]
    court = ["--court-bank", COURT_ACCOUNT["bank_name"], "--court-account", COURT_ACCOUNT["account_number"],
             "--court-account-name", COURT_ACCOUNT["account_name"]]
    subject = debtor.subject

    status, out = await chakong(stack, "case", "register", *case, "--debtor", f"{subject.id_number}:{subject.name}",
                                "--owed-fen", "400000", "--costs-fen", "5000", "--json")
    assert status == 0 and json.loads(out)["freezable_fen"] == "405000"
    status, out = await chakong(stack, "freeze", *case, "--agency", BANK, "--subject", subject.id_number,
                                "--account", debtor.account, "--amount-fen", "200000", "--json")
    assert status == 0, out
    hold = json.loads(out)["hold_id"]
    status, out = await chakong(stack, "deduct", *case, "--hold", hold, "--amount-fen", "50000", *court, "--json")
    assert status == 0 and json.loads(out)["deduction"]["amount_fen"] == "50000"
    status, out = await chakong(stack, "release", *case, "--hold", hold)
    assert status == 0 and "RELEASED" in out
    status, out = await chakong(stack, "seal", *case, "--agency", VEHICLES, "--subject", subject.id_number,
                                "--asset", debtor.plate)
    assert status == 0 and "ACTIVE" in out
    status, out = await chakong(stack, "seal", *case, "--agency", PROPERTIES, "--subject", subject.id_number,
                                "--asset", debtor.certificate, "--json")
    assert status == 0
    seal = json.loads(out)["hold_id"]
    status, out = await chakong(stack, "transfer", *case, "--hold", seal, "--buyer", buyer.id_number,
                                "--buyer-name", buyer.name, "--ruling", "成交裁定书1", "--price-fen", "50000000")
    assert status == 0 and "new certificate" in out
    # Refused by the gateway's rules: exit 2, the reason on stderr.
    status, _ = await chakong(stack, "freeze", *case, "--agency", BANK, "--subject", subject.id_number,
                              "--account", debtor.account, "--amount-fen", "999999999")
    assert status == 2

    status, out = await chakong(stack, "case", "show", *case)
    assert status == 0
    assert f"Case {case_number}" in out and "may still freeze ¥3,550.00" in out
    for expected in ("freeze", "deduct", "release freeze", "seal", "transfer", "TRANSFERRED", "RELEASED"):
        assert expected in out
    status, out = await chakong(stack, "case", "show", *case, "--json")
    assert [a["state"] for a in json.loads(out)["actions"]] == ["ACTION_STATE_SUCCEEDED"] * 6


# Rules the gateway enforces


async def test_excessive_seizure_is_refused_with_what_may_still_be_frozen(stack):
    one, two = stack.debtor(2), stack.debtor(3)
    case_number = new_case_number()
    await stack.http.register(case_number, one, two, owed=100_000, costs=0)
    first = await stack.http.post("/v1/freezes", freeze_body(case_number, one, 80_000))
    assert first.status == 200

    too_much = await stack.http.post("/v1/freezes", freeze_body(case_number, two, 30_000))
    assert too_much.status == 409
    error = too_much.body["error"]
    assert error["code"] == "FAILED_PRECONDITION" and error["field"] == "amount_fen"
    assert "may freeze at most 20000 fen more" in error["message"]
    direct = await stack.http.post("/v1/deductions", direct_deduct_body(case_number, two, 30_000))
    assert direct.status == 409 and "at most 20000 fen" in direct.body["error"]["message"]
    # Nothing recorded for refusals by the gateway's rules.
    assert len((await stack.http.case(case_number))["actions"]) == 1

    exact = await stack.http.post("/v1/freezes", freeze_body(case_number, two, 20_000))
    assert exact.status == 200
    view = await stack.http.case(case_number)
    assert (view["frozen_fen"], view["freezable_fen"]) == ("100000", "0")

    # Releasing part of a freeze makes room again.
    hold = first.body["hold_id"]
    partial = await stack.http.post(f"/v1/freezes/{hold}/release",
                                    {"case": case_json(case_number), "amount_fen": "30000"})
    assert partial.status == 200 and partial.body["freeze"]["frozen_fen"] == "50000"
    assert (await stack.http.case(case_number))["freezable_fen"] == "30000"


async def test_who_and_what_may_be_acted_on(stack):
    debtor, stranger = stack.debtor(4), outsider()
    case_number, other_case = new_case_number(), new_case_number()
    await stack.http.register(case_number, debtor)
    await stack.http.register(other_case, debtor)

    not_debtor = await stack.http.post("/v1/freezes", {**freeze_body(case_number, debtor, 100),
                                                       "subject": subject_json(stranger)})
    assert not_debtor.status == 403 and not_debtor.body["error"]["field"] == "subject.id_number"
    assert "not a debtor" in not_debtor.body["error"]["message"]
    unknown_agency = await stack.http.post("/v1/freezes", freeze_body(case_number, debtor, 100, agency="nobank"))
    assert unknown_agency.status == 404 and "unknown agency" in unknown_agency.body["error"]["message"]
    wrong_kind = await stack.http.post("/v1/freezes", freeze_body(case_number, debtor, 100, agency=VEHICLES))
    assert wrong_kind.status == 400 and wrong_kind.body["error"]["field"] == "agency_id"
    unknown_hold = await stack.http.post("/v1/freezes/fz-nosuchhold/release", {"case": case_json(case_number)})
    assert unknown_hold.status == 404 and unknown_hold.body["error"]["code"] == "NOT_FOUND"
    unregistered = await stack.http.post("/v1/freezes", freeze_body(new_case_number(), debtor, 100))
    assert unregistered.status == 404 and "not registered" in unregistered.body["error"]["message"]
    other_court = await stack.http.post("/v1/freezes", {**freeze_body(case_number, debtor, 100),
                                                        "case": {**case_json(case_number), "court_code": "340104"}})
    assert other_court.status == 403
    invalid = await stack.http.post("/v1/freezes", freeze_body(case_number, debtor, -5))
    assert invalid.status == 400 and invalid.body["error"]["field"] == "amount_fen"
    missing_case = await stack.http.get(f"/v1/cases/{new_case_number()}")
    assert missing_case.status == 404

    # A hold belongs to its case: another case of the same court may not touch it.
    placed = await stack.http.post("/v1/freezes", freeze_body(case_number, debtor, 1_000))
    assert placed.status == 200
    hijack = await stack.http.post(f"/v1/freezes/{placed.body['hold_id']}/release", {"case": case_json(other_case)})
    assert hijack.status == 403 and "placed for case" in hijack.body["error"]["message"]
    # A refusal by the agency is recorded, and says so: the same case may not
    # freeze the same account twice (renew or release the first instead).
    twice = await stack.http.post("/v1/freezes", freeze_body(case_number, debtor, 1_000))
    assert twice.status == 409 and twice.body["error"]["code"] == "ALREADY_EXISTS"
    assert twice.body["action"]["state"] == "ACTION_STATE_REFUSED"
    assert twice.body["action"]["error_code"] == "ALREADY_EXISTS"
    states = [a["state"] for a in (await stack.http.case(case_number))["actions"]]
    assert states == ["ACTION_STATE_SUCCEEDED", "ACTION_STATE_REFUSED"]


# Idempotency


async def test_the_same_key_is_the_same_action_and_one_effect(stack):
    debtor = stack.debtor(5)
    case_number = new_case_number()
    await stack.http.register(case_number, debtor)
    body = freeze_body(case_number, debtor, 7_000)
    first = await stack.http.post("/v1/freezes", body, key="exec-E0001-freeze-1")
    second = await stack.http.post("/v1/freezes", body, key="exec-E0001-freeze-1")
    assert first.status == second.status == 200
    assert first.body == second.body
    assert len(bank_freezes(stack.agencies[BANK], case_number)) == 1

    changed = await stack.http.post("/v1/freezes", {**body, "amount_fen": "7001"}, key="exec-E0001-freeze-1")
    assert changed.status == 409 and changed.body["error"]["code"] == "ALREADY_EXISTS"
    assert "already used for another request" in changed.body["error"]["message"]
    assert len(bank_freezes(stack.agencies[BANK], case_number)) == 1

    # Without a key the gateway makes one and says which.
    generated = await stack.http.post(f"/v1/freezes/{first.body['hold_id']}/renew", {"case": case_json(case_number)})
    assert generated.status == 200
    assert generated.headers["Idempotency-Key"] == generated.body["idempotency_key"] != ""


async def test_eight_identical_requests_at_once_make_one_deduction(stack):
    debtor = stack.debtor(6)
    case_number = new_case_number()
    await stack.http.register(case_number, debtor)
    body = direct_deduct_body(case_number, debtor, 4_321)
    replies = await asyncio.gather(*(stack.http.post("/v1/deductions", body, key="deduct-once") for _ in range(8)))
    assert {r.status for r in replies} == {200}
    assert len({r.body["action_id"] for r in replies}) == 1
    assert len({r.body["deduction"]["deduction_id"] for r in replies}) == 1
    assert [d["amount_fen"] for d in bank_deductions(stack.agencies[BANK], case_number)] == [4_321]
    view = await stack.http.case(case_number)
    assert len(view["actions"]) == 1 and view["deducted_fen"] == "4321"


async def test_concurrent_deductions_on_one_freeze_never_take_more_than_frozen(stack):
    debtor = stack.debtor(7)
    case_number = new_case_number()
    await stack.http.register(case_number, debtor)
    hold = (await stack.http.post("/v1/freezes", freeze_body(case_number, debtor, 10_000))).body["hold_id"]
    body = {"case": case_json(case_number), "amount_fen": "4000", "court_account": COURT_ACCOUNT}
    replies = await asyncio.gather(*(stack.http.post(f"/v1/freezes/{hold}/deduct", body) for _ in range(8)))
    assert sorted(r.status for r in replies) == [200, 200] + [409] * 6
    assert all(r.body["action"]["error_code"] == "FAILED_PRECONDITION" for r in replies if r.status == 409)
    assert sum(d["amount_fen"] for d in bank_deductions(stack.agencies[BANK], case_number)) == 8_000
    view = await stack.http.case(case_number)
    assert view["deducted_fen"] == "8000"
    assert view["holds"][0]["freeze"]["frozen_fen"] == "2000"


# gRPC


async def test_grpc_answers_actions_and_packs_a_refusal_with_its_action(stack):
    debtor = stack.debtor(8)
    case_number = new_case_number()
    ref = common_pb2.CaseRef(case_number=case_number, court_code=COURT, executor_id="E0001", document_number="文书1")
    async with stack.endpoints.channel(issue_token()) as channel:
        stub = control_pb2_grpc.EnforcementControlStub(channel)
        case = await stub.RegisterCase(control_pb2.RegisterCaseRequest(
            case=ref, debtors=[debtor.subject], amount_owed_fen=50_000))
        assert case.freezable_fen == 50_000
        request = control_pb2.FreezeFundsRequest(
            idempotency_key="grpc-freeze-1", case=ref, agency_id=BANK,
            subject=common_pb2.Subject(type=debtor.subject.type, id_number=debtor.subject.id_number),
            account_number=debtor.account, amount_fen=50_000)
        call = stub.Freeze(request)
        action = await call
        assert action.state == control_pb2.ACTION_STATE_SUCCEEDED and action.freeze.frozen_fen == 50_000
        assert dict(await call.trailing_metadata())["idempotency-key"] == "grpc-freeze-1"
        assert await stub.Freeze(request) == action

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Freeze(control_pb2.FreezeFundsRequest(
                case=ref, agency_id=BANK, subject=debtor.subject, account_number=debtor.account, amount_fen=1))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "may freeze at most 0 fen more" in refused.value.details()

        with pytest.raises(grpc.aio.AioRpcError) as by_agency:
            await stub.RenewFreeze(control_pb2.RenewHoldRequest(
                case=ref, hold_id=action.action_id, expires_at=action.freeze.expires_at))
        assert by_agency.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        details = rpc_status.from_call(by_agency.value).details
        recorded = control_pb2.Action()
        assert details and details[0].Unpack(recorded)
        assert recorded.state == control_pb2.ACTION_STATE_REFUSED and recorded.hold_id == action.action_id

        view = await stub.GetCase(control_pb2.GetCaseRequest(case_number=case_number.replace("(", "（").replace(")", "）")))
        assert [a.state for a in view.actions] == [control_pb2.ACTION_STATE_SUCCEEDED, control_pb2.ACTION_STATE_REFUSED]


async def test_openapi_documents_every_control_path(stack):
    document = (await stack.http.get("/openapi.json")).body
    for path in ("/v1/cases", "/v1/cases/{case_number}", "/v1/freezes", "/v1/freezes/{hold_id}/renew",
                 "/v1/freezes/{hold_id}/release", "/v1/freezes/{hold_id}/deduct", "/v1/deductions", "/v1/seals",
                 "/v1/seals/{hold_id}/renew", "/v1/seals/{hold_id}/release", "/v1/transfers"):
        assert path in document["paths"], path
