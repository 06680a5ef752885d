"""Enforcement plans for every case of a batch: a dry run first, then execution; each case's class and the totals.

`POST /v1/batches/{batch_id}/enforce` (gRPC `EnforceBatch`) plans every case
the batch's rows name, as the caller (who must be allowed to enforce each:
every case is decided and audited at the door's `authorize`, and one case
refused refuses the whole, nothing started). Each case's plan is an ordinary
plan whose ID comes from the batch and the case's first line
(`pl-<batch_id>-<line>`): asking again finds the same plans, so a dry run
then an execution executes exactly the plans the dry run made (re-checked,
service.py), and asking again after a crash or a restart carries on with
what is left, never planning or acting on a case twice. The plans run in
the background, CONCURRENCY at a time; `GET .../enforcement` shows each
case's plan as it stands, and the totals.
"""

import asyncio
import logging

import grpc

from protos.gateway.v1 import enforce_pb2
from services.gateway.access import authz
from services.gateway.access.door import Call, Door
from services.gateway.enforce.service import EnforceService, _parse
from services.gateway.errors import GatewayError
from services.gateway.ledger.batches import BatchRecord, BatchStore
from services.security.tokens import Principal

logger = logging.getLogger(__name__)

E = enforce_pb2
CONCURRENCY = 8
PAGE = 500
AUTHORIZE_CHUNK = 200
TOTALS = {
    E.TRIAGE_CLASS_SETTLED: "settled", E.TRIAGE_CLASS_PARTIAL: "partial", E.TRIAGE_CLASS_NO_ASSETS: "no_assets",
    E.TRIAGE_CLASS_WAITING_APPROVAL: "waiting_approval", E.TRIAGE_CLASS_FAILED: "failed",
}


def plan_id_of(batch_id: str, line: int) -> str:
    return f"pl-{batch_id}-{line}"


class BatchPlans:
    """Plans for batches' cases, over the plans service, the batch store and the door."""

    def __init__(self, enforce: EnforceService, store: BatchStore, door: Door):
        self.enforce = enforce
        self.store = store
        self.door = door
        self._running: dict[str, asyncio.Task] = {}

    async def close(self) -> None:
        running = list(self._running.values())
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    async def start(self, principal: Principal, request: E.EnforceBatchRequest) -> E.BatchEnforcement:
        record = await self._batch(principal, request.batch_id)
        cases = await self._cases(record)
        denied = []
        for start in range(0, len(cases), AUTHORIZE_CHUNK):
            chunk = cases[start:start + AUTHORIZE_CHUNK]
            decisions = await asyncio.gather(*(
                self.door.authorize(principal, Call(authz.ENFORCE, case_number=case_number,
                                                    request_id=plan_id_of(record.batch_id, line)))
                for line, case_number in chunk))
            denied += [(line, case_number, d.reason) for (line, case_number), d in zip(chunk, decisions)
                       if not d.allowed]
        if denied:
            shown = "; ".join(f"line {line} ({case}): {why}" for line, case, why in denied[:5])
            raise GatewayError(grpc.StatusCode.PERMISSION_DENIED,
                               f"batch_id: {len(denied)} case(s) you may not enforce ({shown}); nothing was started")
        running = self._running.get(record.batch_id)
        if running is None or running.done():
            task = asyncio.create_task(self._run(principal, record, cases, request.dry_run),
                                       name=f"plans of batch {record.batch_id}")
            self._running[record.batch_id] = task
            task.add_done_callback(lambda _, batch_id=record.batch_id: self._running.pop(batch_id, None))
        return await self.view(principal, record.batch_id)

    async def _run(self, principal: Principal, record: BatchRecord, cases, dry_run: bool) -> None:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(line: int, case_number: str) -> None:
            async with gate:
                try:
                    await self.enforce.enforce(E.EnforceRequest(case_number=case_number, dry_run=dry_run,
                                                                plan_id=plan_id_of(record.batch_id, line)), principal)
                except GatewayError as exc:
                    logger.warning("batch %s, case %s: no plan: %s %s", record.batch_id, case_number,
                                   exc.code.name, exc.message)

        await asyncio.gather(*(one(line, case_number) for line, case_number in cases))
        logger.info("batch %s: %d case(s) %s", record.batch_id, len(cases), "planned" if dry_run else "executed")

    async def view(self, principal: Principal, batch_id: str) -> E.BatchEnforcement:
        record = await self._batch(principal, batch_id)
        shown = E.BatchEnforcement(batch_id=record.batch_id, running=record.batch_id in self._running)
        counts = dict.fromkeys(TOTALS.values(), 0)
        stored_plans = {p.plan_id: p for p in await self.enforce.ledger.plans.with_prefix(
            plan_id_of(record.batch_id, 0)[:-1])}
        for line, case_number in await self._cases(record):
            shown.cases += 1
            row = shown.plans.add(line=line, case_number=case_number, plan_id=plan_id_of(record.batch_id, line))
            stored = stored_plans.get(row.plan_id)
            if stored is None:
                continue
            plan = _parse(stored.body)
            shown.planned += 1
            triage = plan.triage
            row.state, row.triage_class, row.expected_class = plan.state, triage.triage_class, triage.expected_class
            row.deducted_fen, row.frozen_fen, row.owed_fen, row.reason = (
                triage.deducted_fen, triage.frozen_fen, triage.owed_fen, triage.reason)
            if plan.state in (E.PLAN_STATE_DONE, E.PLAN_STATE_WAITING_APPROVAL):
                shown.executed += 1
                counts[TOTALS[triage.triage_class]] += 1
                shown.deducted_fen += triage.deducted_fen
                shown.frozen_fen += triage.frozen_fen
        for name, count in counts.items():
            setattr(shown, name, count)
        return shown

    async def _batch(self, principal: Principal, batch_id: str) -> BatchRecord:
        record = await self.store.batch(batch_id) if batch_id else None
        if record is None:
            raise GatewayError(grpc.StatusCode.NOT_FOUND, f"batch_id: no batch {batch_id!r}")
        decision = authz.decide(principal, authz.READ_BATCH, court_code=record.court_code,
                                executor_id=record.executor_id)
        if not decision.allowed:
            await self.door.record(principal, Call(authz.READ_BATCH, request_id=batch_id), decision.reason)
            raise GatewayError(decision.code, decision.reason)
        return record

    async def _cases(self, record: BatchRecord) -> list[tuple[int, str]]:
        """Each case the batch's rows name once, with its first line, in line order."""
        seen: dict[str, int] = {}
        after = 0
        while items := await self.store.items(record.batch_id, after, PAGE):
            for item in items:
                seen.setdefault(item.case_number, item.line)
            after = items[-1].line
        return [(line, case_number) for case_number, line in seen.items()]
