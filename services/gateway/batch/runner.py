"""The batch runner: claims batch items from the ledger and asks their agencies, in the background.

Each gateway runs one. It keeps up to BATCH_CONCURRENCY items in flight,
each leased in the ledger (LEDGER_LEASE_SECONDS, renewed while it works),
so gateways sharing a PostgreSQL ledger take disjoint items and one that
dies leaves its items to the others when the leases run out. For each item
only the agencies without a final answer are asked: an answer stored is
never asked for again, after a crash either. An agency is asked until it
answers, refuses for good, or its answer window ends (UNAVAILABLE, an
ejected agency and a timed-out attempt are asked again with backoff within
the window); then the item is DONE. Every call runs at batch priority
(agencies/quotas.py), behind any interactive query for the same agency.
"""

import asyncio
import dataclasses
import logging
import time
import uuid

from protos.common.v1 import common_pb2
from protos.gateway.v1 import gateway_pb2
from services.common.logs import request_id_var
from services.gateway.agencies.quotas import BATCH, PRIORITY
from services.gateway.batch.metrics import BATCH_ANSWERS, BATCH_IN_FLIGHT, BATCH_ITEMS
from services.gateway.config import GatewaySettings
from services.gateway.ledger.batches import (
    ANSWER_PENDING,
    RUNNING,
    ITEM_STATES,
    AnswerRecord,
    BatchItem,
    BatchRecord,
    BatchStore,
)
from services.gateway.query.fanout import FanOut
from services.gateway.query.late import result_json, status_name

logger = logging.getLogger(__name__)

# Between looks for new items while there is nothing to do (a submission wakes it at once).
IDLE_POLL_S = 1.0
# Between counts of items by state for the metric.
COUNT_EVERY_S = 5.0
# Asking an agency that is down again: 0.5 s, doubling to 30 s, within the window.
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 30.0
_RETRY_STATUSES = frozenset({gateway_pb2.AGENCY_STATUS_UNAVAILABLE, gateway_pb2.AGENCY_STATUS_TIMEOUT})


def item_request(item: BatchItem, executor_id: str) -> gateway_pb2.AssetQueryRequest:
    return gateway_pb2.AssetQueryRequest(
        request_id=item.query_id,
        case=common_pb2.CaseRef(case_number=item.case_number, court_code=item.court_code, executor_id=executor_id,
                                document_number=item.document_number),
        subject=common_pb2.Subject(type=item.subject_type, id_number=item.subject_id, name=item.subject_name),
    )


class _Progress:
    """A group commit of what the items' tasks record: one transaction at a time holds everything queued
    meanwhile (SQLite commits with fsync; one per answer would cap a batch at a few dozen items a second)."""

    ASK, ANSWER, FINISH = range(3)

    def __init__(self, store: BatchStore, owner: str, now_us):
        self.store = store
        self.owner = owner
        self.now_us = now_us
        self._queued: list[tuple[int, object, asyncio.Future]] = []
        self._flushing: asyncio.Task | None = None

    def queue(self, kind: int, record) -> asyncio.Future:
        """Queue `record` for the next commit; the future is done once it is committed (or failed)."""
        future = asyncio.get_running_loop().create_future()
        self._queued.append((kind, record, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush(), name="batch-progress")
        return future

    async def _flush(self) -> None:
        while self._queued:
            queued, self._queued = self._queued, []
            by_kind: dict[int, list] = {self.ASK: [], self.ANSWER: [], self.FINISH: []}
            for kind, record, _ in queued:
                by_kind[kind].append(record)
            try:
                await self.store.record_progress(
                    by_kind[self.ASK], by_kind[self.ANSWER], by_kind[self.FINISH], self.owner, self.now_us())
            except Exception as exc:  # each item waiting for its end sees it (and is asked again later)
                for kind, _, future in queued:
                    if not future.done():
                        if kind == self.FINISH:
                            future.set_exception(exc)
                        else:
                            future.cancel()  # nobody waits for it
                continue
            for _, _, future in queued:
                if not future.done():
                    future.set_result(None)

    async def close(self) -> None:
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)


class BatchRunner:
    """Asks the agencies about batch items this gateway has claimed; one per gateway process."""

    def __init__(self, store: BatchStore, fanout: FanOut, settings: GatewaySettings, now_us):
        self.store = store
        self.fanout = fanout
        self.concurrency = settings.batch_concurrency
        self.default_window_ms = settings.answer_window_ms
        self.lease_us = int(settings.lease_seconds * 1_000_000)
        self.now_us = now_us
        self.owner = f"batch:{uuid.uuid4().hex[:12]}"
        self._wake = asyncio.Event()
        self._active: set[asyncio.Task] = set()
        self._batches: dict[str, BatchRecord] = {}
        self._task: asyncio.Task | None = None
        self._closing = False
        self._progress = _Progress(store, self.owner, now_us)

    def window_ms(self, client) -> int:
        """How long the agency is waited for: its own window, the gateway's, at least its timeout."""
        return max(client.config.answer_window_ms or self.default_window_ms, client.config.timeout_ms)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="batch-runner")

    def wake(self) -> None:
        """New items to claim (a batch was submitted here)."""
        self._wake.set()

    async def close(self) -> None:
        """Stop claiming, stop asking, and hand this gateway's leases to the others."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for task in list(self._active):
            task.cancel()
        if self._active:
            await asyncio.gather(*self._active, return_exceptions=True)
        await self._progress.close()
        try:
            released = await self.store.release_leases(self.owner)
            if released:
                logger.info("batch: released %d items to other gateways", released)
        except Exception as exc:  # the ledger may be what is failing; leases then run out
            logger.warning("batch: could not release leases: %s", exc)

    async def _run(self) -> None:
        # Batch priority for every call made from here on (tasks inherit it).
        PRIORITY.set(BATCH)
        renewed = counted = 0.0
        while not self._closing:
            try:
                now = time.monotonic()
                if now - renewed >= self.lease_us / 3_000_000:
                    if self._active:
                        now_us = self.now_us()
                        await self.store.renew_leases(self.owner, now_us + self.lease_us)
                    renewed = now
                if now - counted >= COUNT_EVERY_S:
                    counts = await self.store.item_state_counts()
                    for state in ITEM_STATES:
                        BATCH_ITEMS.labels(state).set(counts.get(state, 0))
                    counted = now
                free = self.concurrency - len(self._active)
                if free > 0:
                    now_us = self.now_us()
                    claimed = await self.store.claim_items(self.owner, now_us, now_us + self.lease_us, free)
                    answered = await self.store.answers([item.query_id for item in claimed])
                    for item in claimed:
                        task = asyncio.create_task(self._item(item, answered[item.query_id]),
                                                   name=f"batch-item-{item.query_id}")
                        self._active.add(task)
                        task.add_done_callback(self._active.discard)
                if len(self._active) >= self.concurrency:
                    # Full: claim again when a quarter is done (or the leases are due), not for every
                    # item: one claim is a transaction.
                    await self._until_free(max(1, self.concurrency // 4))
                    continue
                # Room left, so nothing more to claim now: look again in a while, or when woken.
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), IDLE_POLL_S)
                except TimeoutError:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the ledger down: keep the items leased, try again shortly
                logger.warning("batch runner: %s: %s", type(exc).__name__, exc)
                await asyncio.sleep(IDLE_POLL_S)

    async def _until_free(self, slots: int) -> None:
        deadline = time.monotonic() + self.lease_us / 3_000_000
        while self.concurrency - len(self._active) < slots and not self._closing:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.wait(list(self._active), timeout=left, return_when=asyncio.FIRST_COMPLETED)

    async def _batch(self, batch_id: str) -> BatchRecord | None:
        record = self._batches.get(batch_id)
        if record is None:
            record = await self.store.batch(batch_id)
            if record is not None:
                self._batches[batch_id] = record
                if len(self._batches) > 1000:
                    self._batches.pop(next(iter(self._batches)))
        return record

    async def _item(self, item: BatchItem, answers: list[AnswerRecord]) -> None:
        BATCH_IN_FLIGHT.inc()
        request_id_var.set(item.query_id)
        try:
            batch = await self._batch(item.batch_id)
            if batch is None:
                return
            answered = {a.agency_id: a for a in answers}
            request = item_request(item, batch.executor_id)
            prepared = self.fanout.prepare(request)
            asks = []
            for agency_id in batch.agencies:
                previous = answered.get(agency_id)
                if previous is not None and previous.status != ANSWER_PENDING:
                    continue
                asks.append(self._ask_agency(item, agency_id, prepared, previous))
            await asyncio.gather(*asks)
            # Commits are in order: once the item is DONE, every answer queued before it is stored too.
            await self._progress.queue(_Progress.FINISH, item)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The lease runs out and the item is taken up again (by this gateway or another).
            logger.exception("batch item %s failed; it will be asked again", item.query_id)
        finally:
            BATCH_IN_FLIGHT.dec()

    async def _ask_agency(self, item: BatchItem, agency_id: str, prepared, previous: AnswerRecord | None) -> None:
        client = self.fanout.clients.by_id.get(agency_id)
        now_us = self.now_us()
        window_ms = self.window_ms(client) if client is not None else 0
        # A window begun before a crash goes on where it was, not from the start.
        window_until_us = previous.window_until_us if previous is not None else now_us + window_ms * 1000
        # Not waited for: a crash before it commits only restarts this agency's window on resume.
        self._progress.queue(_Progress.ASK, AnswerRecord(
            item.query_id, agency_id, item.batch_id, ANSWER_PENDING, "", now_us, window_until_us, 0, 0))
        if client is None:
            result = gateway_pb2.AgencyResult(
                agency_id=agency_id, status=gateway_pb2.AGENCY_STATUS_ERROR,
                error_message="NOT_FOUND: the agency is no longer in the registry")
            self._store(item, agency_id, result)
            return
        deadline = time.monotonic() + (window_until_us - now_us) / 1_000_000
        query = dataclasses.replace(prepared, windowed=True)
        pause = RETRY_FIRST_S
        while True:
            result = await self.fanout.ask(client, query, deadline)
            left = deadline - time.monotonic()
            if result.status not in _RETRY_STATUSES or left <= pause:
                break
            await asyncio.sleep(pause)
            batch = await self.store.batch(item.batch_id)
            if batch is None or batch.state != RUNNING:
                break  # cancelled: no new calls
            pause = min(pause * 2, RETRY_MAX_S)
        self._store(item, agency_id, result)

    def _store(self, item: BatchItem, agency_id: str, result: gateway_pb2.AgencyResult) -> None:
        status = status_name(result.status)
        # Committed before the item is DONE (queue order); a failed commit leaves the item to be asked again.
        self._progress.queue(_Progress.ANSWER, AnswerRecord(
            item.query_id, agency_id, item.batch_id, status, result_json(result), 0, 0, self.now_us(), 0))
        BATCH_ANSWERS.labels(status).inc()
