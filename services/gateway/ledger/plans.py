"""The ledger's enforcement plans (migration 6): SQL for plans and their approvals, on either backend.

A plan is one row: its body (the Plan message, proto3 JSON, written and read
by services/gateway/enforce/) and the columns it is looked up by. One
gateway at a time changes a plan: it holds the plan's lease (`claim`), and
every save checks the version it read, so a save from a stale read changes
nothing. The plan's steps are ordinary actions in `actions`.
"""

import dataclasses
from dataclasses import dataclass

from services.gateway.ledger.db import UniqueViolation

# PlanState and ApprovalState numbers, as in protos/gateway/v1/enforce.proto
# (tests/test_enforce.py pins them).
PLAN_EXECUTING, PLAN_WAITING = 2, 3
APPROVAL_WAITING = 1
SETTLED_CLASS = 1


@dataclass(frozen=True)
class PlanRecord:
    plan_id: str
    case_number: str
    court_code: str
    requested_by: str
    state: int
    triage: int
    approval_id: str
    approval_state: int
    approval_requested_at_us: int
    approval_expires_at_us: int
    lease_owner: str
    lease_until_us: int
    version: int
    body: str
    created_at_us: int
    updated_at_us: int


_NAMES = [f.name for f in dataclasses.fields(PlanRecord)]
_COLUMNS = ", ".join(_NAMES)
_MARKS = ", ".join(f"${i}" for i in range(1, len(_NAMES) + 1))


def _plan(row) -> PlanRecord:
    return PlanRecord(**{name: row[name] for name in _NAMES})


class PlanStore:
    """The plans of one ledger; `Ledger.plans`."""

    def __init__(self, db):
        self.db = db

    async def insert(self, record: PlanRecord) -> tuple[PlanRecord, bool]:
        """Store a new plan; (the plan stored under its ID, created)."""
        try:
            async with self.db.transaction() as tx:
                existing = await tx.fetchrow("SELECT * FROM plans WHERE plan_id = $1", record.plan_id)
                if existing is not None:
                    return _plan(existing), False
                await tx.execute(f"INSERT INTO plans ({_COLUMNS}) VALUES ({_MARKS})", *dataclasses.astuple(record))
                return record, True
        except UniqueViolation:
            found = await self.get(record.plan_id)
            if found is None:
                raise
            return found, False

    async def get(self, plan_id: str) -> PlanRecord | None:
        async with self.db.transaction(write=False) as tx:
            row = await tx.fetchrow("SELECT * FROM plans WHERE plan_id = $1", plan_id)
        return None if row is None else _plan(row)

    async def by_approval(self, approval_id: str) -> PlanRecord | None:
        async with self.db.transaction(write=False) as tx:
            row = await tx.fetchrow("SELECT * FROM plans WHERE approval_id = $1", approval_id)
        return None if row is None else _plan(row)

    async def save(self, record: PlanRecord, *, now_us: int) -> PlanRecord | None:
        """Write the plan as `record` says, if it is still at `record.version`; the plan saved, or None."""
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "UPDATE plans SET state = $2, triage = $3, approval_id = $4, approval_state = $5,"
                " approval_requested_at_us = $6, approval_expires_at_us = $7, body = $8, updated_at_us = $9,"
                " version = version + 1 WHERE plan_id = $1 AND version = $10 RETURNING *",
                record.plan_id, record.state, record.triage, record.approval_id, record.approval_state,
                record.approval_requested_at_us, record.approval_expires_at_us, record.body, now_us, record.version,
            )
        return None if row is None else _plan(row)

    async def claim(self, plan_id: str, *, owner: str, now_us: int, lease_until_us: int) -> PlanRecord | None:
        """Lease the plan to `owner` unless another's lease runs; None when not claimed."""
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "UPDATE plans SET lease_owner = $2, lease_until_us = $3"
                " WHERE plan_id = $1 AND (lease_until_us <= $4 OR lease_owner = $2) RETURNING *",
                plan_id, owner, lease_until_us, now_us,
            )
        return None if row is None else _plan(row)

    async def release(self, plan_id: str, owner: str, *, retry_at_us: int = 0) -> None:
        """Give the lease up; the resumer takes an unfinished plan again from `retry_at_us`."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE plans SET lease_owner = '', lease_until_us = $3 WHERE plan_id = $1 AND lease_owner = $2",
                plan_id, owner, retry_at_us,
            )

    async def release_all(self, owner: str) -> int:
        async with self.db.transaction() as tx:
            return await tx.execute(
                "UPDATE plans SET lease_owner = '', lease_until_us = 0 WHERE lease_owner = $1", owner
            )

    async def due(self, now_us: int, limit: int) -> list[PlanRecord]:
        """Executing plans no one is executing now (a crash, an agency that did not answer), oldest first."""
        async with self.db.transaction(write=False) as tx:
            rows = await tx.fetch(
                "SELECT * FROM plans WHERE state = $1 AND lease_until_us <= $2 ORDER BY lease_until_us, plan_id"
                " LIMIT $3",
                PLAN_EXECUTING, now_us, limit,
            )
        return [_plan(r) for r in rows]

    async def expired_approvals(self, now_us: int, limit: int) -> list[PlanRecord]:
        async with self.db.transaction(write=False) as tx:
            rows = await tx.fetch(
                "SELECT * FROM plans WHERE approval_state = $1 AND approval_expires_at_us <= $2"
                " ORDER BY approval_expires_at_us, plan_id LIMIT $3",
                APPROVAL_WAITING, now_us, limit,
            )
        return [_plan(r) for r in rows]

    async def approvals(self, court_code: str, *, waiting_only: bool, limit: int = 500) -> list[PlanRecord]:
        """The plans of the court that needed approval, oldest request first."""
        async with self.db.transaction(write=False) as tx:
            rows = await tx.fetch(
                "SELECT * FROM plans WHERE court_code = $1 AND approval_id <> ''"
                " AND (approval_state = $2 OR NOT $3) ORDER BY approval_requested_at_us, plan_id LIMIT $4",
                court_code, APPROVAL_WAITING, waiting_only, limit,
            )
        return [_plan(r) for r in rows]

    async def of_case(self, case_number: str, limit: int = 50) -> list[PlanRecord]:
        """The case's newest plans, oldest first."""
        async with self.db.transaction(write=False) as tx:
            rows = await tx.fetch(
                "SELECT * FROM plans WHERE case_number = $1 ORDER BY created_at_us DESC, plan_id DESC LIMIT $2",
                case_number, limit,
            )
        return [_plan(r) for r in reversed(rows)]

    async def with_prefix(self, prefix: str) -> list[PlanRecord]:
        """The plans whose IDs start with `prefix` (a batch's: pl-<batch_id>-), by the primary key's range."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        async with self.db.transaction(write=False) as tx:
            rows = await tx.fetch("SELECT * FROM plans WHERE plan_id >= $1 AND plan_id < $2", prefix, end)
        return [_plan(r) for r in rows]

    async def court_triage(self, court_code: str, since_us: int) -> tuple[list[tuple[str, int, int]], int]:
        """The court's triaged plans made since `since_us` as (case number, triage, made at), and how many
        of its approvals wait now: what the court report shows."""
        async with self.db.transaction(write=False) as tx:
            rows = await tx.fetch(
                "SELECT case_number, triage, created_at_us FROM plans"
                " WHERE court_code = $1 AND created_at_us >= $2 AND triage <> 0 AND state <> $3",
                court_code, since_us, PLAN_WAITING,
            )
            waiting = await tx.fetchval(
                "SELECT COUNT(*) FROM plans WHERE court_code = $1 AND approval_state = $2",
                court_code, APPROVAL_WAITING,
            )
        return [(r["case_number"], r["triage"], r["created_at_us"]) for r in rows], int(waiting)

    async def stats(self) -> tuple[int, int, int, int]:
        """(approvals waiting, the oldest one's request time or 0, cases triaged, cases settled by a plan)."""
        async with self.db.transaction(write=False) as tx:
            row = await tx.fetchrow(
                "SELECT COUNT(*) AS waiting, COALESCE(MIN(approval_requested_at_us), 0) AS oldest FROM plans"
                " WHERE approval_state = $1",
                APPROVAL_WAITING,
            )
            triaged = await tx.fetchval(
                "SELECT COUNT(DISTINCT case_number) FROM plans WHERE triage <> 0 AND state <> $1", PLAN_WAITING
            )
            settled = await tx.fetchval(
                "SELECT COUNT(DISTINCT case_number) FROM plans WHERE triage = $1", SETTLED_CLASS
            )
        return int(row["waiting"]), int(row["oldest"]), int(triaged), int(settled)
