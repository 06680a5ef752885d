"""The AssetGateway gRPC service: queries (unary and streamed) and the agency list."""

import contextlib

import grpc

from protos.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.common.logs import REQUEST_ID_METADATA_KEY
from services.common.validation import FieldError, usable_request_id
from services.gateway.grpc_api.status import invalid_argument_status
from services.gateway.query.fanout import FanOut
from services.gateway.query.metrics import query_metrics

SERVICE_NAME = gateway_pb2.DESCRIPTOR.services_by_name["AssetGateway"].full_name


def _request_id(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_METADATA_KEY:
            return usable_request_id(value)
    return ""


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
            source=config.source,
            external=config.external or config.source != "file",
        )
    return response


class AssetGatewayServicer(gateway_pb2_grpc.AssetGatewayServicer):
    def __init__(self, fanout: FanOut):
        self._fanout = fanout
        self._unary_metrics = query_metrics("grpc")
        self._stream_metrics = query_metrics("grpc_stream")

    async def QueryAssets(self, request, context: grpc.aio.ServicerContext):
        if not request.request_id:
            request.request_id = _request_id(context)
        try:
            query = self._fanout.prepare(request, caller_time_remaining=context.time_remaining())
        except FieldError as error:
            self._unary_metrics.rejected(request.case.court_code)
            await context.abort_with_status(invalid_argument_status(error))
        # Trailing metadata only: sending headers early would cost a write
        # and a wait before the fan-out even starts.
        context.set_trailing_metadata((("x-request-id", query.request_id),))
        return await self._fanout.query(query, "grpc")

    async def StreamAssets(self, request, context: grpc.aio.ServicerContext):
        if not request.request_id:
            request.request_id = _request_id(context)
        try:
            query = self._fanout.prepare(request, caller_time_remaining=context.time_remaining())
        except FieldError as error:
            self._stream_metrics.rejected(request.case.court_code)
            await context.abort_with_status(invalid_argument_status(error))
        await context.send_initial_metadata((("x-request-id", query.request_id),))
        async with contextlib.aclosing(self._fanout.stream(query, "grpc_stream")) as events:
            async for event in events:
                yield event

    async def ListAgencies(self, request, context):
        return list_agencies(self._fanout)
