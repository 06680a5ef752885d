"""The enforcement plans' operations as the door sees them: building, reading and executing a case's plan
(authorized and audited against the case), and listing and deciding approvals (the approver role)."""

from protos.gateway.v1 import enforce_pb2
from services.common import identifiers
from services.common.identifiers import normal_case_number
from services.common.validation import MAX_DOCUMENT_NUMBER_CHARS, check_identifier, require_text, validate_token
from services.gateway.access import authz
from services.gateway.access.door import Call, Operation
from services.security.ratelimit import CONTROL


def _case(action: str):
    def describe(request) -> Call:
        case_number = normal_case_number(request.case_number)
        check_identifier(identifiers.check_case_number, case_number, "case_number")
        validate_token(request.plan_id, "plan_id", required=action != authz.ENFORCE)
        document = getattr(request, "document_number", "")
        if document:
            require_text(document, "document_number", MAX_DOCUMENT_NUMBER_CHARS)
        return Call(action, case_number=case_number, document_number=document, request_id=request.plan_id)

    return describe


def _approval(action: str):
    def describe(request) -> Call:
        validate_token(request.approval_id, "approval_id", required=True)
        return Call(action, request_id=request.approval_id)

    return describe


def _batch(action: str):
    def describe(request) -> Call:
        validate_token(request.batch_id, "batch_id", required=True)
        return Call(action, request_id=request.batch_id)

    return describe


# A plan reaches agencies and moves money: the control limits.
ENFORCE = Operation(authz.ENFORCE, enforce_pb2.EnforceRequest, _case(authz.ENFORCE), rate_limit=CONTROL)
EXECUTE_PLAN = Operation(authz.EXECUTE_PLAN, enforce_pb2.GetPlanRequest, _case(authz.EXECUTE_PLAN),
                         rate_limit=CONTROL)
GET_PLAN = Operation(authz.GET_PLAN, enforce_pb2.GetPlanRequest, _case(authz.GET_PLAN))
LIST_APPROVALS = Operation(authz.LIST_APPROVALS, enforce_pb2.ListApprovalsRequest,
                           lambda request: Call(authz.LIST_APPROVALS))
APPROVE = Operation(authz.APPROVE, enforce_pb2.DecideApprovalRequest, _approval(authz.APPROVE), rate_limit=CONTROL)
REJECT = Operation(authz.REJECT, enforce_pb2.DecideApprovalRequest, _approval(authz.REJECT), rate_limit=CONTROL)

ENFORCE_BATCH = Operation(authz.ENFORCE_BATCH, enforce_pb2.EnforceBatchRequest, _batch(authz.ENFORCE_BATCH),
                          rate_limit=CONTROL)
GET_BATCH_ENFORCEMENT = Operation(authz.READ_BATCH, enforce_pb2.GetBatchEnforcementRequest, _batch(authz.READ_BATCH))

# EnforcementPlans method name -> operation.
BY_GRPC_METHOD: dict[str, Operation] = {
    "Enforce": ENFORCE,
    "GetPlan": GET_PLAN,
    "ExecutePlan": EXECUTE_PLAN,
    "ListApprovals": LIST_APPROVALS,
    "Approve": APPROVE,
    "Reject": REJECT,
    "EnforceBatch": ENFORCE_BATCH,
    "GetBatchEnforcement": GET_BATCH_ENFORCEMENT,
}
