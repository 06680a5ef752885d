"""Errors as gRPC statuses: INVALID_ARGUMENT with a BadRequest naming the field, and GatewayError with its code.

A refusal by an agency carries the recorded Action in its status details
(read it back with grpc_status.rpc_status.from_call).
"""

import logging

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.common.validation import FieldError
from services.gateway.control.messages import action_message
from services.gateway.errors import GatewayError, ledger_unavailable
from services.gateway.ledger import LedgerUnavailable

logger = logging.getLogger(__name__)


def invalid_argument_status(error: FieldError) -> grpc.Status:
    """INVALID_ARGUMENT with a google.rpc.BadRequest naming the field, for rpc_status.from_call."""
    violation = error_details_pb2.BadRequest(
        field_violations=[error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.rule)]
    )
    detail = any_pb2.Any()
    detail.Pack(violation)
    return rpc_status.to_status(
        status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=str(error), details=[detail])
    )


def error_status(error: GatewayError) -> grpc.Status:
    details = []
    if error.action is not None:
        detail = any_pb2.Any()
        detail.Pack(action_message(error.action))
        details.append(detail)
    return rpc_status.to_status(status_pb2.Status(code=error.code.value[0], message=error.message, details=details))


async def answer_errors(context: grpc.aio.ServicerContext, call):
    """Await `call`; abort the RPC with the status of whatever the core refused it with."""
    try:
        return await call
    except FieldError as error:
        await context.abort_with_status(invalid_argument_status(error))
    except GatewayError as error:
        await abort(context, error)
    except LedgerUnavailable as exc:
        logger.error("ledger unavailable: %s", exc)
        await abort(context, ledger_unavailable())


async def abort(context: grpc.aio.ServicerContext, error: GatewayError) -> None:
    """End the RPC with the error's status, its details (the refused Action) and retry-after when waiting helps."""
    status = error_status(error)
    retry_after = (("retry-after", error.retry_after),) if error.retry_after else ()
    await context.abort(status.code, status.details, (*status.trailing_metadata, *retry_after))
