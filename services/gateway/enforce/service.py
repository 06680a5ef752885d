"""Enforcement plans (查冻扣): build from a fresh query, store, execute step by step exactly once, approve, triage.

A plan's life:

1. **Build** (`enforce`): query every agency about every debtor of the case
   (query/fanout.py), read what the case owes and holds from the ledger,
   and let the pure planner (planner.py) decide the steps. A dry run stores
   the plan as DRAFT and acts on nothing.
2. **Execute**: a DRAFT is first checked again against a fresh query; its
   steps are decided anew (never beyond what is available now, nor the cap)
   and every difference is recorded in `changes`. The steps are then fixed
   (READY) and stored before the first is carried out.
3. Each step is an ordinary control action (control/service.py `submit`)
   whose idempotency key is "<plan_id>.<step>": carried out again after a
   crash, a retry or a second execute, it is the same action, done once at
   the agency. The plan is saved after every step, under the plan's lease
   in the ledger (ledger/plans.py), so one gateway at a time executes it,
   and an unfinished plan is resumed by the resumer (at start and
   periodically) where it stopped.
4. **Deductions** are sized from what the plan's freezes actually hold. When
   they no longer cover what is owed, they are skipped and the funds stay
   frozen; above the court's threshold they wait for an approver (four
   eyes: `decide`), and expire unapproved after the policy's time, the
   freezes then kept or released by the policy.
5. **Triage** (planner.py `classify`) when every step has ended.
"""

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Callable

import grpc
from google.protobuf import json_format

from protos.bank.v1 import bank_pb2
from protos.common.v1 import common_pb2
from protos.gateway.v1 import control_pb2, enforce_pb2, gateway_pb2
from protos.vehicle.v1 import vehicle_pb2
from services.common import identifiers
from services.common.identifiers import normal_case_number
from services.common.logs import mask_id
from services.common.validation import (
    MAX_DOCUMENT_NUMBER_CHARS,
    FieldError,
    check_identifier,
    require_text,
    validate_token,
)
from services.gateway.access import authz
from services.gateway.config import GatewaySettings
from services.gateway.control.messages import (
    ACTIVE,
    FREEZE,
    QUEUED,
    SEAL,
    action_message,
    now_us,
    timestamp,
    timestamp_us,
    to_json,
)
from services.gateway.control.service import ControlService
from services.gateway.enforce import metrics, planner
from services.gateway.enforce.policy import EnforcePolicy
from services.gateway.errors import GatewayError
from services.gateway.ledger import PENDING, CaseView, Ledger, PlanRecord
from services.gateway.query.fanout import FanOut
from services.security.tokens import Principal

logger = logging.getLogger(__name__)

E = enforce_pb2
MAX_PLAN_ID_CHARS = 64
MAX_REASON_CHARS = 500
RESUME_BATCH = 50
STEP_KINDS = {
    planner.FREEZE: E.STEP_KIND_FREEZE, planner.DEDUCT: E.STEP_KIND_DEDUCT, planner.SEAL: E.STEP_KIND_SEAL,
    planner.RELEASE: E.STEP_KIND_RELEASE_FREEZE,
}
KIND_NAMES = {value: name for name, value in STEP_KINDS.items()}
TRIAGE = {
    planner.SETTLED: E.TRIAGE_CLASS_SETTLED, planner.PARTIAL: E.TRIAGE_CLASS_PARTIAL,
    planner.NO_ASSETS: E.TRIAGE_CLASS_NO_ASSETS, planner.WAITING_APPROVAL: E.TRIAGE_CLASS_WAITING_APPROVAL,
    planner.FAILED: E.TRIAGE_CLASS_FAILED,
}
RESULT_STATES = {
    E.STEP_STATE_SUCCEEDED: "succeeded", E.STEP_STATE_FAILED: "failed", E.STEP_STATE_SKIPPED: "skipped",
    E.STEP_STATE_WAITING_APPROVAL: "waiting", E.STEP_STATE_PENDING: "pending",
}
OK = gateway_pb2.AGENCY_STATUS_OK


def triage_label(value: int) -> str:
    return E.TriageClass.Name(value).removeprefix("TRIAGE_CLASS_").lower()


def _parse(body: str) -> E.Plan:
    return json_format.Parse(body, E.Plan())


class _Stale(Exception):
    """The plan changed under us (our lease ran out and another gateway took it)."""


class EnforceService:
    """Enforcement plans over the ledger, the fan-out and the control service; `start()` begins resuming."""

    def __init__(self, ledger: Ledger, fanout: FanOut, control: ControlService, settings: GatewaySettings,
                 policy: EnforcePolicy, *, now_us: Callable[[], int] = now_us):
        self.ledger = ledger
        self.fanout = fanout
        self.control = control
        self.settings = settings
        self.policy = policy
        self.now_us = now_us
        self.owner = control.driver.owner
        self.lease_us = int(settings.lease_seconds * 1_000_000)
        self._running: dict[str, asyncio.Task] = {}
        self._resumer: asyncio.Task | None = None

    async def start(self) -> None:
        self._resumer = asyncio.create_task(self._resume_loop(), name="plan resumer")

    async def close(self) -> None:
        if self._resumer is not None:
            self._resumer.cancel()
            await asyncio.gather(self._resumer, return_exceptions=True)
            self._resumer = None
        running = list(self._running.values())
        if running:
            _, unfinished = await asyncio.wait(running, timeout=self.settings.grace_seconds)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        try:
            await self.ledger.plans.release_all(self.owner)
        except Exception:
            logger.warning("could not release this gateway's plan leases; they run out by themselves", exc_info=True)

    # Building

    async def enforce(self, request: E.EnforceRequest, principal: Principal) -> E.Plan:
        case_number = _case_number(request.case_number)
        if request.plan_id:
            validate_token(request.plan_id, "plan_id", required=True)
            if len(request.plan_id) > MAX_PLAN_ID_CHARS:
                raise FieldError("plan_id", f"at most {MAX_PLAN_ID_CHARS} characters")
        if request.document_number:
            require_text(request.document_number, "document_number", MAX_DOCUMENT_NUMBER_CHARS)
        if request.plan_id:
            existing = await self.ledger.plans.get(request.plan_id)
            if existing is not None:
                if existing.case_number != case_number:
                    raise GatewayError(grpc.StatusCode.ALREADY_EXISTS,
                                       f"plan_id: {request.plan_id} is a plan of case {existing.case_number}")
                return _parse(existing.body) if request.dry_run else await self.execute(case_number, request.plan_id)
        view = await self._view(case_number)
        plan_id = request.plan_id or f"pl-{uuid.uuid4().hex[:24]}"
        if not request.dry_run:
            await self._refuse_if_busy(case_number, plan_id)
        plan = E.Plan(
            plan_id=plan_id, case_number=case_number, court_code=view.case.court_code,
            requested_by=principal.executor_id,
            document_number=request.document_number or view.case.document_number,
            state=E.PLAN_STATE_DRAFT, order=self.policy.order_labels,
        )
        await self._outline(plan, view)
        if not request.dry_run:
            self._fix(plan)
        now = self.now_us()
        plan.created_at.CopyFrom(timestamp(now))
        plan.updated_at.CopyFrom(timestamp(now))
        record, created = await self.ledger.plans.insert(PlanRecord(
            plan_id=plan_id, case_number=case_number, court_code=plan.court_code, requested_by=plan.requested_by,
            state=plan.state, triage=0, approval_id="", approval_state=0, approval_requested_at_us=0,
            approval_expires_at_us=0, version=0, body=to_json(plan),
            # Leased to this gateway from the start when it executes now: the resumer leaves it alone.
            lease_owner="" if request.dry_run else self.owner,
            lease_until_us=0 if request.dry_run else now + self.lease_us,
            created_at_us=now, updated_at_us=now,
        ))
        if created:
            logger.info("plan %s for case %s %s: %d step(s), expected %s", plan_id, case_number,
                        "drafted (dry run)" if request.dry_run else "recorded", len(plan.steps),
                        triage_label(plan.triage.expected_class), extra={"case_number": case_number})
        elif record.case_number != case_number:
            raise GatewayError(grpc.StatusCode.ALREADY_EXISTS,
                               f"plan_id: {plan_id} is a plan of case {record.case_number}")
        return _parse(record.body) if request.dry_run else await self.execute(case_number, plan_id)

    async def _refuse_if_busy(self, case_number: str, plan_id: str) -> None:
        """One plan of a case at a time acts on it (a second would count the first one's freezes as its own)."""
        for record in await self.ledger.plans.of_case(case_number):
            if record.plan_id != plan_id and record.state in (E.PLAN_STATE_EXECUTING, E.PLAN_STATE_WAITING_APPROVAL):
                raise GatewayError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"case_number: case {case_number} has plan {record.plan_id} in progress"
                    f" ({E.PlanState.Name(record.state).removeprefix('PLAN_STATE_')}); execute it or decide its"
                    " approval first",
                )

    async def _outline(self, plan: E.Plan, view: CaseView) -> None:
        """Query the agencies about every debtor and fill the plan's steps, query and expected class."""
        accounts, assets, plan_query = await self._query(plan, view)
        plan.query.CopyFrom(plan_query)
        funds, held, frozen_accounts, sealed_assets = _holdings(view, self.now_us())
        outline = planner.outline(funds, accounts, assets, held, self.policy.planner_policy(plan.court_code),
                                  frozen_accounts=frozen_accounts, sealed_assets=sealed_assets,
                                  unanswered=plan.query.unanswered)
        if outline.deduct_fen and self.policy.court(plan.court_code).court_account is None:
            raise GatewayError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"case_number: court {plan.court_code} has no court account in the enforcement policy"
                f" ({self.settings.enforce_policy}); a plan cannot deduct for it",
            )
        subjects = {d.id_number: common_pb2.Subject(type=d.subject_type, id_number=d.id_number, name=d.name)
                    for d in view.debtors}
        del plan.steps[:]
        for number, step in enumerate(outline.steps, 1):
            plan.steps.add(
                step=number, kind=STEP_KINDS[step.kind], agency_id=step.agency_id, subject=subjects[step.subject_id],
                target=step.target, account_type=step.account_type, amount_fen=step.amount_fen, reason=step.reason,
                state=E.STEP_STATE_PLANNED, hold_id=step.hold_id, from_step=step.from_step,
            )
        plan.triage.CopyFrom(E.Triage(expected_class=TRIAGE[outline.expected], reason=outline.reason,
                                      owed_fen=outline.remaining_fen))

    async def _query(self, plan: E.Plan, view: CaseView):
        ref = _case_ref(plan)
        # One request ID per query: a plan queries again when it is executed.
        run = uuid.uuid4().hex[:8]
        requests = [
            gateway_pb2.AssetQueryRequest(
                case=ref, subject=common_pb2.Subject(type=d.subject_type, id_number=d.id_number, name=d.name),
                request_id=f"{plan.plan_id}.{run}.q{i}",
            )
            for i, d in enumerate(view.debtors)
        ]
        prepared = [self.fanout.prepare(r) for r in requests]
        responses = await asyncio.gather(*(self.fanout.query(p, "enforce") for p in prepared))
        accounts, assets = [], []
        found = E.PlanQuery(queried_at=timestamp(self.now_us()))
        for request, response in zip(requests, responses):
            debtor = request.subject.id_number
            for result in response.results:
                found.agencies_asked += 1
                if result.status != OK:
                    found.unanswered.append(f"{result.agency_id} ({mask_id(debtor)}): {result.error_message}")
                    continue
                found.agencies_ok += 1
                for account in result.accounts:
                    found.accounts += 1
                    found.available_fen += account.available_balance_fen
                    if account.status == bank_pb2.ACCOUNT_STATUS_CLOSED or account.currency != "CNY":
                        continue
                    accounts.append(planner.Account(
                        result.agency_id, debtor, account.account_number,
                        bank_pb2.AccountType.Name(account.type).removeprefix("ACCOUNT_TYPE_").lower(),
                        account.available_balance_fen,
                    ))
                for vehicle in result.vehicles:
                    found.vehicles += 1
                    if vehicle.status != vehicle_pb2.VEHICLE_STATUS_SCRAPPED:  # nothing left to seal
                        assets.append(planner.Asset(result.agency_id, debtor, vehicle.plate, "vehicle"))
                for prop in result.properties:
                    found.properties += 1
                    assets.append(planner.Asset(result.agency_id, debtor, prop.certificate_number, "realestate"))
        return accounts, assets, found

    def _fix(self, plan: E.Plan) -> None:
        """Ready for execution: freezes and seals fixed; deductions are sized after the freezes."""
        plan.state = E.PLAN_STATE_EXECUTING
        for step in plan.steps:
            if step.kind != E.STEP_KIND_DEDUCT:
                step.state = E.STEP_STATE_READY

    async def _recheck(self, plan: E.Plan) -> None:
        """A dry run's plan, decided again on a fresh query; what changed is recorded."""
        before = [_copy(s) for s in plan.steps]
        await self._outline(plan, await self._view(plan.case_number))
        plan.changes.extend(_diff(before, plan.steps))
        for step in plan.steps:
            match = next((b for b in before if _same_target(b, step)), None)
            if match is not None and match.amount_fen != step.amount_fen:
                step.planned_fen = match.amount_fen
        self._fix(plan)

    # Reading

    async def get_plan(self, case_number: str, plan_id: str) -> E.Plan:
        return _parse((await self._record(case_number, plan_id)).body)

    async def list_approvals(self, principal: Principal, *, include_decided: bool) -> E.ListApprovalsResponse:
        records = await self.ledger.plans.approvals(principal.court_code, waiting_only=not include_decided)
        return E.ListApprovalsResponse(approvals=[_parse(r.body).approval for r in records])

    async def _record(self, case_number: str, plan_id: str) -> PlanRecord:
        case_number = _case_number(case_number)
        validate_token(plan_id, "plan_id", required=True)
        record = await self.ledger.plans.get(plan_id)
        if record is None or record.case_number != case_number:
            raise GatewayError(grpc.StatusCode.NOT_FOUND, f"plan_id: no plan {plan_id} of case {case_number}")
        return record

    async def _view(self, case_number: str) -> CaseView:
        view = await self.ledger.case_view(case_number, self.now_us())
        if view is None:
            raise GatewayError(grpc.StatusCode.NOT_FOUND, f"case_number: case {case_number} is not registered")
        return view

    # Executing

    async def execute(self, case_number: str, plan_id: str) -> E.Plan:
        """Carry the plan on from where it stands; returns it as it stands then."""
        record = await self._record(case_number, plan_id)
        if record.state == E.PLAN_STATE_DRAFT:
            await self._refuse_if_busy(record.case_number, plan_id)
        return await self._run(plan_id, self._advance)

    async def _run(self, plan_id: str, work) -> E.Plan:
        """`work(record)` under the plan's lease, one at a time per plan in this process; callers of
        `_advance` share the run already going."""
        while (task := self._running.get(plan_id)) is not None:
            if work == self._advance:
                return await asyncio.shield(task)
            await asyncio.gather(asyncio.shield(task), return_exceptions=True)
        task = asyncio.create_task(self._leased(plan_id, work), name=f"plan {plan_id}")
        self._running[plan_id] = task
        task.add_done_callback(lambda _, plan_id=plan_id: self._running.pop(plan_id, None))
        return await asyncio.shield(task)

    async def _claim(self, plan_id: str) -> PlanRecord | None:
        now = self.now_us()
        return await self.ledger.plans.claim(plan_id, owner=self.owner, now_us=now, lease_until_us=now + self.lease_us)

    async def _leased(self, plan_id: str, work) -> E.Plan:
        record = await self._claim(plan_id)
        if record is None:
            # Another gateway is executing it: wait for it to let go.
            current = await self._wait(plan_id)
            record = await self._claim(plan_id)
            if record is None:
                if work == self._advance:
                    return current
                raise GatewayError(grpc.StatusCode.UNAVAILABLE,
                                   f"plan_id: {plan_id} is being executed by another gateway; retry shortly",
                                   retry_after="1")
        retry_at = 0
        try:
            plan = await work(record)
            if plan.state == E.PLAN_STATE_EXECUTING:
                # An agency has not answered a step: the resumer tries again after a pause.
                retry_at = self.now_us() + int(self.settings.redrive_interval_seconds * 1_000_000)
            return plan
        except _Stale:
            logger.warning("plan %s was changed by another gateway; leaving it to that one", plan_id)
            return _parse((await self.ledger.plans.get(plan_id)).body)
        finally:
            await self.ledger.plans.release(plan_id, self.owner, retry_at_us=retry_at)

    async def _wait(self, plan_id: str) -> E.Plan:
        """Another gateway holds the plan: wait for it to let go, within the control deadline."""
        deadline = time.monotonic() + self.settings.control_deadline_ms / 1000
        while True:
            record = await self.ledger.plans.get(plan_id)
            if record.lease_until_us <= self.now_us() or not record.lease_owner or time.monotonic() > deadline:
                return _parse(record.body)
            await asyncio.sleep(0.05)

    async def _advance(self, record: PlanRecord) -> E.Plan:
        plan = _parse(record.body)
        if plan.state == E.PLAN_STATE_DRAFT:
            await self._recheck(plan)
            record = await self._save(record, plan)
        while plan.state == E.PLAN_STATE_EXECUTING:
            step = next((s for s in plan.steps if s.state in (E.STEP_STATE_READY, E.STEP_STATE_PENDING)), None)
            if step is not None:
                record = await self._renew(record)
                await self._carry_out(plan, step)
                record = await self._save(record, plan)
                if step.state == E.STEP_STATE_PENDING:
                    return plan
            elif any(s.kind == E.STEP_KIND_DEDUCT and s.state == E.STEP_STATE_PLANNED for s in plan.steps):
                await self._size_deductions(plan)
                record = await self._save(record, plan)
            else:
                await self._triage(plan)
                record = await self._save(record, plan)
        return plan

    async def _renew(self, record: PlanRecord) -> PlanRecord:
        now = self.now_us()
        renewed = await self.ledger.plans.claim(record.plan_id, owner=self.owner, now_us=now,
                                                lease_until_us=now + self.lease_us)
        if renewed is None or renewed.version != record.version:
            raise _Stale
        return renewed

    async def _save(self, record: PlanRecord, plan: E.Plan) -> PlanRecord:
        now = self.now_us()
        plan.updated_at.CopyFrom(timestamp(now))
        approval = plan.approval
        saved = await self.ledger.plans.save(dataclasses.replace(
            record, state=plan.state, triage=plan.triage.triage_class, approval_id=approval.approval_id,
            approval_state=approval.state, approval_requested_at_us=timestamp_us(approval.requested_at),
            approval_expires_at_us=timestamp_us(approval.expires_at), body=to_json(plan),
        ), now_us=now)
        if saved is None:
            raise _Stale
        if plan.triage.triage_class != record.triage:
            if plan.triage.triage_class:
                metrics.count_triage(triage_label(plan.triage.triage_class), plan.court_code)
            logger.info("plan %s (case %s): %s, %s", plan.plan_id, plan.case_number,
                        E.TriageClass.Name(plan.triage.triage_class), plan.triage.reason,
                        extra={"case_number": plan.case_number})
        return saved

    async def _carry_out(self, plan: E.Plan, step: E.PlanStep) -> None:
        """Submit the step's action (the same one every time: its key is the plan's and the step's)."""
        ref = _case_ref(plan)
        key = f"{plan.plan_id}.{step.step}"
        if step.kind == E.STEP_KIND_FREEZE:
            kind = control_pb2.ACTION_KIND_FREEZE
            request = control_pb2.FreezeFundsRequest(idempotency_key=key, case=ref, agency_id=step.agency_id,
                                                     subject=step.subject, account_number=step.target,
                                                     amount_fen=step.amount_fen)
        elif step.kind == E.STEP_KIND_DEDUCT:
            account = self.policy.court(plan.court_code).court_account
            kind = control_pb2.ACTION_KIND_DEDUCT
            request = control_pb2.DeductFundsRequest(
                idempotency_key=key, case=ref, hold_id=step.hold_id, amount_fen=step.amount_fen,
                court_account=bank_pb2.CourtAccount(bank_name=account.bank_name, account_number=account.account_number,
                                                    account_name=account.account_name),
            )
        elif step.kind == E.STEP_KIND_SEAL:
            kind = control_pb2.ACTION_KIND_SEAL
            request = control_pb2.SealAssetRequest(idempotency_key=key, case=ref, agency_id=step.agency_id,
                                                   subject=step.subject, asset_id=step.target)
        else:
            kind = control_pb2.ACTION_KIND_RELEASE_FREEZE
            request = control_pb2.ReleaseFreezeRequest(idempotency_key=key, case=ref, hold_id=step.hold_id)
        try:
            submitted = await self.control.submit(kind, request)
        except (GatewayError, FieldError) as exc:
            code = exc.code.name if isinstance(exc, GatewayError) else "INVALID_ARGUMENT"
            step.state, step.error_code = E.STEP_STATE_FAILED, code
            step.outcome = exc.message if isinstance(exc, GatewayError) else str(exc)
            if isinstance(exc, GatewayError) and exc.action is not None:
                step.action_id = exc.action.action_id
            return
        record = submitted.action
        self.control.driver.crash("after_plan_step", record.action_id)
        step.action_id = record.action_id
        if record.state == PENDING:
            step.state = E.STEP_STATE_PENDING
            step.outcome = f"recorded; {step.agency_id} has not confirmed it yet ({record.error_code or 'waiting'})"
            return
        step.state = E.STEP_STATE_SUCCEEDED
        action = action_message(record)
        if step.kind == E.STEP_KIND_FREEZE:
            freeze = action.freeze
            step.hold_id, step.done_fen = record.action_id, freeze.frozen_fen
            if freeze.state == QUEUED:
                step.outcome = "queued (轮候) behind another court's freeze; holds nothing yet"
            else:
                step.outcome = f"frozen {freeze.frozen_fen} fen"
            if freeze.frozen_fen < step.amount_fen:
                step.outcome += f" of {step.amount_fen} asked (the account had less available)"
                plan.changes.add(step=step.step, planned_fen=step.amount_fen, amount_fen=freeze.frozen_fen,
                                 description=f"{step.agency_id} froze {freeze.frozen_fen} of {step.amount_fen} fen"
                                             f" on {step.target}: the balance fell since the plan was checked")
            metrics.count_money(plan.court_code, frozen_fen=freeze.frozen_fen)
        elif step.kind == E.STEP_KIND_DEDUCT:
            step.done_fen = action.deduction.amount_fen
            step.outcome = f"deducted {step.done_fen} fen to {action.deduction.court_account.account_name}"
            metrics.count_money(plan.court_code, deducted_fen=step.done_fen)
        elif step.kind == E.STEP_KIND_SEAL:
            step.hold_id = record.action_id
            step.outcome = ("queued (轮候) behind another court's seal" if action.seal.state == QUEUED
                            else "sealed")
        else:
            step.outcome = "released"

    async def _size_deductions(self, plan: E.Plan) -> None:
        """Fix the deductions from what the freezes hold now; skip them when that no longer covers what is
        owed; above the court's threshold, ask for approval."""
        view = await self._view(plan.case_number)
        holds = {h.hold_id: h for h in view.holds}
        remaining = planner.Funds(view.case.amount_owed_fen, view.case.costs_fen, view.totals.deducted_fen,
                                  0).remaining_fen
        deductions = [s for s in plan.steps if s.kind == E.STEP_KIND_DEDUCT and s.state == E.STEP_STATE_PLANNED]
        holding = []
        for step in deductions:
            if step.from_step:
                source = plan.steps[step.from_step - 1]
                step.hold_id = source.hold_id if source.state == E.STEP_STATE_SUCCEEDED else ""
            hold = holds.get(step.hold_id)
            holding.append(hold.frozen_fen if hold is not None and hold.state == ACTIVE else 0)
        if sum(min(h, s.amount_fen) for h, s in zip(holding, deductions)) < remaining:
            why = (f"funds held ({sum(holding)} fen) no longer cover what is owed ({remaining} fen): no deduction;"
                   " the funds stay frozen")
            plan.changes.add(step=0, description=why, planned_fen=sum(s.amount_fen for s in deductions),
                             amount_fen=0)
            for step in deductions:
                step.state, step.outcome = E.STEP_STATE_SKIPPED, why
            return
        left = remaining
        for step, held in zip(deductions, holding):
            amount = min(step.amount_fen, held, left)
            left -= amount
            if amount != step.amount_fen:
                plan.changes.add(step=step.step, planned_fen=step.amount_fen, amount_fen=amount,
                                 description=f"deduction from {step.hold_id or 'nothing'}: {amount} fen instead of"
                                             f" {step.amount_fen} (what is held and owed now)")
                step.planned_fen, step.amount_fen = step.amount_fen, amount
            step.state = E.STEP_STATE_READY if amount else E.STEP_STATE_SKIPPED
            if not amount:
                step.outcome = "nothing to deduct here any more"
        total = sum(s.amount_fen for s in deductions if s.state == E.STEP_STATE_READY)
        threshold = self.policy.court(plan.court_code).approval_threshold_fen
        if total > threshold and plan.approval.state != E.APPROVAL_STATE_APPROVED:
            now = self.now_us()
            plan.approval.CopyFrom(E.Approval(
                approval_id=f"ap-{uuid.uuid4().hex[:24]}", plan_id=plan.plan_id, case_number=plan.case_number,
                court_code=plan.court_code, requested_by=plan.requested_by, state=E.APPROVAL_STATE_WAITING,
                deduct_fen=total, threshold_fen=threshold, requested_at=timestamp(now),
                expires_at=timestamp(now + int(self.policy.approval_expires_s * 1_000_000)),
                freezes_on_reject=self.policy.on_reject,
            ))
            for step in deductions:
                if step.state == E.STEP_STATE_READY:
                    step.state = E.STEP_STATE_WAITING_APPROVAL
            plan.state = E.PLAN_STATE_WAITING_APPROVAL
            frozen = sum(s.done_fen for s in plan.steps if s.kind == E.STEP_KIND_FREEZE)
            plan.triage.CopyFrom(E.Triage(
                triage_class=E.TRIAGE_CLASS_WAITING_APPROVAL, expected_class=plan.triage.expected_class,
                reason=f"deducting {total} fen is above court {plan.court_code}'s threshold of {threshold} fen:"
                       f" waits for an approver (approval {plan.approval.approval_id}); freezes in place",
                frozen_fen=frozen, owed_fen=remaining,
                seized_hold_ids=[s.hold_id for s in plan.steps if s.hold_id and s.state == E.STEP_STATE_SUCCEEDED
                                 and s.kind in (E.STEP_KIND_FREEZE, E.STEP_KIND_SEAL)],
            ))

    async def _triage(self, plan: E.Plan) -> None:
        view = await self._view(plan.case_number)
        holds = {h.hold_id: h for h in view.holds}
        results = []
        for step in plan.steps:
            state, amount = RESULT_STATES.get(step.state, "skipped"), step.done_fen
            if step.kind in (E.STEP_KIND_FREEZE, E.STEP_KIND_SEAL) and step.state == E.STEP_STATE_SUCCEEDED:
                hold = holds.get(step.hold_id)
                if hold is None or hold.state not in (ACTIVE, QUEUED):
                    state = "released"
                if step.kind == E.STEP_KIND_FREEZE:
                    amount = hold.frozen_fen if hold is not None and hold.state == ACTIVE else 0
            results.append(planner.Result(KIND_NAMES[step.kind], state, step.agency_id, amount, step.hold_id,
                                          step.outcome))
        funds = planner.Funds(view.case.amount_owed_fen, view.case.costs_fen, view.totals.deducted_fen,
                              view.totals.frozen_fen)
        holds_anything = any(h.state in (ACTIVE, QUEUED) for h in view.holds)
        note = ""
        approval = plan.approval
        if approval.state in (E.APPROVAL_STATE_REJECTED, E.APPROVAL_STATE_EXPIRED):
            verdict = (f"rejected by {approval.decided_by}: {approval.reason}" if approval.state ==
                       E.APPROVAL_STATE_REJECTED else "not approved in time")
            released = any(s.kind == E.STEP_KIND_RELEASE_FREEZE for s in plan.steps)
            note = (f"deductions {verdict}; freezes {'released' if released else 'kept'};"
                    f" {funds.remaining_fen} fen still owed")
        found = planner.classify(funds, results, list(plan.query.unanswered), holds_anything, note)
        plan.triage.CopyFrom(E.Triage(
            triage_class=TRIAGE[found.triage_class], reason=found.reason, deducted_fen=found.deducted_fen,
            frozen_fen=found.frozen_fen, owed_fen=found.owed_fen, seized_hold_ids=found.seized,
            agency_id=found.agency_id, expected_class=plan.triage.expected_class,
        ))
        plan.state = E.PLAN_STATE_DONE

    # Four eyes

    async def decide(self, request: E.DecideApprovalRequest, principal: Principal, *, approve: bool) -> E.Plan:
        validate_token(request.approval_id, "approval_id", required=True)
        require_text(request.reason, "reason", MAX_REASON_CHARS)
        record = await self.ledger.plans.by_approval(request.approval_id)
        if record is None:
            raise GatewayError(grpc.StatusCode.NOT_FOUND, f"approval_id: no approval {request.approval_id}")
        approval = _parse(record.body).approval
        decision = authz.decide_approval(principal, court_code=approval.court_code,
                                         requested_by=approval.requested_by)
        if not decision.allowed:
            raise GatewayError(decision.code, decision.reason)

        async def work(leased: PlanRecord) -> E.Plan:
            plan = _parse(leased.body)
            if plan.approval.state != E.APPROVAL_STATE_WAITING:
                raise GatewayError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"approval_id: {request.approval_id} is"
                    f" {E.ApprovalState.Name(plan.approval.state).removeprefix('APPROVAL_STATE_')} already"
                    + (f" (by {plan.approval.decided_by})" if plan.approval.decided_by else ""),
                )
            now = self.now_us()
            if timestamp_us(plan.approval.expires_at) <= now:
                return await self._expire(leased)
            plan.approval.state = E.APPROVAL_STATE_APPROVED if approve else E.APPROVAL_STATE_REJECTED
            plan.approval.decided_by, plan.approval.reason = principal.executor_id, request.reason
            plan.approval.decided_at.CopyFrom(timestamp(now))
            if approve:
                for step in plan.steps:
                    if step.state == E.STEP_STATE_WAITING_APPROVAL:
                        step.state = E.STEP_STATE_READY
                plan.state = E.PLAN_STATE_EXECUTING
            else:
                self._close_deductions(plan, f"rejected by {principal.executor_id}: {request.reason}",
                                       self.policy.on_reject)
            logger.info("approval %s of plan %s %s by %s: %s", request.approval_id, plan.plan_id,
                        "approved" if approve else "rejected", principal.executor_id, request.reason)
            return await self._advance(await self._save(leased, plan))

        return await self._run(record.plan_id, work)

    async def _expire(self, record: PlanRecord) -> E.Plan:
        plan = _parse(record.body)
        if plan.approval.state != E.APPROVAL_STATE_WAITING:
            return plan
        plan.approval.state = E.APPROVAL_STATE_EXPIRED
        plan.approval.decided_at.CopyFrom(timestamp(self.now_us()))
        self._close_deductions(plan, "the approval expired undecided", self.policy.on_expiry)
        logger.info("approval %s of plan %s expired; freezes %s", plan.approval.approval_id, plan.plan_id,
                    self.policy.on_expiry)
        return await self._advance(await self._save(record, plan))

    def _close_deductions(self, plan: E.Plan, why: str, freezes: str) -> None:
        """The waiting deductions will not run; the plan's freezes are kept, or released as new steps."""
        for step in plan.steps:
            if step.state == E.STEP_STATE_WAITING_APPROVAL:
                step.state, step.outcome = E.STEP_STATE_SKIPPED, why
        if freezes == "release":
            for source in list(plan.steps):
                if source.kind == E.STEP_KIND_FREEZE and source.state == E.STEP_STATE_SUCCEEDED and source.hold_id:
                    plan.steps.add(
                        step=len(plan.steps) + 1, kind=E.STEP_KIND_RELEASE_FREEZE, agency_id=source.agency_id,
                        subject=source.subject, target=source.target, amount_fen=source.done_fen,
                        hold_id=source.hold_id, from_step=source.step, state=E.STEP_STATE_READY,
                        reason=f"{why}; policy: release the plan's freezes",
                    )
        plan.state = E.PLAN_STATE_EXECUTING

    # Resuming what a crash, an outage or the clock left

    async def _resume_loop(self) -> None:
        while True:
            try:
                await self.resume_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("plan resumer: sweep failed; trying again in %.1f s",
                               self.settings.redrive_interval_seconds, exc_info=True)
            await asyncio.sleep(self.settings.redrive_interval_seconds)

    async def resume_once(self) -> int:
        """Resume every executing plan no one holds, expire due approvals, refresh the gauges; returns how many."""
        now = self.now_us()
        due = [r for r in await self.ledger.plans.due(now, RESUME_BATCH) if r.plan_id not in self._running]
        expired = [r for r in await self.ledger.plans.expired_approvals(now, RESUME_BATCH)
                   if r.plan_id not in self._running]
        for record in due:
            logger.info("resuming plan %s of case %s", record.plan_id, record.case_number)
        runs = [self._run(r.plan_id, self._advance) for r in due]
        runs += [self._run(r.plan_id, self._expire) for r in expired]
        for result in await asyncio.gather(*runs, return_exceptions=True):
            if isinstance(result, BaseException) and not isinstance(result, GatewayError):
                logger.warning("plan resumer: a plan failed: %r", result)
        waiting, oldest_us, triaged, settled = await self.ledger.plans.stats()
        metrics.set_stats(waiting, max(0.0, (now - oldest_us) / 1e6) if oldest_us else 0.0, triaged, settled)
        return len(runs)


def _case_number(value: str) -> str:
    case_number = normal_case_number(value)
    check_identifier(identifiers.check_case_number, case_number, "case_number")
    return case_number


def _case_ref(plan: E.Plan) -> common_pb2.CaseRef:
    return common_pb2.CaseRef(case_number=plan.case_number, court_code=plan.court_code,
                              executor_id=plan.requested_by, document_number=plan.document_number)


def _holdings(view: CaseView, now: int):
    """What the case owes and holds: funds, its deductible freezes, and the accounts and assets it holds already."""
    funds = planner.Funds(view.case.amount_owed_fen, view.case.costs_fen, view.totals.deducted_fen,
                          view.totals.frozen_fen)
    live = [h for h in view.holds if h.state in (ACTIVE, QUEUED) and not (h.expires_at_us and h.expires_at_us <= now)]
    held = [planner.HeldFreeze(h.hold_id, h.agency_id, h.subject_id, h.asset_id, h.frozen_fen)
            for h in live if h.hold_kind == "freeze" and h.state == ACTIVE and h.frozen_fen > 0]
    pending = [a for a in view.actions if a.state == PENDING and a.kind in (FREEZE, SEAL)]
    frozen = {(h.agency_id, h.asset_id) for h in live if h.hold_kind == "freeze"}
    frozen |= {(a.agency_id, a.asset_id) for a in pending if a.kind == FREEZE}
    sealed = {(h.agency_id, h.asset_id) for h in live if h.hold_kind == "seal"}
    sealed |= {(a.agency_id, a.asset_id) for a in pending if a.kind == SEAL}
    return funds, held, frozenset(frozen), frozenset(sealed)


def _copy(step: E.PlanStep) -> E.PlanStep:
    copy = E.PlanStep()
    copy.CopyFrom(step)
    return copy


def _same_target(a: E.PlanStep, b: E.PlanStep) -> bool:
    return (a.kind, a.agency_id, a.target, a.hold_id, a.from_step) == (b.kind, b.agency_id, b.target, b.hold_id,
                                                                        b.from_step)


def _diff(before, after) -> list[E.PlanChange]:
    """What the fresh plan does differently from the dry run's."""
    changes = []
    for step in after:
        match = next((b for b in before if _same_target(b, step)), None)
        what = f"{KIND_NAMES[step.kind].replace('_', ' ')} {step.agency_id} {step.target}"
        if match is None:
            changes.append(E.PlanChange(step=step.step, amount_fen=step.amount_fen,
                                        description=f"{what}: new since the dry run ({step.reason})"))
        elif match.amount_fen != step.amount_fen:
            changes.append(E.PlanChange(step=step.step, planned_fen=match.amount_fen, amount_fen=step.amount_fen,
                                        description=f"{what}: {step.amount_fen} fen instead of {match.amount_fen}"
                                                    f" ({step.reason})"))
    for step in before:
        if not any(_same_target(step, s) for s in after):
            changes.append(E.PlanChange(step=0, planned_fen=step.amount_fen,
                                        description=f"{KIND_NAMES[step.kind].replace('_', ' ')} {step.agency_id}"
                                                    f" {step.target}: dropped (no longer available or needed)"))
    return changes
