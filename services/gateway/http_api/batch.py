"""The HTTP face of batches: submit (JSON, CSV or XLSX), watch (JSON, server-sent events), results, cancel.

    POST /v1/batches                      202 Batch; 403 with `rejected` when a row is not yours to query
    GET  /v1/batches                      {"batches": [Batch, ...]}: the caller's court's latest, newest first
    GET  /v1/batches/{batch_id}           Batch
    GET  /v1/batches/{batch_id}/events    SSE: `progress` (Batch) on every change, then one `done` (Batch)
    GET  /v1/batches/{batch_id}/results   ?format=jsonl (default), csv or xlsx: batch/export.py's columns
    POST /v1/batches/{batch_id}/cancel    Batch, CANCELLED (or as it ended)
    GET  /v1/queries/{query_id}           RecordedQuery: every agency's answer with its arrival (late ones too)

A Batch is the proto3 JSON of chakong.gateway.v1.Batch, every field present:
{"batch_id", "state": "RUNNING|DONE|CANCELLED", "total", "done", "cancelled",
"agencies": {<agency_id>: {"ok", "timeout", "error", "pending"}}, "eta_seconds",
"rejected": [{"line", "field", "rule"}], "court_code", "executor_id",
"agency_ids", "created_at", "finished_at"}.
"""

import asyncio
import contextlib
import logging

from aiohttp import web

from protos.gateway.v1 import batch_pb2
from services.common.validation import FieldError
from services.gateway.access import authz
from services.gateway.access.door import Admitted
from services.gateway.batch.export import COLUMNS, FORMATS
from services.gateway.batch.operations import CANCEL_BATCH, LIST_BATCHES, READ_BATCH, READ_QUERY, SUBMIT_BATCH
from services.gateway.batch.rows import CSV, JSON, MEDIA_TYPES, XLSX_MEDIA_TYPE, read_csv, read_xlsx
from services.gateway.batch.service import BatchRefused
from services.gateway.http_api.json_io import UnsupportedMediaType, dumps, error_response, parse_json_message
from services.gateway.http_api.jsonmap import message_to_dict
from services.gateway.http_api.routes import CORE, Answer, Route

logger = logging.getLogger(__name__)

SOURCE = web.RequestKey("batch_source", str)
# A comment line on a quiet event stream, so proxies keep it open.
KEEPALIVE_S = 15.0


def batch_json(batch: batch_pb2.Batch) -> dict:
    return message_to_dict(batch)


def _parse_submit(request: web.Request, body: bytes) -> batch_pb2.SubmitBatchRequest:
    content_type = request.content_type if "Content-Type" in request.headers else ""
    source = MEDIA_TYPES.get(content_type)
    if source is None:
        raise UnsupportedMediaType(
            "Content-Type", f"must be application/json, text/csv or {XLSX_MEDIA_TYPE} (got {content_type or 'none'})")
    request[SOURCE] = source
    max_rows = request.app[CORE].settings.batch_max_rows
    if source == JSON:
        return parse_json_message(body, batch_pb2.SubmitBatchRequest)
    # An uploaded list asks every agency; JSON (or gRPC, or `chakong batch submit --agencies`) may name them.
    return read_csv(body, max_rows) if source == CSV else read_xlsx(body, max_rows)


def _batch_in_path(request: web.Request, body: bytes) -> batch_pb2.GetBatchRequest:
    return batch_pb2.GetBatchRequest(batch_id=request.match_info["batch_id"])


async def post_batch(request: web.Request, admitted: Admitted) -> web.Response:
    message = admitted.request()
    try:
        batch = await request.app[CORE].batches.submit(admitted.principal, message, request[SOURCE])
    except BatchRefused as refused:
        return error_response(403, refused.message, "rows", code=refused.code.name,
                              rejected=[message_to_dict(row) for row in refused.rows])
    admitted.result = f"batch {batch.batch_id}: {batch.total} rows, {len(batch.rejected)} rejected"
    return web.json_response(batch_json(batch), status=202, dumps=dumps,
                             headers={"Location": f"/v1/batches/{batch.batch_id}"})


async def list_batches(request: web.Request, admitted: Admitted) -> web.Response:
    batches = await request.app[CORE].batches.latest(admitted.principal)
    return web.json_response({"batches": [batch_json(b) for b in batches]}, dumps=dumps)


async def _found(request: web.Request, admitted: Admitted, action: str = authz.READ_BATCH):
    return await request.app[CORE].batches.find(admitted.principal, admitted.request().batch_id, action)


async def get_batch(request: web.Request, admitted: Admitted) -> web.Response:
    record = await _found(request, admitted)
    return web.json_response(batch_json(await request.app[CORE].batches.view(record)), dumps=dumps)


async def cancel_batch(request: web.Request, admitted: Admitted) -> web.Response:
    record = await _found(request, admitted, authz.CANCEL_BATCH)
    return web.json_response(batch_json(await request.app[CORE].batches.cancel(record)), dumps=dumps)


async def batch_events(request: web.Request, admitted: Admitted) -> web.StreamResponse:
    """`progress` whenever the batch changes, then `done` once it has ended; the stream then closes."""
    service = request.app[CORE].batches
    record = await _found(request, admitted)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    number = 0
    try:
        async with contextlib.aclosing(service.watch(record)) as updates:
            updates_iter = aiter(updates)
            while True:
                try:
                    batch = await asyncio.wait_for(anext(updates_iter), KEEPALIVE_S)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                number += 1
                name = "progress" if batch.state == "RUNNING" else "done"
                await response.write(f"id: {number}\nevent: {name}\ndata: {dumps(batch_json(batch))}\n\n".encode())
    except ConnectionResetError:
        return response
    await response.write_eof()
    return response


async def batch_results(request: web.Request, admitted: Admitted) -> web.StreamResponse:
    fmt = request.query.get("format", "jsonl")
    if fmt not in FORMATS:
        raise FieldError("format", f"must be one of {', '.join(FORMATS)}")
    service = request.app[CORE].batches
    record = await _found(request, admitted)
    response = web.StreamResponse(headers={
        "Content-Type": FORMATS[fmt], "Content-Disposition": f'attachment; filename="{record.batch_id}.{fmt}"'})
    await response.prepare(request)
    async for piece in service.export(record, fmt):
        await response.write(piece)
    await response.write_eof()
    return response


async def get_query(request: web.Request, admitted: Admitted) -> web.Response:
    shown = await request.app[CORE].batches.recorded_query(admitted.principal, admitted.request().query_id)
    return web.json_response(message_to_dict(shown), dumps=dumps)


def batch_routes() -> list[Route]:
    found = (Answer(404, "No such batch (or a case the request names is not registered)."),)
    return [
        Route("POST", "/v1/batches", SUBMIT_BATCH, post_batch, "submitBatch",
              "Submit a batch of queries (多案集中查询): JSON rows, or a CSV or XLSX case summary list"
              " (columns case_number, court_code, document_number, debtor_id, debtor_name). Answers at once;"
              " the batch runs in the background, durably.",
              (Answer(202, "Accepted and stored; rows that break a rule are in `rejected` and the others run.",
                      batch_pb2.Batch, headers=("Location",)),
               Answer(403, "A row names a case you may not query (another court's, not assigned to you, not"
                           " registered, not its debtor): nothing started; every such row in `rejected`.",
                      "BatchRefusal"),
               Answer(413, "The body is over BATCH_MAX_UPLOAD_BYTES, or it has more rows than BATCH_MAX_ROWS."),
               Answer(415, "Content-Type is not application/json, text/csv or the XLSX media type.")),
              parse=_parse_submit, body_schema="BatchUpload",
              body_limit=lambda settings: settings.batch_max_upload_bytes),
        Route("GET", "/v1/batches", LIST_BATCHES, list_batches, "listBatches",
              "Your court's latest batches (those you may read), newest first.",
              (Answer(200, "The batches.", "BatchList"),),
              parse=lambda request, body: batch_pb2.GetBatchRequest()),
        Route("GET", "/v1/batches/{batch_id}", READ_BATCH, get_batch, "getBatch",
              "Where a batch stands: rows done, per-agency answers, estimated time left.",
              (Answer(200, "The batch.", batch_pb2.Batch), *found), parse=_batch_in_path),
        Route("GET", "/v1/batches/{batch_id}/events", READ_BATCH, batch_events, "watchBatch",
              "The batch's progress as server-sent events until it ends.",
              (Answer(200, "An SSE stream: `event: progress` with the Batch JSON whenever it changes, then one"
                           " `event: done` with the final Batch; comment lines keep a quiet stream open.",
                      "BatchEvents"), *found), parse=_batch_in_path),
        Route("GET", "/v1/batches/{batch_id}/results", READ_BATCH, batch_results, "batchResults",
              "Every row's answers: JSON lines (one per row, with a summary), or CSV or XLSX (one line per asset,"
              f" the columns {', '.join(COLUMNS)}).",
              (Answer(200, "The results so far (complete once the batch is DONE).", "BatchResults"), *found),
              parse=_batch_in_path, query=("format",)),
        Route("POST", "/v1/batches/{batch_id}/cancel", CANCEL_BATCH, cancel_batch, "cancelBatch",
              "Stop asking: no new calls; what was answered is kept.",
              (Answer(200, "The batch as it is now (CANCELLED, or DONE if it had ended).", batch_pb2.Batch), *found),
              parse=_batch_in_path),
        Route("GET", "/v1/queries/{query_id}", READ_QUERY, get_query, "getQuery",
              "A recorded query (interactive, or a batch's row `<batch_id>-<line>`) with every agency's answer and"
              " its arrival time, late answers included.",
              (Answer(200, "The query as recorded.", batch_pb2.RecordedQuery),
               Answer(404, "No query recorded under that ID.")),
              parse=lambda request, body: batch_pb2.GetQueryRequest(query_id=request.match_info["query_id"])),
    ]
