"""Every interactive query recorded, and late answers: an agency's answer kept after the reply has gone.

National 总对总 feedback may come minutes after an executor's deadline, and
it is still the answer (DOMAIN.md). The reply stays bounded by its deadline;
for each agency cut off by it (TIMEOUT) whose answer window (registry
`answer_window_ms`, else ANSWER_WINDOW_MS) is longer, the gateway asks that
agency once more in the background with the rest of the window as the
call's deadline, and stores the answer when it arrives (late). At most
LATE_CALLS_PER_AGENCY such calls run per agency; beyond, the TIMEOUT stands.
`GET /v1/queries/{query_id}` shows every answer with its arrival time.

Records are written in the background and group-committed, so neither the
reply nor the fan-out waits for the ledger.
"""

import asyncio
import dataclasses
import logging
import time

from google.protobuf import json_format
from prometheus_client import Counter, Gauge

from protos.gateway.v1 import gateway_pb2
from services.gateway.agencies.clients import AgencyClient
from services.gateway.agencies.quotas import BATCH, PRIORITY
from services.gateway.ledger import LedgerUnavailable, UniqueViolation
from services.gateway.ledger.batches import ANSWER_PENDING, INTERACTIVE, AnswerRecord, BatchStore, QueryRecord

logger = logging.getLogger(__name__)

ANSWERED, EXPIRED, REFUSED = "answered", "expired", "refused"
LATE_OUTCOMES = (ANSWERED, EXPIRED, REFUSED)

LATE_IN_FLIGHT = Gauge(
    "chakong_gateway_late_calls_in_flight",
    "Calls to an agency going on after their interactive reply (late answers), per agency.",
    ["agency_id"],
    multiprocess_mode="livesum",
)
LATE_CALLS = Counter(
    "chakong_gateway_late_calls_total",
    "Late-answer calls by outcome: answered (within the window), expired (the window passed) or refused (the"
    " agency's cap of calls in the background was reached, the TIMEOUT stands).",
    ["agency_id", "outcome"],
)


def status_name(status: int) -> str:
    return gateway_pb2.AgencyStatus.Name(status).removeprefix("AGENCY_STATUS_")


def result_json(result: gateway_pb2.AgencyResult) -> str:
    # Every field printed, defaults too: a zero balance is a balance.
    return json_format.MessageToJson(result, preserving_proto_field_name=True, indent=None,
                                     always_print_fields_with_no_presence=True)


def create_series(agency_id: str) -> None:
    LATE_IN_FLIGHT.labels(agency_id)
    for outcome in LATE_OUTCOMES:
        LATE_CALLS.labels(agency_id, outcome)


class LateAnswers:
    """Records each query and keeps asking the agencies it cut off, within their windows."""

    def __init__(self, store: BatchStore, fanout, *, default_window_ms: int, cap_per_agency: int, now_us):
        self.store = store
        self.fanout = fanout
        self.default_window_ms = default_window_ms
        self.cap = cap_per_agency
        self.now_us = now_us
        self._running: dict[str, int] = {}
        self._calls: set[asyncio.Task] = set()
        self._queued: list[tuple[QueryRecord, list[AnswerRecord]]] = []
        self._writes: list[AnswerRecord] = []
        self._flushing: asyncio.Task | None = None
        for client in fanout.clients.all:
            create_series(client.id)

    def window_ms(self, client: AgencyClient) -> int:
        return client.config.answer_window_ms or self.default_window_ms

    def finished(self, query, results, latency_ms: float) -> None:
        """A query's reply is ready with `results` (AgencyResult each): record it, and follow the late ones up."""
        request = query.request
        if request is None:
            return
        now_us = self.now_us()
        started_us = now_us - int(latency_ms * 1000)
        record = QueryRecord(query.request_id, INTERACTIVE, "", request.case.case_number, request.case.court_code,
                             request.case.executor_id, request.subject.type, request.subject.id_number, started_us)
        answers = []
        follow = []
        by_id = {client.id: client for client in query.agencies}
        for result in results:
            client = by_id.get(result.agency_id)
            window_until_us = started_us + (self.window_ms(client) if client else 0) * 1000
            late = (result.status == gateway_pb2.AGENCY_STATUS_TIMEOUT and client is not None
                    and window_until_us > now_us and self._running.get(client.id, 0) < self.cap)
            if late:
                self._running[client.id] = self._running.get(client.id, 0) + 1
                follow.append((client, window_until_us))
                answers.append(AnswerRecord(query.request_id, result.agency_id, "", ANSWER_PENDING, "", started_us,
                                            window_until_us, 0, 0))
            else:
                if (result.status == gateway_pb2.AGENCY_STATUS_TIMEOUT and client is not None
                        and self._running.get(client.id, 0) >= self.cap):
                    LATE_CALLS.labels(client.id, REFUSED).inc()
                answers.append(AnswerRecord(query.request_id, result.agency_id, "", status_name(result.status),
                                            result_json(result), started_us, window_until_us,
                                            started_us + int(result.latency_ms * 1000), 0))
        self._queued.append((record, answers))
        self._flush_soon()
        windowed = dataclasses.replace(query, windowed=True)
        for client, window_until_us in follow:
            task = asyncio.create_task(self._follow(client, windowed, window_until_us),
                                       name=f"late-{query.request_id}-{client.id}")
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)

    async def _follow(self, client: AgencyClient, query, window_until_us: int) -> None:
        # Background work: behind every executor's query waiting for the agency's quota.
        PRIORITY.set(BATCH)
        gauge = LATE_IN_FLIGHT.labels(client.id)
        gauge.inc()
        try:
            deadline = time.monotonic() + (window_until_us - self.now_us()) / 1_000_000
            result = await self.fanout.ask(client, query, deadline)
            outcome = EXPIRED if result.status == gateway_pb2.AGENCY_STATUS_TIMEOUT else ANSWERED
            LATE_CALLS.labels(client.id, outcome).inc()
            self._writes.append(AnswerRecord(query.request_id, client.id, "", status_name(result.status),
                                             result_json(result), 0, window_until_us, self.now_us(), 1))
            self._flush_soon()
        finally:
            gauge.dec()
            self._running[client.id] -= 1

    def _flush_soon(self) -> None:
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush(), name="query-records")

    async def _flush(self) -> None:
        while self._queued or self._writes:
            queued, self._queued = self._queued, []
            writes, self._writes = self._writes, []
            try:
                await self.store.record_queries(queued, writes)
            except UniqueViolation:
                # A caller reused a request ID: record what can be, one query at a time.
                for query, answers in queued:
                    try:
                        await self.store.record_queries([(query, answers)], [])
                    except UniqueViolation:
                        logger.warning("query %s: request ID used before; this query is not recorded",
                                       query.query_id)
                await self.store.record_queries([], writes)
            except (LedgerUnavailable, OSError) as exc:
                logger.error("could not record %d queries and %d late answers: %s", len(queued), len(writes), exc)

    async def close(self) -> None:
        """Stop the calls still going on; what has arrived is written first."""
        for task in list(self._calls):
            task.cancel()
        if self._calls:
            await asyncio.gather(*self._calls, return_exceptions=True)
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)
