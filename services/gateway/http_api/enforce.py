"""The HTTP/JSON face of enforcement plans (查冻扣) and their approvals.

    POST /v1/cases/{case_number}/enforce                   {"dry_run"?, "plan_id"?, "document_number"?} -> Plan
    GET  /v1/cases/{case_number}/plans/{plan_id}                                                        -> Plan
    POST /v1/cases/{case_number}/plans/{plan_id}/execute                                                -> Plan
    GET  /v1/approvals                                     (approver role)            -> ListApprovalsResponse
    POST /v1/approvals/{approval_id}/approve               {"reason"} (approver role)                   -> Plan
    POST /v1/approvals/{approval_id}/reject                {"reason"} (approver role)                   -> Plan
    POST /v1/batches/{batch_id}/enforce                    {"dry_run"?}                  -> 202 BatchEnforcement
    GET  /v1/batches/{batch_id}/enforcement                                                 -> BatchEnforcement

Plans are the Plan message of protos/gateway/v1/enforce.proto as proto3 JSON
(every field printed, int64 as strings, enums by name). 200: the plan as it
stands (a dry run, done, or waiting for approval); 202: executing, a step
waits for an agency's answer (the gateway goes on by itself; GET it later).
"""

from aiohttp import web

from protos.gateway.v1 import enforce_pb2
from services.common.validation import FieldError
from services.gateway.access.door import Admitted
from services.gateway.enforce import operations
from services.gateway.errors import GatewayError, http_status
from services.gateway.http_api.json_io import check_media_type, dumps, parse_json_message
from services.gateway.http_api.jsonmap import message_to_dict
from services.gateway.http_api.routes import CORE, Answer, Route


def _with_path(message_type, *names: str):
    """The JSON body as `message_type`, the path's parameters filling the fields of the same names."""

    def parse(request: web.Request, body: bytes):
        check_media_type(request.content_type if "Content-Type" in request.headers else "")
        message = parse_json_message(body, message_type)
        _fill(request, message, names)
        return message

    return parse


def _path_only(message_type, *names: str):
    def parse(request: web.Request, body: bytes):
        message = message_type()
        _fill(request, message, names)
        return message

    return parse


def _fill(request: web.Request, message, names) -> None:
    for name in names:
        value = request.match_info[name]
        if getattr(message, name) and getattr(message, name) != value:
            raise FieldError(name, f"the body names {getattr(message, name)} but the path {value}")
        setattr(message, name, value)


def _plan_response(plan: enforce_pb2.Plan) -> web.Response:
    status = 202 if plan.state == enforce_pb2.PLAN_STATE_EXECUTING else 200
    return web.json_response(message_to_dict(plan), status=status, dumps=dumps)


async def post_enforce(request: web.Request, admitted: Admitted) -> web.Response:
    return _plan_response(await request.app[CORE].enforce.enforce(admitted.request(), admitted.principal))


async def get_plan(request: web.Request, admitted: Admitted) -> web.Response:
    message = admitted.request()
    return _plan_response(await request.app[CORE].enforce.get_plan(message.case_number, message.plan_id))


async def post_execute(request: web.Request, admitted: Admitted) -> web.Response:
    message = admitted.request()
    return _plan_response(await request.app[CORE].enforce.execute(message.case_number, message.plan_id))


async def get_approvals(request: web.Request, admitted: Admitted) -> web.Response:
    approvals = await request.app[CORE].enforce.list_approvals(admitted.principal, include_decided=False)
    return web.json_response(message_to_dict(approvals), dumps=dumps)


async def post_batch_enforce(request: web.Request, admitted: Admitted) -> web.Response:
    shown = await request.app[CORE].batch_plans.start(admitted.principal, admitted.request())
    return web.json_response(message_to_dict(shown), status=202, dumps=dumps)


async def get_batch_enforcement(request: web.Request, admitted: Admitted) -> web.Response:
    shown = await request.app[CORE].batch_plans.view(admitted.principal, admitted.request().batch_id)
    return web.json_response(message_to_dict(shown), dumps=dumps)


def _decide(approve: bool):
    async def handle(request: web.Request, admitted: Admitted) -> web.Response:
        message = admitted.request()
        verb = "approve" if approve else "reject"
        try:
            plan = await request.app[CORE].enforce.decide(message, admitted.principal, approve=approve)
        except GatewayError as refused:
            # What the audit record of the answer says: a self-approval is refused here, not at the door.
            admitted.result = (f"HTTP {http_status(refused.code)}: {verb} {message.approval_id} refused:"
                               f" {refused.message}")
            raise
        admitted.result = f"HTTP 200: {verb}d {message.approval_id} of plan {plan.plan_id}: {message.reason}"
        return _plan_response(plan)

    return handle


PLAN_ANSWERS = (
    Answer(200, "The plan as it stands: a dry run (nothing acted on), done (see triage), or waiting for approval.",
           enforce_pb2.Plan),
    Answer(202, "Executing: a step waits for its agency's answer; the gateway goes on by itself (GET the plan).",
           enforce_pb2.Plan),
    Answer(404, "The case is not registered, or it has no such plan."),
    Answer(409, "FAILED_PRECONDITION: another plan of the case is in progress, or the court has no court account;"
                " ALREADY_EXISTS: plan_id is another case's plan."),
)
DECISION_ANSWERS = (
    Answer(200, "Decided; the plan as it stands after its deductions ran (approved) or were dropped (rejected).",
           enforce_pb2.Plan),
    Answer(202, "Approved; a deduction waits for its bank's answer.", enforce_pb2.Plan),
    Answer(403, "Not an approver, another court's approval, or the caller's own plan (four eyes)."),
    Answer(404, "No such approval."),
    Answer(409, "FAILED_PRECONDITION: decided already, or expired."),
)


def enforce_routes() -> list[Route]:
    case_plan = ("case_number", "plan_id")
    return [
        Route("POST", "/v1/cases/{case_number}/enforce", operations.ENFORCE, post_enforce, "enforceCase",
              "One-click 查冻扣: plan (dry_run) or plan and execute the case's freezes, deductions and seals from a"
              " fresh query of all its debtors.",
              PLAN_ANSWERS, parse=_with_path(enforce_pb2.EnforceRequest, "case_number"),
              body_schema="EnforceRequest"),
        Route("GET", "/v1/cases/{case_number}/plans/{plan_id}", operations.GET_PLAN, get_plan, "getPlan",
              "A plan of the case: its steps, what changed and its triage.", PLAN_ANSWERS,
              parse=_path_only(enforce_pb2.GetPlanRequest, *case_plan)),
        Route("POST", "/v1/cases/{case_number}/plans/{plan_id}/execute", operations.EXECUTE_PLAN, post_execute,
              "executePlan",
              "Execute a plan (a dry run's, or one stopped part way): re-checks balances, never acts twice.",
              PLAN_ANSWERS, parse=_path_only(enforce_pb2.GetPlanRequest, *case_plan)),
        Route("GET", "/v1/approvals", operations.LIST_APPROVALS, get_approvals, "listApprovals",
              "The approvals waiting in your court, oldest first (approver role).",
              (Answer(200, "The approvals waiting.", enforce_pb2.ListApprovalsResponse),),
              parse=lambda request, body: enforce_pb2.ListApprovalsRequest()),
        Route("POST", "/v1/approvals/{approval_id}/approve", operations.APPROVE, _decide(True), "approve",
              "Approve a plan's deductions, with a reason (approver role; never your own plan).", DECISION_ANSWERS,
              parse=_with_path(enforce_pb2.DecideApprovalRequest, "approval_id"), body_schema="DecideApprovalRequest"),
        Route("POST", "/v1/approvals/{approval_id}/reject", operations.REJECT, _decide(False), "reject",
              "Reject a plan's deductions, with a reason; its freezes are kept or released by the court's policy.",
              DECISION_ANSWERS, parse=_with_path(enforce_pb2.DecideApprovalRequest, "approval_id"),
              body_schema="DecideApprovalRequest"),
        Route("POST", "/v1/batches/{batch_id}/enforce", operations.ENFORCE_BATCH, post_batch_enforce, "enforceBatch",
              "Plan (dry_run) or execute every case the batch's rows name, in the background; the same plans each"
              " time, so a dry run then an execution executes what the dry run planned.",
              (Answer(202, "Started (or going on): the cases and their plans as they stand.",
                      enforce_pb2.BatchEnforcement),
               Answer(403, "A case the caller may not enforce (each named and audited), or another's batch."),
               Answer(404, "No such batch.")),
              parse=_with_path(enforce_pb2.EnforceBatchRequest, "batch_id"), body_schema="EnforceBatchRequest"),
        Route("GET", "/v1/batches/{batch_id}/enforcement", operations.GET_BATCH_ENFORCEMENT, get_batch_enforcement,
              "getBatchEnforcement", "Each case of the batch with its plan and triage, and the totals.",
              (Answer(200, "The batch's cases and plans.", enforce_pb2.BatchEnforcement),
               Answer(403, "Another's batch."), Answer(404, "No such batch.")),
              parse=_path_only(enforce_pb2.GetBatchEnforcementRequest, "batch_id")),
    ]
