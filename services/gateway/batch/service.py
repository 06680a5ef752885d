"""Batches for the adapters: submit (check, authorize and audit every row, store), view, list, cancel, results.

Shared by the HTTP routes and the gRPC service; the runner (runner.py) does
the asking. A submission is all or nothing once checked: rows that break
a rule are reported and left out, but a row naming a case the caller may
not query refuses the whole batch (PERMISSION_DENIED, every such row
named and audited), so that no one learns by a batch what they could not
ask one case at a time.
"""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

import grpc
from google.protobuf import json_format

from protos.gateway.v1 import batch_pb2
from services.common.validation import FieldError
from services.gateway.access import authz
from services.gateway.access.door import Call, Door
from services.gateway.batch.export import FORMATS, ItemResult, csv_text, rfc3339, xlsx_bytes
from services.gateway.batch.rows import CheckedRow, check_rows
from services.gateway.batch.runner import BatchRunner
from services.gateway.errors import GatewayError
from services.gateway.ledger.batches import (
    ANSWER_PENDING,
    BATCH,
    ITEM_CANCELLED,
    ITEM_DONE,
    ITEM_PENDING,
    RUNNING,
    BatchItem,
    BatchRecord,
    BatchStore,
    QueryRecord,
)
from services.gateway.query.fanout import FanOut
from services.security.tokens import Principal

# Rows authorized (and audited) at once: the audit store commits them together.
AUTHORIZE_CHUNK = 200
RESULTS_PAGE = 500
LIST_LIMIT = 100


class BatchRefused(GatewayError):
    """Rows the caller may not query: the batch is refused, and these are the rows."""

    def __init__(self, rows: list[batch_pb2.RejectedRow]):
        shown = "; ".join(f"line {r.line}: {r.rule}" for r in rows[:5])
        more = f"; and {len(rows) - 5} more" if len(rows) > 5 else ""
        super().__init__(grpc.StatusCode.PERMISSION_DENIED,
                         f"rows: {len(rows)} rows name cases you may not query ({shown}{more}); nothing was started")
        self.rows = rows


class BatchService:
    def __init__(self, store: BatchStore, fanout: FanOut, door: Door, runner: BatchRunner, max_rows: int, now_us):
        self.store = store
        self.fanout = fanout
        self.door = door
        self.runner = runner
        self.max_rows = max_rows
        self.now_us = now_us

    async def submit(self, principal: Principal, request: batch_pb2.SubmitBatchRequest, source: str) -> batch_pb2.Batch:
        good, rejected = check_rows(request, principal.court_code, principal.executor_id, self.max_rows)
        agencies = self.fanout.select(request.agency_ids) if request.agency_ids else self.fanout.clients.all
        if not good and not rejected:
            raise FieldError("rows", "no rows; give at least one")
        denied = await self._authorize(principal, good, [client.id for client in agencies])
        if denied:
            raise BatchRefused(denied)
        now_us = self.now_us()
        batch_id = f"b-{uuid.uuid4().hex[:20]}"
        record = BatchRecord(
            batch_id=batch_id, court_code=principal.court_code, executor_id=principal.executor_id, state=RUNNING,
            total=len(good), agency_ids=",".join(client.id for client in agencies),
            rejected=_rejected_json(rejected), source=source, created_at_us=now_us, updated_at_us=now_us,
            finished_at_us=0,
        )
        items, queries = [], []
        for row in good:
            query_id = f"{batch_id}-{row.line}"
            items.append(BatchItem(
                batch_id, row.line, row.case.case_number, row.case.court_code, row.case.document_number,
                row.subject.type, row.subject.id_number, row.subject.name, ITEM_PENDING, query_id, "", 0, now_us))
            queries.append(QueryRecord(query_id, BATCH, batch_id, row.case.case_number, row.case.court_code,
                                       principal.executor_id, row.subject.type, row.subject.id_number, now_us))
        await self.store.create(record, items, queries)
        if not items:
            # Every row refused: the batch is DONE at once, its `rejected` saying why.
            await self.store.finish_empty(batch_id, now_us)
            record = await self.store.batch(batch_id) or record
        self.runner.wake()
        return await self.view(record)

    async def _authorize(self, principal: Principal, rows: list[CheckedRow],
                         agency_ids: list[str]) -> list[batch_pb2.RejectedRow]:
        """Each row decided and audited as the query it is; the rows denied."""
        denied = []
        for start in range(0, len(rows), AUTHORIZE_CHUNK):
            chunk = rows[start:start + AUTHORIZE_CHUNK]
            decisions = await asyncio.gather(*(
                self.door.authorize(principal, Call(
                    authz.QUERY, case_number=row.case.case_number, court_code=row.case.court_code,
                    executor_id=row.case.executor_id, document_number=row.case.document_number,
                    subject=row.subject, agency_ids=tuple(agency_ids)))
                for row in chunk
            ))
            denied.extend(batch_pb2.RejectedRow(line=row.line, field="case_number", rule=decision.reason)
                          for row, decision in zip(chunk, decisions) if not decision.allowed)
        return denied

    async def find(self, principal: Principal, batch_id: str, action: str = authz.READ_BATCH) -> BatchRecord:
        """The batch, if the caller may read it (or cancel it: `action`; the refusal audited); NOT_FOUND otherwise."""
        record = await self.store.batch(batch_id) if batch_id else None
        if record is None:
            raise GatewayError(grpc.StatusCode.NOT_FOUND, f"batch_id: no batch {batch_id!r}")
        decision = authz.decide(principal, action, court_code=record.court_code, executor_id=record.executor_id)
        if not decision.allowed:
            await self.door.record(principal, Call(action, request_id=batch_id), decision.reason)
            raise GatewayError(decision.code, decision.reason)
        return record

    async def recorded_query(self, principal: Principal, query_id: str) -> batch_pb2.RecordedQuery:
        """A recorded query with every answer and its arrival, if the caller may read it (the refusal audited)."""
        found = await self.store.query(query_id) if query_id else None
        if found is None:
            raise GatewayError(grpc.StatusCode.NOT_FOUND, f"query_id: no recorded query {query_id!r}")
        query, answers = found
        decision = authz.decide(principal, authz.READ_QUERY, court_code=query.court_code,
                                executor_id=query.executor_id)
        if not decision.allowed:
            await self.door.record(principal, Call(authz.READ_QUERY, case_number=query.case_number,
                                                   request_id=query_id), decision.reason)
            raise GatewayError(decision.code, decision.reason)
        shown = batch_pb2.RecordedQuery(
            query_id=query.query_id, origin=query.origin, batch_id=query.batch_id, case_number=query.case_number,
            court_code=query.court_code, executor_id=query.executor_id, subject_id=query.subject_id,
            created_at=rfc3339(query.created_at_us))
        for answer in answers:
            item = shown.answers.add(agency_id=answer.agency_id, status=answer.status,
                                     asked_at=rfc3339(answer.asked_at_us), arrived_at=rfc3339(answer.arrived_at_us),
                                     window_until=rfc3339(answer.window_until_us), late=bool(answer.late))
            if answer.result:
                json_format.Parse(answer.result, item.result, ignore_unknown_fields=True)
            else:
                item.result.agency_id = answer.agency_id
        return shown

    async def view(self, record: BatchRecord) -> batch_pb2.Batch:
        if record.state == RUNNING:
            # It may have ended since it was read; read before the counts, so DONE comes with all of them.
            record = await self.store.batch(record.batch_id) or record
        counts = await self.store.counts(record.batch_id)
        done = counts.items.get(ITEM_DONE, 0)
        cancelled = counts.items.get(ITEM_CANCELLED, 0)
        batch = batch_pb2.Batch(
            batch_id=record.batch_id, state=record.state, total=record.total, done=done, cancelled=cancelled,
            court_code=record.court_code, executor_id=record.executor_id, agency_ids=record.agencies,
            created_at=rfc3339(record.created_at_us), finished_at=rfc3339(record.finished_at_us),
        )
        batch.rejected.extend(batch_pb2.RejectedRow(**row) for row in record.rejected_rows)
        for agency_id in record.agencies:
            by_status = counts.answers.get(agency_id, {})
            ok = by_status.get("OK", 0)
            timeout = by_status.get("TIMEOUT", 0)
            error = sum(n for status, n in by_status.items() if status not in ("OK", "TIMEOUT", ANSWER_PENDING))
            pending = max(0, record.total - cancelled - ok - timeout - error)
            batch.agencies[agency_id].CopyFrom(batch_pb2.AgencyCounts(ok=ok, timeout=timeout, error=error,
                                                                      pending=pending))
        remaining = record.total - done - cancelled
        if record.state == RUNNING and done and remaining:
            elapsed = max(0.001, (self.now_us() - record.created_at_us) / 1_000_000)
            batch.eta_seconds = round(remaining * elapsed / done, 1)
        return batch

    async def latest(self, principal: Principal) -> list[batch_pb2.Batch]:
        """The caller's court's latest batches, those they may read."""
        shown = []
        for record in await self.store.batches_of_court(principal.court_code, LIST_LIMIT):
            if authz.decide(principal, authz.READ_BATCH, court_code=record.court_code,
                            executor_id=record.executor_id).allowed:
                shown.append(await self.view(record))
        return shown

    async def cancel(self, record: BatchRecord) -> batch_pb2.Batch:
        await self.store.cancel(record.batch_id, self.now_us())
        return await self.view(await self.store.batch(record.batch_id) or record)

    async def watch(self, record: BatchRecord, poll_s: float = 0.5) -> AsyncIterator[batch_pb2.Batch]:
        """The batch now, then every time it changes, until it has ended (the last one yielded)."""
        last = None
        while True:
            batch = await self.view(record)
            shown = batch.SerializeToString(deterministic=True)
            if shown != last or batch.state != RUNNING:
                yield batch
                last = shown
            if batch.state != RUNNING:
                return
            started = time.monotonic()
            await asyncio.sleep(max(0.0, poll_s - (time.monotonic() - started)))

    async def results(self, record: BatchRecord) -> AsyncIterator[ItemResult]:
        """Every row with its answers, by line, a page at a time."""
        after = 0
        while True:
            items = await self.store.items(record.batch_id, after, RESULTS_PAGE)
            if not items:
                return
            answers = await self.store.answers([item.query_id for item in items])
            for item in items:
                yield ItemResult(item, tuple(answers[item.query_id]))
            after = items[-1].line


    async def export(self, record: BatchRecord, fmt: str) -> AsyncIterator[bytes]:
        """The results as a file in `fmt` (export.FORMATS), in pieces: a page of rows each (XLSX at the end,
        built in a thread: the workbook is written whole)."""
        if fmt not in FORMATS:
            raise FieldError("format", f"must be one of {', '.join(FORMATS)}")
        if fmt == "xlsx":
            lines = [line async for result in self.results(record) for line in result.lines()]
            yield await asyncio.get_running_loop().run_in_executor(None, xlsx_bytes, lines)
            return
        first = True
        page: list[str] = []
        async for result in self.results(record):
            if fmt == "jsonl":
                page.append(json.dumps(result.record(), ensure_ascii=False, separators=(",", ":")) + "\n")
            else:
                # A BOM first: Excel then reads the Chinese as UTF-8.
                page.append(("\ufeff" if first else "") + csv_text(list(result.lines()), header=first))
            first = False
            if len(page) >= RESULTS_PAGE:
                yield "".join(page).encode()
                page = []
        if first and fmt == "csv":
            page.append("\ufeff" + csv_text([], header=True))
        if page:
            yield "".join(page).encode()


def _rejected_json(rows: list[batch_pb2.RejectedRow]) -> str:
    return json.dumps([{"line": r.line, "field": r.field, "rule": r.rule} for r in rows], ensure_ascii=False)
