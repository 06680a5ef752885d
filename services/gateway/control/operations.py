"""The control API's operations as the door sees them: registering and reading cases, and one per action kind."""

from protos.gateway.v1 import control_pb2
from services.common import identifiers
from services.common.identifiers import normal_case_number
from services.common.validation import check_identifier
from services.gateway.access import authz
from services.gateway.access.door import Call, Operation, case_call
from services.gateway.control.kinds import KINDS


def _describe_register(request: control_pb2.RegisterCaseRequest) -> Call:
    return case_call(authz.REGISTER_CASE, request.case)


def _describe_get_case(request: control_pb2.GetCaseRequest) -> Call:
    case_number = normal_case_number(request.case_number)
    check_identifier(identifiers.check_case_number, case_number, "case_number")
    return Call(authz.GET_CASE, case_number=case_number)


REGISTER_CASE = Operation(authz.REGISTER_CASE, control_pb2.RegisterCaseRequest, _describe_register)
GET_CASE = Operation(authz.GET_CASE, control_pb2.GetCaseRequest, _describe_get_case)

# EnforcementControl method name -> operation.
BY_GRPC_METHOD: dict[str, Operation] = {
    "RegisterCase": REGISTER_CASE,
    "GetCase": GET_CASE,
    **{kind.grpc_method: kind.operation for kind in KINDS.values()},
}
