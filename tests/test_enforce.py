"""One-click 查冻扣 on the real stack, on both ledger backends: plans built from fresh queries, executed
exactly once (twice with the same ID, across a SIGKILL), re-checked against changed balances, approved by a
second officer, triaged, shown in the case view, over HTTP, gRPC and the CLI.

The agencies (icbc, the vehicle and the real-estate registry) are started once for the module; each test
uses debtors of its own, and each backend its own lane of them.
"""

import asyncio
import json
import signal
import sqlite3
import sys
import uuid

import aiohttp
import grpc
import pytest
from prometheus_client import REGISTRY

from protos.common.v1 import common_pb2
from protos.gateway.v1 import enforce_pb2, enforce_pb2_grpc
from services.gateway.ledger import plans as ledger_plans
from tests.support.agencies import BANK, Agency
from tests.support.auth import issue_token
from tests.support.control import (
    Debtor,
    GatewayProcess,
    Stack,
    bank_conservation,
    bank_deductions,
    bank_freezes,
    case_json,
    control_stack,
    debtors,
    freeze_body,
    full_debtors,
    new_case_number,
    register_body,
    subject_json,
)
from tests.support.enforce import (
    APPROVER,
    enforce,
    holdings,
    officer,
    plan_done,
    subject_without_assets,
    write_policy,
)
from tests.support.harness import REPO
from tests.support.monitoring import free_port

SUCCEEDED = "STEP_STATE_SUCCEEDED"


@pytest.fixture
def policy(tmp_path):
    return write_policy(tmp_path)


@pytest.fixture
async def stack(tmp_path, agencies, ledger_url, policy):
    async with control_stack(tmp_path, agencies, ledger_url, enforce_policy=policy, lease_seconds=1.0,
                             redrive_interval_seconds=0.2) as running:
        yield running


def lane(stack_or_url) -> int:
    url = stack_or_url.ledger_url if isinstance(stack_or_url, Stack) else stack_or_url
    return 0 if url.startswith("sqlite") else 1


def debtor(stack, n: int):
    """The n-th debtor of this module with an account, a vehicle and a property, in the backend's lane."""
    return full_debtors()[2 * n + lane(stack)]


def other_debtor(stack_or_url, n: int):
    """The n-th of the other debtors with an account (none of the `debtor`s), in the backend's lane."""
    taken = {d.subject.id_number for d in full_debtors()[:8]}
    return [d for d in debtors() if d.subject.id_number not in taken][2 * n + lane(stack_or_url)]


def steps_of(plan: dict, kind: str) -> list[dict]:
    return [s for s in plan["steps"] if s["kind"] == f"STEP_KIND_{kind}"]


async def register(stack, case_number, *subjects, owed, costs=0):
    reply = await stack.http.post("/v1/cases", register_body(case_number, *subjects, owed=owed, costs=costs))
    assert reply.status == 201, reply.body


async def available(stack, case_number, subject) -> dict[str, int]:
    """The subject's available balance per account at the bank, as a query sees it now."""
    reply = await stack.http.post("/v1/queries", {"case": case_json(case_number),
                                                  "subject": subject_json(subject.subject), "agency_ids": [BANK]})
    assert reply.status == 200, reply.body
    return {a["account_number"]: int(a["available_balance_fen"]) for a in reply.body["results"][0]["accounts"]
            if a["status"] != "ACCOUNT_STATUS_CLOSED"}


# Triage on the real stack


async def test_a_debtor_with_enough_is_settled_with_exactly_what_is_owed(stack):
    who = debtor(stack, 0)
    case_number = new_case_number()
    await register(stack, case_number, who, owed=100_000, costs=5_000)

    dry = await enforce(stack.http, case_number, dry_run=True)
    assert dry.status == 200, dry.body
    plan = dry.body
    assert plan["state"] == "PLAN_STATE_DRAFT" and plan["triage"]["expected_class"] == "TRIAGE_CLASS_SETTLED"
    assert [s["state"] for s in plan["steps"]] == ["STEP_STATE_PLANNED"] * len(plan["steps"])
    assert sum(int(s["amount_fen"]) for s in steps_of(plan, "FREEZE")) == 105_000
    assert sum(int(s["amount_fen"]) for s in steps_of(plan, "DEDUCT")) == 105_000
    assert not steps_of(plan, "SEAL")
    # A dry run acts on nothing.
    assert bank_freezes(stack.agencies[BANK], case_number) == []

    done = await stack.http.post(f"/v1/cases/{case_number}/plans/{plan['plan_id']}/execute", {})
    assert done.status == 200, done.body
    plan = done.body
    assert plan["state"] == "PLAN_STATE_DONE" and plan["changes"] == []
    triage = plan["triage"]
    assert triage["triage_class"] == "TRIAGE_CLASS_SETTLED", triage
    assert (triage["deducted_fen"], triage["owed_fen"]) == ("105000", "0")
    assert all(s["state"] == SUCCEEDED for s in plan["steps"])
    assert sum(d["amount_fen"] for d in bank_deductions(stack.agencies[BANK], case_number)) == 105_000
    assert bank_conservation(stack.agencies[BANK]) == []

    view = await stack.http.case(case_number)
    assert view["deducted_fen"] == "105000" and view["freezable_fen"] == "0"
    assert [p["plan_id"] for p in view["plans"]] == [plan["plan_id"]]
    assert view["plans"][0]["triage"]["triage_class"] == "TRIAGE_CLASS_SETTLED"
    # Each step is an ordinary action of the case.
    assert {a["action_id"] for a in view["actions"]} == {s["action_id"] for s in plan["steps"]}


async def test_a_case_short_of_funds_freezes_everything_and_seals(stack):
    who = debtor(stack, 1)
    found = holdings(who.subject.id_number)
    case_number = new_case_number()
    await register(stack, case_number, who, owed=10**12)
    before = await available(stack, case_number, who)

    reply = await enforce(stack.http, case_number, dry_run=False)
    assert reply.status == 200, reply.body
    plan = reply.body
    assert plan["triage"]["triage_class"] == "TRIAGE_CLASS_PARTIAL", plan["triage"]
    freezes = {s["target"]: int(s["done_fen"]) for s in steps_of(plan, "FREEZE")}
    assert freezes == {account: fen for account, fen in before.items() if fen > 0}
    assert not steps_of(plan, "DEDUCT")
    sealed = {s["target"] for s in steps_of(plan, "SEAL") if s["state"] == SUCCEEDED}
    assert set(found.plates) <= sealed and set(found.certificates) <= sealed
    assert {h for h in plan["triage"]["seized_hold_ids"]} == {s["hold_id"] for s in plan["steps"]}
    assert int(plan["triage"]["frozen_fen"]) == sum(freezes.values())
    assert {f["account_number"]: f["frozen_fen"] for f in bank_freezes(stack.agencies[BANK], case_number)} == freezes
    assert bank_deductions(stack.agencies[BANK], case_number) == []


async def test_a_debtor_with_nothing_is_no_assets(stack):
    nobody = subject_without_assets()[lane(stack)]
    case_number = new_case_number()
    await register(stack, case_number, Debtor(nobody, "", 0, "", ""), owed=50_000)
    reply = await enforce(stack.http, case_number)
    assert reply.status == 200, reply.body
    assert reply.body["steps"] == []
    assert reply.body["triage"]["triage_class"] == "TRIAGE_CLASS_NO_ASSETS", reply.body["triage"]
    assert reply.body["query"]["agencies_ok"] == 3


async def test_nothing_found_while_an_agency_is_down_is_failed_not_no_assets(tmp_path, agencies, ledger_url):
    down = Agency("deadbank", "bank", f"127.0.0.1:{free_port()}", timeout_ms=300)
    async with control_stack(tmp_path, [*agencies, down], ledger_url, enforce_policy=write_policy(tmp_path),
                             query_deadline_ms=1000) as stack:
        nobody = subject_without_assets()[2 + lane(stack)]
        case_number = new_case_number()
        await register(stack, case_number, Debtor(nobody, "", 0, "", ""), owed=50_000)
        plan = (await enforce(stack.http, case_number)).body
        assert plan["triage"]["triage_class"] == "TRIAGE_CLASS_FAILED", plan["triage"]
        assert plan["triage"]["agency_id"] == "deadbank" and "not every agency answered" in plan["triage"]["reason"]
        assert plan["query"]["unanswered"][0].startswith("deadbank")


# Exactly once


async def test_the_same_plan_executed_twice_acts_once(stack):
    who = debtor(stack, 2)
    case_number = new_case_number()
    await register(stack, case_number, who, owed=40_000)
    plan_id = f"pl-test-{uuid.uuid4().hex[:12]}"
    first, second = await asyncio.gather(enforce(stack.http, case_number, plan_id=plan_id),
                                         enforce(stack.http, case_number, plan_id=plan_id))
    assert first.status == second.status == 200, (first.body, second.body)
    assert first.body["plan_id"] == second.body["plan_id"] == plan_id
    again = await stack.http.post(f"/v1/cases/{case_number}/plans/{plan_id}/execute", {})
    assert again.body["triage"] == first.body["triage"]
    assert len(bank_freezes(stack.agencies[BANK], case_number)) == len(steps_of(first.body, "FREEZE"))
    assert sum(d["amount_fen"] for d in bank_deductions(stack.agencies[BANK], case_number)) == 40_000
    # Another case's plan ID is not this case's.
    other = new_case_number()
    await register(stack, other, who, owed=1)
    taken = await enforce(stack.http, other, plan_id=plan_id, dry_run=True)
    assert taken.status == 409 and taken.body["error"]["field"] == "plan_id"


async def test_a_balance_lowered_after_the_dry_run_is_noticed_and_reported(stack):
    who = debtor(stack, 3)
    case_number, rival = new_case_number(), new_case_number()
    await register(stack, case_number, who, owed=10**12)
    await register(stack, rival, who, owed=10**12)
    dry = (await enforce(stack.http, case_number, dry_run=True)).body
    largest = max(steps_of(dry, "FREEZE"), key=lambda s: int(s["amount_fen"]))
    # Another case of the court freezes part of the same account in between.
    taken = await stack.http.post("/v1/freezes",
                                  freeze_body(rival, who, 30_000) | {"account_number": largest["target"]})
    assert taken.status == 200, taken.body

    done = (await stack.http.post(f"/v1/cases/{case_number}/plans/{dry['plan_id']}/execute", {})).body
    step = next(s for s in steps_of(done, "FREEZE") if s["target"] == largest["target"])
    assert int(step["amount_fen"]) == int(largest["amount_fen"]) - 30_000
    assert int(step["planned_fen"]) == int(largest["amount_fen"])
    assert step["state"] == SUCCEEDED and int(step["done_fen"]) == int(step["amount_fen"])
    change = next(c for c in done["changes"] if c["step"] == step["step"])
    assert (int(change["planned_fen"]), int(change["amount_fen"])) == (int(largest["amount_fen"]),
                                                                       int(step["amount_fen"]))
    assert not [s for s in done["steps"] if s["state"] == "STEP_STATE_FAILED"]
    shortfalls = [f["shortfall_fen"] for f in bank_freezes(stack.agencies[BANK], case_number)]
    assert shortfalls and set(shortfalls) == {0}


async def test_two_gateways_on_one_ledger_executing_one_plan_act_once(tmp_path, agencies, ledger_url, policy):
    who = other_debtor(ledger_url, 7)
    case_number = new_case_number()
    (tmp_path / "b").mkdir()
    async with control_stack(tmp_path, agencies, ledger_url, enforce_policy=policy) as one, \
            control_stack(tmp_path / "b", agencies, ledger_url, enforce_policy=policy) as two:
        await register(one, case_number, who, owed=60_000)
        dry = (await enforce(one.http, case_number, dry_run=True)).body
        path = f"/v1/cases/{case_number}/plans/{dry['plan_id']}/execute"
        replies = await asyncio.gather(one.http.post(path, {}), two.http.post(path, {}))
        assert {r.status for r in replies} <= {200, 202}, [r.body for r in replies]
        plan = await plan_done(two.http, case_number, dry["plan_id"])
        assert plan["triage"]["triage_class"] == "TRIAGE_CLASS_SETTLED", plan["triage"]
        assert len(bank_freezes(one.agencies[BANK], case_number)) == len(steps_of(plan, "FREEZE"))
        assert sum(d["amount_fen"] for d in bank_deductions(one.agencies[BANK], case_number)) == 60_000


# Killed after the bank froze but before the ledger knew (the action's own crash point), and after the
# action was recorded but before the plan was saved.
@pytest.mark.parametrize("point", ["after_agency_call", "after_plan_step"])
async def test_a_gateway_killed_mid_plan_completes_it_after_restart_acting_once(tmp_path, agencies, ledger_url, point):
    who = other_debtor(ledger_url, 6 if point == "after_agency_call" else 0)
    case_number = new_case_number()
    gateway = GatewayProcess(tmp_path, agencies, ledger_url, ENFORCE_POLICY=str(write_policy(tmp_path)))
    await gateway.start(crash_at=point)
    try:
        async with gateway.http() as http:
            assert (await http.post("/v1/cases", register_body(case_number, who, owed=10**12))).status == 201
            with pytest.raises(aiohttp.ClientError):
                await http.post(f"/v1/cases/{case_number}/enforce", {"plan_id": f"pl-crash-{point}"})
        assert await gateway.died() == -signal.SIGKILL
        await gateway.start()
        async with gateway.http() as http:
            plan = await plan_done(http, case_number, f"pl-crash-{point}")
        assert plan["triage"]["triage_class"] == "TRIAGE_CLASS_PARTIAL", plan["triage"]
        assert all(s["state"] == SUCCEEDED for s in plan["steps"]), plan["steps"]
        bank = next(a for a in agencies if a.id == BANK)
        # Each step acted once at its agency.
        assert len(bank_freezes(bank, case_number)) == len(steps_of(plan, "FREEZE"))
        assert bank_conservation(bank) == []
    finally:
        await gateway.stop()


# Four eyes


async def court_figures(stack) -> tuple[int, int, int]:
    """(approvals waiting, cases through 查冻扣 today, of them settled) from the court report."""
    report = await stack.http.get("/v1/reports/court?days=1")
    assert report.status == 200, report.body
    today = report.body["days"][-1]
    return report.body["approvals_waiting"], today["cases_enforced"], today["cases_settled"]


async def test_a_deduction_above_the_threshold_waits_for_a_second_officer(tmp_path, agencies, ledger_url):
    policy = write_policy(tmp_path, threshold_fen=1_000, on_reject="release")
    async with control_stack(tmp_path, agencies, ledger_url, enforce_policy=policy) as stack:
        who, other = other_debtor(stack, 1), other_debtor(stack, 2)
        case_number, rejected_case = new_case_number(), new_case_number()
        await register(stack, case_number, who, owed=20_000)
        await register(stack, rejected_case, other, owed=20_000)

        waiting = (await enforce(stack.http, case_number)).body
        assert waiting["state"] == "PLAN_STATE_WAITING_APPROVAL", waiting
        assert waiting["triage"]["triage_class"] == "TRIAGE_CLASS_WAITING_APPROVAL"
        assert {s["state"] for s in steps_of(waiting, "DEDUCT")} == {"STEP_STATE_WAITING_APPROVAL"}
        assert {s["state"] for s in steps_of(waiting, "FREEZE")} == {SUCCEEDED}
        assert bank_deductions(stack.agencies[BANK], case_number) == []
        approval = waiting["approval"]
        assert approval["requested_by"] == "E0001" and approval["deduct_fen"] == "20000"
        assert await court_figures(stack) == (1, 0, 0)

        async with officer(stack, "E0001", ("executor", "approver")) as same, \
                officer(stack, APPROVER, ("approver",)) as approver, officer(stack, "E0002") as plain:
            listed = await approver.get("/v1/approvals")
            assert listed.status == 200
            assert approval["approval_id"] in [a["approval_id"] for a in listed.body["approvals"]]
            # The approver reads what it approves; an officer of the court who is neither may not.
            read = await approver.get(f"/v1/cases/{case_number}/plans/{waiting['plan_id']}")
            assert read.status == 200 and read.body["approval"] == approval
            assert (await plain.get(f"/v1/cases/{case_number}/plans/{waiting['plan_id']}")).status == 403
            assert (await plain.get("/v1/approvals")).status == 403
            own = await same.post(f"/v1/approvals/{approval['approval_id']}/approve", {"reason": "我批我自己"})
            assert own.status == 403 and "four eyes" in own.body["error"]["message"]
            assert (await approver.post(f"/v1/approvals/{approval['approval_id']}/approve", {})).status == 400
            approved = await approver.post(f"/v1/approvals/{approval['approval_id']}/approve", {"reason": "核实无误"})
            assert approved.status == 200, approved.body
            plan = approved.body
            assert plan["triage"]["triage_class"] == "TRIAGE_CLASS_SETTLED", plan["triage"]
            assert plan["approval"]["state"] == "APPROVAL_STATE_APPROVED" and plan["approval"]["decided_by"] == APPROVER
            twice = await approver.post(f"/v1/approvals/{approval['approval_id']}/approve", {"reason": "again"})
            assert twice.status == 409
            assert sum(d["amount_fen"] for d in bank_deductions(stack.agencies[BANK], case_number)) == 20_000
            assert await court_figures(stack) == (0, 1, 1)

            # A rejection releases the freezes, as this court's policy says.
            second = (await enforce(stack.http, rejected_case)).body
            assert second["state"] == "PLAN_STATE_WAITING_APPROVAL", second
            rejected = await approver.post(f"/v1/approvals/{second['approval']['approval_id']}/reject",
                                           {"reason": "文书不全"})
            assert rejected.status == 200, rejected.body
            plan = rejected.body
            assert plan["triage"]["triage_class"] == "TRIAGE_CLASS_PARTIAL" and "rejected" in plan["triage"]["reason"]
            assert {s["state"] for s in steps_of(plan, "RELEASE_FREEZE")} == {SUCCEEDED}
            released = {f["state"] for f in bank_freezes(stack.agencies[BANK], rejected_case)}
            assert released == {common_pb2.HOLD_STATE_RELEASED}
            assert bank_deductions(stack.agencies[BANK], rejected_case) == []
            assert (await approver.get("/v1/approvals")).body["approvals"] == []
            # The command centre's figures: two cases through 查冻扣 today, one settled, none waiting.
            assert await court_figures(stack) == (0, 2, 1)

        # Everything went through the door's audit trail, the refusal too.
        await asyncio.sleep(0.3)
        with sqlite3.connect(tmp_path / "audit.db") as db:
            rows = db.execute("SELECT executor_id, action, outcome, result FROM audit_record"
                              " WHERE action LIKE 'approvals.%' ORDER BY seq").fetchall()
        assert ("E0001", "approvals.approve", "answered") in [r[:3] for r in rows]
        assert any("four eyes" in r[3] for r in rows if r[0] == "E0001")


async def test_an_unapproved_deduction_expires_and_the_freezes_stay(tmp_path, agencies, ledger_url):
    policy = write_policy(tmp_path, threshold_fen=0, expires_after_seconds=1, on_expiry="keep")
    async with control_stack(tmp_path, agencies, ledger_url, enforce_policy=policy,
                             redrive_interval_seconds=0.2) as stack:
        who = other_debtor(stack, 3)
        case_number = new_case_number()
        await register(stack, case_number, who, owed=10_000)
        waiting = (await enforce(stack.http, case_number)).body
        assert waiting["state"] == "PLAN_STATE_WAITING_APPROVAL", waiting
        for _ in range(100):
            plan = (await stack.http.get(f"/v1/cases/{case_number}/plans/{waiting['plan_id']}")).body
            if plan["state"] == "PLAN_STATE_DONE":
                break
            await asyncio.sleep(0.1)
        assert plan["approval"]["state"] == "APPROVAL_STATE_EXPIRED", plan["approval"]
        assert plan["triage"]["triage_class"] == "TRIAGE_CLASS_PARTIAL"
        assert "not approved in time" in plan["triage"]["reason"]
        assert {f["state"] for f in bank_freezes(stack.agencies[BANK], case_number)} == {common_pb2.HOLD_STATE_ACTIVE}


# Batches of plans


async def batch_enforcement(http, batch_id: str, done, timeout: float = 60.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        shown = (await http.get(f"/v1/batches/{batch_id}/enforcement")).body
        if not shown["running"] and done(shown):
            return shown
        assert asyncio.get_running_loop().time() < deadline, shown
        await asyncio.sleep(0.2)


async def test_a_batch_plans_every_case_then_executes_them_once_with_totals(stack):
    rich, short = other_debtor(stack, 8), other_debtor(stack, 9)
    nobody = Debtor(subject_without_assets()[4 + lane(stack)], "", 0, "", "")
    cases = {"settled": (new_case_number(), rich, 30_000), "partial": (new_case_number(), short, 10**12),
             "no_assets": (new_case_number(), nobody, 50_000)}
    for case_number, who, owed in cases.values():
        await register(stack, case_number, who, owed=owed)
    rows = [{"case_number": n, "debtor_id": who.subject.id_number, "debtor_name": who.subject.name}
            for n, who, _ in cases.values()]
    submitted = await stack.http.post("/v1/batches", {"rows": rows})
    assert submitted.status == 202, submitted.body
    batch_id = submitted.body["batch_id"]

    started = await stack.http.post(f"/v1/batches/{batch_id}/enforce", {"dry_run": True})
    assert started.status == 202, started.body
    dry = await batch_enforcement(stack.http, batch_id, lambda shown: shown["planned"] == 3)
    expected = {p["case_number"]: p["expected_class"] for p in dry["plans"]}
    assert expected == {n: f"TRIAGE_CLASS_{name.upper()}" for name, (n, _, _) in cases.items()}
    assert dry["executed"] == 0 and all(not bank_freezes(stack.agencies[BANK], n) for n, _, _ in cases.values())

    for _ in range(2):  # executed twice: the same plans, one effect
        assert (await stack.http.post(f"/v1/batches/{batch_id}/enforce", {})).status == 202
        done = await batch_enforcement(stack.http, batch_id, lambda shown: shown["executed"] == 3)
    assert [p["plan_id"] for p in done["plans"]] == [p["plan_id"] for p in dry["plans"]]
    classes = {p["case_number"]: p["triage_class"] for p in done["plans"]}
    assert classes == expected
    assert (done["settled"], done["partial"], done["no_assets"], done["waiting_approval"], done["failed"]) == \
        (1, 1, 1, 0, 0)
    assert done["deducted_fen"] == "30000"
    settled_case = cases["settled"][0]
    assert sum(d["amount_fen"] for d in bank_deductions(stack.agencies[BANK], settled_case)) == 30_000
    partial = next(p for p in done["plans"] if p["case_number"] == cases["partial"][0])
    assert int(done["frozen_fen"]) == int(partial["frozen_fen"]) > 0
    assert len(bank_freezes(stack.agencies[BANK], cases["partial"][0])) == len(
        steps_of((await stack.http.get(f"/v1/cases/{cases['partial'][0]}/plans/{partial['plan_id']}")).body, "FREEZE"))
    # Another officer's batch is not theirs to enforce.
    async with officer(stack, "E0002") as other:
        assert (await other.post(f"/v1/batches/{batch_id}/enforce", {"dry_run": True})).status == 403


# The other faces: gRPC, the CLI, metrics


async def test_grpc_and_the_cli_plan_execute_and_approve(stack):
    who = other_debtor(stack, 4)
    case_number = new_case_number()
    await register(stack, case_number, who, owed=3_000)
    async with stack.endpoints.channel(issue_token()) as channel:
        stub = enforce_pb2_grpc.EnforcementPlansStub(channel)
        dry = await stub.Enforce(enforce_pb2.EnforceRequest(case_number=case_number, dry_run=True))
        assert dry.state == enforce_pb2.PLAN_STATE_DRAFT
        assert dry.triage.expected_class == enforce_pb2.TRIAGE_CLASS_SETTLED
        assert await stub.GetPlan(enforce_pb2.GetPlanRequest(case_number=case_number, plan_id=dry.plan_id)) == dry
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await stub.ListApprovals(enforce_pb2.ListApprovalsRequest())
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED

    async def chakong(*args):
        # The CLI mints its development token with the run's signing key (CHAKONG_TOKEN_SIGNING_KEY).
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.cli.main", "--gateway", stack.grpc_address, *args, cwd=REPO,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await process.communicate()
        return process.returncode, out.decode(), err.decode()

    status, out, err = await chakong("enforce", "--case", case_number, "--dry-run")
    assert status == 0, err
    assert "dry run" in out and "SETTLED" in out
    status, out, err = await chakong("enforce", "--case", case_number, "--json")
    assert status == 0, err
    assert json.loads(out)["triage"]["triage_class"] == "TRIAGE_CLASS_SETTLED"
    status, out, err = await chakong("approvals", "list", "--executor", APPROVER)
    assert status == 0, err
    assert "No approvals wait" in out
    status, out, err = await chakong("case", "show", "--case", case_number)
    assert status == 0, err
    assert "Enforcement plans" in out and "已结清 SETTLED" in out


async def test_the_plan_metrics_exist_at_zero_and_count(stack):
    def value(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = value("chakong_gateway_plans_total", triage="settled", court="340100")
    assert value("chakong_gateway_plans_total", triage="no_assets", court="other") == 0.0
    who = other_debtor(stack, 5)
    case_number = new_case_number()
    await register(stack, case_number, who, owed=2_000)
    deducted = value("chakong_gateway_plan_deducted_fen_total", court="340100")
    assert (await enforce(stack.http, case_number)).body["triage"]["triage_class"] == "TRIAGE_CLASS_SETTLED"
    assert value("chakong_gateway_plans_total", triage="settled", court="340100") == before + 1
    assert value("chakong_gateway_plan_deducted_fen_total", court="340100") == deducted + 2_000
    await stack.gateway.core.enforce.resume_once()
    assert 0 < value("chakong_gateway_enforce_settled_ratio") <= 1
    assert value("chakong_gateway_approvals_waiting") == 0


def test_the_ledger_states_are_the_protos():
    assert (ledger_plans.PLAN_EXECUTING, ledger_plans.PLAN_WAITING) == (
        enforce_pb2.PLAN_STATE_EXECUTING, enforce_pb2.PLAN_STATE_WAITING_APPROVAL)
    assert ledger_plans.APPROVAL_WAITING == enforce_pb2.APPROVAL_STATE_WAITING
    assert ledger_plans.SETTLED_CLASS == enforce_pb2.TRIAGE_CLASS_SETTLED
