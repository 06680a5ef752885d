"""The door for gRPC: Door.admit before every gateway RPC, as an interceptor.

Exempt: gRPC health and reflection. The operation of each method comes from
its declaration (query/operations.py, control/operations.py); a gateway
method without one needs the admin role.
"""

import contextvars
from collections.abc import Callable

import grpc
from google.protobuf.message import Message

from protos.gateway.v1 import admin_pb2, batch_pb2, control_pb2, gateway_pb2
from services.common.interceptors import drain_server_stream
from services.common.validation import FieldError
from services.gateway.access.door import ADMINISTER, Admitted, Door, Operation
from services.gateway.admin import operations as admin_operations
from services.gateway.batch import operations as batch_operations
from services.gateway.control import operations as control_operations
from services.gateway.errors import GatewayError
from services.gateway.grpc_api.status import abort
from services.gateway.query import operations as query_operations
from services.security.tokens import token_from_metadata

EXEMPT_GRPC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def _policies() -> dict[str, Operation]:
    services = (
        (gateway_pb2.DESCRIPTOR.services_by_name["AssetGateway"], query_operations.BY_GRPC_METHOD),
        (control_pb2.DESCRIPTOR.services_by_name["EnforcementControl"], control_operations.BY_GRPC_METHOD),
        (admin_pb2.DESCRIPTOR.services_by_name["AgencyAdmin"], admin_operations.BY_GRPC_METHOD),
        (batch_pb2.DESCRIPTOR.services_by_name["BatchQueries"], batch_operations.BY_GRPC_METHOD),
    )
    return {
        f"/{service.full_name}/{method}": operation
        for service, operations in services
        for method, operation in operations.items()
    }


POLICIES = _policies()
# The request the door let in, for a servicer that needs to know who asked (the batches):
# the interceptor's wrapper and the handler run in the RPC's one task.
ADMITTED: contextvars.ContextVar[Admitted] = contextvars.ContextVar("admitted")


class Undecodable:
    """Request bytes that do not parse as the method's message.

    grpc would answer UNKNOWN for a deserializer error; the door answers
    INVALID_ARGUMENT (and audits it) instead.
    """

    __slots__ = ("error",)

    def __init__(self, error: Exception):
        self.error = error


def _tolerant(deserialize: Callable[[bytes], Message] | None):
    if deserialize is None:
        return None

    def parse(data: bytes):
        try:
            return deserialize(data)
        except Exception as exc:  # protobuf's DecodeError and its relatives
            return Undecodable(exc)

    return parse


def _decoded(request) -> Message:
    if isinstance(request, Undecodable):
        raise FieldError("request", "not a valid protobuf message for this method")
    return request


class DoorInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, door: Door):
        self._door = door

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(EXEMPT_GRPC_PREFIXES):
            return handler
        operation = POLICIES.get(method, ADMINISTER)
        metadata = handler_call_details.invocation_metadata
        door = self._door
        # The query metrics' api label (refusals are counted by the door).
        api = "grpc_stream" if handler.unary_stream else "grpc"

        async def admit(request, context):
            """The Admitted request; aborts the RPC when it is denied or cannot be decoded."""
            try:
                admitted = await door.admit(
                    lambda: token_from_metadata(metadata), operation, lambda: _decoded(request), api=api
                )
            except GatewayError as denied:
                await abort(context, denied)
            if admitted.parse_error is not None:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "request: not a valid protobuf message")
            # An invalid request is recorded as denied and goes on to its
            # handler, whose validation answers with the field named.
            ADMITTED.set(admitted)
            return admitted

        def answered(admitted, context) -> None:
            code = context.code()
            door.answered(admitted, f"gRPC {code.name if isinstance(code, grpc.StatusCode) else 'OK'}")

        kwargs = {
            "request_deserializer": _tolerant(handler.request_deserializer),
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            inner_uu = handler.unary_unary

            async def unary_unary(request, context):
                admitted = await admit(request, context)
                try:
                    return await inner_uu(request, context)
                finally:
                    answered(admitted, context)

            return grpc.unary_unary_rpc_method_handler(unary_unary, **kwargs)
        if handler.unary_stream:
            inner_us = handler.unary_stream

            async def unary_stream(request, context):
                admitted = await admit(request, context)
                try:
                    await drain_server_stream(inner_us, request, context)
                finally:
                    answered(admitted, context)

            return grpc.unary_stream_rpc_method_handler(unary_stream, **kwargs)

        # No streaming-request methods on the gateway: refuse rather than pass unchecked.
        async def refuse(request_or_iterator, context):
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not served")

        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(refuse, **kwargs)
        return grpc.stream_stream_rpc_method_handler(refuse, **kwargs)
