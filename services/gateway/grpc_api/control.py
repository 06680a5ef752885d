"""The EnforcementControl gRPC service: the same control actions as the HTTP API, one method per declared kind.

An action the agency refused is an error with the agency's code and
message, and the recorded Action packed in the status details (read it back
with grpc_status.rpc_status.from_call). An action still PENDING is returned
normally, state PENDING: call again with the same idempotency_key.
"""

import grpc

from protos.gateway.v1 import control_pb2, control_pb2_grpc
from services.gateway.control.kinds import KINDS, ActionKind
from services.gateway.control.messages import action_message
from services.gateway.control.service import ControlService
from services.gateway.grpc_api.status import answer_errors

SERVICE_NAME = control_pb2.DESCRIPTOR.services_by_name["EnforcementControl"].full_name


def _action_method(kind: ActionKind):
    async def method(self, request, context: grpc.aio.ServicerContext) -> control_pb2.Action:
        submitted = await answer_errors(context, self._control.submit(kind.kind, request))
        context.set_trailing_metadata((("idempotency-key", submitted.action.idempotency_key),))
        return action_message(submitted.action)

    method.__name__ = kind.grpc_method
    return method


class EnforcementControlServicer(control_pb2_grpc.EnforcementControlServicer):
    def __init__(self, control: ControlService):
        self._control = control

    async def RegisterCase(self, request, context):
        case, _ = await answer_errors(context, self._control.register_case(request))
        return case

    async def GetCase(self, request, context):
        return await answer_errors(context, self._control.get_case(request.case_number))


# One method per action kind, named as KINDS declares.
for _kind in KINDS.values():
    setattr(EnforcementControlServicer, _kind.grpc_method, _action_method(_kind))
