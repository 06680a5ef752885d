"""The EnforcementControl gRPC service: the same control actions as the HTTP API.

An action the agency refused is an error with the agency's code and
message, and the recorded Action packed in the status details (read it back
with grpc_status.rpc_status.from_call). An action still PENDING is returned
normally, state PENDING: call again with the same idempotency_key.
"""

import grpc
from google.protobuf import any_pb2
from google.rpc import status_pb2
from grpc_status import rpc_status

from protos.gateway.v1 import control_pb2, control_pb2_grpc
from services.common.validation import FieldError
from services.gateway import control as ctl
from services.gateway.control import ControlError, ControlService, action_message
from services.gateway.grpc_api import invalid_argument_status
from services.gateway.ledger import LedgerUnavailable

SERVICE_NAME = control_pb2.DESCRIPTOR.services_by_name["EnforcementControl"].full_name


def refusal_status(error: ControlError) -> grpc.Status:
    details = []
    if error.action is not None:
        detail = any_pb2.Any()
        detail.Pack(action_message(error.action))
        details.append(detail)
    return rpc_status.to_status(
        status_pb2.Status(code=error.code.value[0], message=error.message, details=details)
    )


class EnforcementControlServicer(control_pb2_grpc.EnforcementControlServicer):
    def __init__(self, control: ControlService):
        self._control = control

    async def _guard(self, context: grpc.aio.ServicerContext, call):
        try:
            return await call
        except FieldError as error:
            await context.abort_with_status(invalid_argument_status(error))
        except ControlError as error:
            await context.abort_with_status(refusal_status(error))
        except LedgerUnavailable:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, "the gateway's ledger is unavailable; retry with the same key"
            )

    async def _action(self, kind: int, request, context: grpc.aio.ServicerContext) -> control_pb2.Action:
        submitted = await self._guard(context, self._control.submit(kind, request))
        context.set_trailing_metadata((("idempotency-key", submitted.action.idempotency_key),))
        return action_message(submitted.action)

    async def RegisterCase(self, request, context):
        case, _ = await self._guard(context, self._control.register_case(request))
        return case

    async def GetCase(self, request, context):
        return await self._guard(context, self._control.get_case(request.case_number))

    async def Freeze(self, request, context):
        return await self._action(ctl.FREEZE, request, context)

    async def RenewFreeze(self, request, context):
        return await self._action(ctl.RENEW_FREEZE, request, context)

    async def ReleaseFreeze(self, request, context):
        return await self._action(ctl.RELEASE_FREEZE, request, context)

    async def Deduct(self, request, context):
        return await self._action(ctl.DEDUCT, request, context)

    async def Seal(self, request, context):
        return await self._action(ctl.SEAL, request, context)

    async def RenewSeal(self, request, context):
        return await self._action(ctl.RENEW_SEAL, request, context)

    async def ReleaseSeal(self, request, context):
        return await self._action(ctl.RELEASE_SEAL, request, context)

    async def Transfer(self, request, context):
        return await self._action(ctl.TRANSFER, request, context)
