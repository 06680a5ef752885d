"""The BatchQueries gRPC service: submit, get, watch and cancel batches (the HTTP API also exports results)."""

import contextlib

import grpc

from protos.gateway.v1 import batch_pb2, batch_pb2_grpc
from services.gateway.access import authz
from services.gateway.batch.rows import JSON
from services.gateway.batch.service import BatchService
from services.gateway.grpc_api.door import ADMITTED
from services.gateway.grpc_api.status import answer_errors

SERVICE_NAME = batch_pb2.DESCRIPTOR.services_by_name["BatchQueries"].full_name


class BatchQueriesServicer(batch_pb2_grpc.BatchQueriesServicer):
    def __init__(self, batches: BatchService):
        self._batches = batches

    async def SubmitBatch(self, request, context: grpc.aio.ServicerContext):
        # A refused row is named in the message of the PERMISSION_DENIED status.
        return await answer_errors(context, self._batches.submit(ADMITTED.get().principal, request, JSON))

    async def GetBatch(self, request, context):
        record = await answer_errors(context, self._batches.find(ADMITTED.get().principal, request.batch_id))
        return await self._batches.view(record)

    async def CancelBatch(self, request, context):
        record = await answer_errors(
            context, self._batches.find(ADMITTED.get().principal, request.batch_id, authz.CANCEL_BATCH))
        return await self._batches.cancel(record)

    async def ExportBatch(self, request, context):
        record = await answer_errors(context, self._batches.find(ADMITTED.get().principal, request.batch_id))
        pieces = self._batches.export(record, request.format or "jsonl")
        async with contextlib.aclosing(pieces):
            while True:
                piece = await answer_errors(context, anext(pieces, None))
                if piece is None:
                    return
                yield batch_pb2.ExportChunk(data=piece)

    async def GetQuery(self, request, context):
        return await answer_errors(context, self._batches.recorded_query(ADMITTED.get().principal, request.query_id))

    async def WatchBatch(self, request, context):
        record = await answer_errors(context, self._batches.find(ADMITTED.get().principal, request.batch_id))
        async with contextlib.aclosing(self._batches.watch(record)) as updates:
            async for batch in updates:
                yield batch
