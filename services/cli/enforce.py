"""`chakong enforce` and `chakong approvals`: one-click 查冻扣 plans and their four-eyes approvals.

    chakong enforce --case '(2026)皖01执1024号' --dry-run     # the plan, every step, amount and reason
    chakong enforce --case '(2026)皖01执1024号' --plan pl-…   # execute that plan (re-checked first)
    chakong enforce --case '(2026)皖01执1024号'               # plan and execute at once
    chakong enforce --batch b-… --dry-run                    # every case of a batch, then without --dry-run
    chakong approvals list
    chakong approvals approve ap-… --reason '核实无误'         # as a second officer (approver role)
    chakong approvals reject ap-… --reason '文书不全'

Exit status: 0 answered (a dry run, a plan done or waiting for approval),
2 refused, 3 executing (a step waits for an agency; the gateway goes on:
run it again with --plan, or `chakong case show`).
"""

import argparse
import asyncio

from protos.gateway.v1 import enforce_pb2, enforce_pb2_grpc
from services.cli.auth import COURT_HELP, EXECUTOR_HELP, channel_for
from services.cli.render import table, to_json, yuan

E = enforce_pb2
TIMEOUT_S = 120
EXIT_EXECUTING = 3
DEMO_APPROVER = "AP0001"
TRIAGE_LABELS = {
    E.TRIAGE_CLASS_SETTLED: "已结清 SETTLED: paid in full by deduction",
    E.TRIAGE_CLASS_PARTIAL: "部分执行 PARTIAL: something paid or held, the rest still owed",
    E.TRIAGE_CLASS_NO_ASSETS: "无财产 NO_ASSETS: nothing found; a candidate for the ordinary procedure",
    E.TRIAGE_CLASS_WAITING_APPROVAL: "待审批 WAITING_APPROVAL: the deductions wait for an approver",
    E.TRIAGE_CLASS_FAILED: "失败 FAILED: an agency refused or did not answer",
}


def _name(enum, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix)


def plan_report(plan: E.Plan) -> str:
    state = _name(E.PlanState, plan.state, "PLAN_STATE_")
    lines = [f"Plan {plan.plan_id} for case {plan.case_number}: {state}"
             + (" (dry run: nothing acted on)" if plan.state == E.PLAN_STATE_DRAFT else "")]
    q = plan.query
    lines.append(f"Query: {q.agencies_ok} of {q.agencies_asked} agency answers; {q.accounts} account(s) with"
                 f" {yuan(q.available_fen)} available, {q.vehicles} vehicle(s), {q.properties} propert(ies)")
    for missing in q.unanswered:
        lines.append(f"  not answered: {missing}")
    lines.append("Freezing order: " + ", then ".join(plan.order))
    rows = [
        [str(s.step), _name(E.StepKind, s.kind, "STEP_KIND_").lower().replace("_", " "), s.agency_id, s.target,
         yuan(s.amount_fen) if s.amount_fen else "", _name(E.StepState, s.state, "STEP_STATE_"),
         s.outcome or s.reason]
        for s in plan.steps
    ]
    if rows:
        lines.append(table(["#", "Step 步骤", "Agency", "Account/asset", "Amount", "State", "Why / outcome"], rows))
    else:
        lines.append("No steps: nothing to freeze, deduct or seal.")
    if plan.changes:
        lines.append("Changed since the dry run:")
        lines += [f"  step {c.step}: {c.description}" if c.step else f"  {c.description}" for c in plan.changes]
    triage = plan.triage
    if triage.triage_class:
        lines.append(f"Triage 分流: {TRIAGE_LABELS[triage.triage_class]}")
        lines.append(f"  {triage.reason}")
        lines.append(f"  deducted {yuan(triage.deducted_fen)}, frozen {yuan(triage.frozen_fen)},"
                     f" still owed {yuan(triage.owed_fen)}")
    else:
        lines.append(f"Expected 预计: {TRIAGE_LABELS.get(triage.expected_class, 'unknown')}")
        lines.append(f"  {triage.reason}")
    approval = plan.approval
    if approval.approval_id:
        lines.append(approval_line(approval))
        if approval.state == E.APPROVAL_STATE_WAITING:
            lines.append(f"  a second officer approves: chakong approvals approve {approval.approval_id}"
                         f" --reason '核实无误' --executor {DEMO_APPROVER}")
    if plan.state == E.PLAN_STATE_DRAFT:
        lines.append(f"Execute it: chakong enforce --case '{plan.case_number}' --plan {plan.plan_id}")
    return "\n".join(lines)


def plan_summary(plan: E.Plan) -> str:
    """One line per plan, for `chakong case show`."""
    triage = plan.triage
    verdict = (TRIAGE_LABELS[triage.triage_class].split(":")[0] if triage.triage_class
               else "expected " + TRIAGE_LABELS.get(triage.expected_class, "?").split(":")[0])
    return (f"  {plan.plan_id}  {_name(E.PlanState, plan.state, 'PLAN_STATE_')}  {verdict}  {len(plan.steps)} step(s),"
            f" deducted {yuan(triage.deducted_fen)}, frozen {yuan(triage.frozen_fen)}: {triage.reason}")


def approval_line(approval: E.Approval) -> str:
    state = _name(E.ApprovalState, approval.state, "APPROVAL_STATE_")
    text = (f"Approval 审批 {approval.approval_id} ({approval.case_number}, plan {approval.plan_id}): {state};"
            f" deducts {yuan(approval.deduct_fen)}, above the threshold of {yuan(approval.threshold_fen)};"
            f" asked by {approval.requested_by}")
    if approval.decided_by:
        text += f"; decided by {approval.decided_by}: {approval.reason}"
    elif approval.state == E.APPROVAL_STATE_WAITING:
        text += f"; expires {approval.expires_at.ToJsonString()}, then freezes {approval.freezes_on_reject}"
    return text


def batch_report(shown: E.BatchEnforcement) -> str:
    rows = [[str(p.line), p.case_number, p.plan_id, _name(E.PlanState, p.state, "PLAN_STATE_") if p.state else "-",
             TRIAGE_LABELS[p.triage_class].split(":")[0] if p.triage_class else
             ("expected " + TRIAGE_LABELS[p.expected_class].split(":")[0] if p.expected_class else ""),
             yuan(p.deducted_fen), yuan(p.frozen_fen)] for p in shown.plans]
    lines = [table(["Line", "Case 案号", "Plan", "State", "Triage 分流", "Deducted", "Frozen"], rows)] if rows else []
    lines.append(f"Batch {shown.batch_id}: {shown.cases} case(s), {shown.planned} planned, {shown.executed} executed;"
                 f" settled {shown.settled}, partial {shown.partial}, no assets {shown.no_assets}, waiting for"
                 f" approval {shown.waiting_approval}, failed {shown.failed}; deducted {yuan(shown.deducted_fen)},"
                 f" frozen {yuan(shown.frozen_fen)}")
    return "\n".join(lines)


async def run_batch(args: argparse.Namespace, stub) -> int:
    shown = await stub.EnforceBatch(E.EnforceBatchRequest(batch_id=args.batch, dry_run=args.dry_run),
                                    timeout=TIMEOUT_S)
    while shown.running:
        await asyncio.sleep(1.0)
        shown = await stub.GetBatchEnforcement(E.GetBatchEnforcementRequest(batch_id=args.batch), timeout=TIMEOUT_S)
    print(to_json(shown) if args.json else batch_report(shown))
    return 0


async def run_enforce(args: argparse.Namespace) -> int:
    async with channel_for(args) as channel:
        stub = enforce_pb2_grpc.EnforcementPlansStub(channel)
        if args.batch:
            return await run_batch(args, stub)
        # An existing plan ID is that plan (executed unless --dry-run); a new one names the new plan.
        plan = await stub.Enforce(E.EnforceRequest(case_number=args.case.strip(), dry_run=args.dry_run,
                                                   plan_id=args.plan, document_number=args.document),
                                  timeout=TIMEOUT_S)
    print(to_json(plan) if args.json else plan_report(plan))
    return EXIT_EXECUTING if plan.state == E.PLAN_STATE_EXECUTING else 0


async def run_approvals(args: argparse.Namespace) -> int:
    async with channel_for(args, ("approver",)) as channel:
        stub = enforce_pb2_grpc.EnforcementPlansStub(channel)
        if args.approvals_command == "list":
            listed = await stub.ListApprovals(E.ListApprovalsRequest(all=args.all), timeout=TIMEOUT_S)
            if args.json:
                print(to_json(listed))
            elif not listed.approvals:
                print("No approvals wait in this court." if not args.all else "No approvals in this court.")
            else:
                print("\n".join(approval_line(a) for a in listed.approvals))
            return 0
        decide = stub.Approve if args.approvals_command == "approve" else stub.Reject
        plan = await decide(E.DecideApprovalRequest(approval_id=args.approval_id, reason=args.reason),
                            timeout=TIMEOUT_S)
    print(to_json(plan) if args.json else plan_report(plan))
    return EXIT_EXECUTING if plan.state == E.PLAN_STATE_EXECUTING else 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    enforce = commands.add_parser("enforce", help="one-click 查冻扣: plan (--dry-run) and execute a case's"
                                                  " freezes, deductions and seals")
    which = enforce.add_mutually_exclusive_group(required=True)
    which.add_argument("--case", help="case number 案号, e.g. '(2026)皖01执1024号'")
    which.add_argument("--batch", help="every case of this batch (`chakong batch submit`), waiting until done")
    enforce.add_argument("--dry-run", action="store_true", help="show the plan, act on nothing")
    enforce.add_argument("--plan", default="", help="a plan's ID: execute it (with --dry-run: show it); or the ID"
                                                    " to give a new plan, to retry safely")
    enforce.add_argument("--document", default="", help="legal document the agencies are shown (default: the case's)")
    enforce.add_argument("--court", default=None, help=COURT_HELP)
    enforce.add_argument("--executor", default=None, help=EXECUTOR_HELP)
    enforce.add_argument("--json", action="store_true", help="print the plan as JSON")
    enforce.set_defaults(run=run_enforce)

    approvals = commands.add_parser("approvals", help="four eyes: list, approve or reject plans' deductions"
                                                      " (approver role)")
    sub = approvals.add_subparsers(dest="approvals_command", required=True)
    for name, text in (("list", "the approvals waiting in your court"), ("approve", "approve a plan's deductions"),
                       ("reject", "reject a plan's deductions")):
        parser = sub.add_parser(name, help=text)
        if name == "list":
            parser.add_argument("--all", action="store_true", help="also the decided and expired ones")
        else:
            parser.add_argument("approval_id", help="the approval (ap-...)")
            parser.add_argument("--reason", required=True, help="why; recorded in the plan and the audit trail")
        parser.add_argument("--court", default=None, help=COURT_HELP)
        parser.add_argument("--executor", default=DEMO_APPROVER,
                            help=f"the approving officer, for a development token (default {DEMO_APPROVER}; never"
                                 " the one who asked for the plan)")
        parser.add_argument("--json", action="store_true")
        parser.set_defaults(run=run_approvals)
