"""The AssetGateway gRPC service."""

import contextlib

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from protos.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.common.validation import FieldError
from services.gateway import request_ids
from services.gateway.fanout import FanOut
from services.gateway.metrics import query_metrics

SERVICE_NAME = gateway_pb2.DESCRIPTOR.services_by_name["AssetGateway"].full_name


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


def list_agencies(fanout: FanOut) -> gateway_pb2.ListAgenciesResponse:
    """Built per call: the registry reloads and agencies are ejected and readmitted."""
    response = gateway_pb2.ListAgenciesResponse()
    for client in fanout.clients.all:
        config = client.config
        response.agencies.add(
            agency_id=config.id,
            kind=config.kind_value,
            display_name=config.name,
            address=config.address,
            timeout_ms=config.timeout_ms,
            health=client.health.state,
            ejected_until=client.health.ejected_until,
        )
    return response


class AssetGatewayServicer(gateway_pb2_grpc.AssetGatewayServicer):
    def __init__(self, fanout: FanOut):
        self._fanout = fanout
        self._unary_metrics = query_metrics("grpc")
        self._stream_metrics = query_metrics("grpc_stream")

    async def QueryAssets(self, request, context: grpc.aio.ServicerContext):
        if not request.request_id:
            request.request_id = request_ids.from_metadata(context)
        try:
            query = self._fanout.prepare(request, caller_time_remaining=context.time_remaining())
        except FieldError as error:
            self._unary_metrics.rejected.inc()
            await context.abort_with_status(invalid_argument_status(error))
        # Trailing metadata only: sending headers early would cost a write
        # and a wait before the fan-out even starts.
        context.set_trailing_metadata((("x-request-id", query.request_id),))
        return await self._fanout.query(query, "grpc")

    async def StreamAssets(self, request, context: grpc.aio.ServicerContext):
        if not request.request_id:
            request.request_id = request_ids.from_metadata(context)
        try:
            query = self._fanout.prepare(request, caller_time_remaining=context.time_remaining())
        except FieldError as error:
            self._stream_metrics.rejected.inc()
            await context.abort_with_status(invalid_argument_status(error))
        await context.send_initial_metadata((("x-request-id", query.request_id),))
        async with contextlib.aclosing(self._fanout.stream(query, "grpc_stream")) as events:
            async for event in events:
                yield event

    async def ListAgencies(self, request, context):
        return list_agencies(self._fanout)
