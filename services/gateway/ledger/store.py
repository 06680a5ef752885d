"""The gateway's ledger: cases, their debtors, every action and the holds it placed.

All SQL of the ledger lives here, written once for both backends (db.py).
The control flow that uses it (intent, agency call, outcome) is in
services/gateway/control.py; this module knows no gRPC and no protobuf.

Concurrency: every write that can change what a case may still freeze
(`record_intent`, `record_outcome`) runs in one transaction holding the
case's lock, so rule checks against a case happen one at a time across
every gateway sharing the ledger. An outcome is recorded at most once: it
applies only while the action is still PENDING.
"""

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from services.gateway.ledger.batches import BatchStore
from services.gateway.ledger.db import Database, Tx, UniqueViolation, open_database
from services.gateway.ledger.metrics import TimedDatabase
from services.gateway.ledger.migrations import migrate
from services.gateway.ledger.plans import PlanStore

logger = logging.getLogger(__name__)

# ActionState, HoldState and ActionKind numbers, as in the protos (kept here
# so the ledger needs no generated code; tests/test_ledger.py pins them).
# Migration 1's actions_pending index spells PENDING as a literal 1.
PENDING, SUCCEEDED, REFUSED = 1, 2, 3
HOLD_ACTIVE, HOLD_QUEUED, HOLD_LAPSED = 1, 2, 4
HOLD_TRANSFERRED = 6
KIND_DEDUCT = 4


@dataclass(frozen=True)
class CaseRecord:
    case_number: str
    court_code: str
    executor_id: str
    document_number: str
    amount_owed_fen: int
    costs_fen: int
    content_digest: str
    registered_at_us: int
    # Comma-separated; see migration 2.
    executor_ids: str = ""

    @property
    def assigned_executors(self) -> tuple[str, ...]:
        return tuple(e for e in self.executor_ids.split(",") if e) or (self.executor_id,)


@dataclass(frozen=True)
class DebtorRecord:
    position: int
    subject_type: int
    id_number: str
    name: str


@dataclass(frozen=True)
class ActionRecord:
    action_id: str
    idempotency_key: str
    request_digest: str
    kind: int
    case_number: str
    court_code: str
    executor_id: str
    document_number: str
    agency_id: str
    hold_id: str
    amount_fen: int
    claim_fen: int
    asset_id: str
    subject_type: int
    subject_id: str
    subject_name: str
    agency_method: str
    agency_request: str
    agency_key: str
    state: int
    result: str
    error_code: str
    error_message: str
    attempts: int
    lease_until_us: int
    lease_owner: str
    created_at_us: int
    updated_at_us: int


@dataclass(frozen=True)
class HoldRecord:
    hold_id: str
    case_number: str
    hold_kind: str
    agency_id: str
    agency_kind: str
    agency_hold_id: str
    asset_id: str
    subject_type: int
    subject_id: str
    subject_name: str
    state: int
    requested_fen: int
    frozen_fen: int
    deducted_fen: int
    shortfall_fen: int
    expires_at_us: int
    detail: str
    created_at_us: int
    updated_at_us: int
    # 1 while the state is the gateway's own conclusion (lapsed at its
    # expiry) that the agency has not confirmed yet.
    lapsed_by_gateway: int = 0


@dataclass(frozen=True)
class Totals:
    """What a case holds and has taken, as the ledger knows it."""

    # ACTIVE freezes not yet past their expiry: what they hold now.
    active_frozen_fen: int
    # QUEUED freezes: what they asked for (they may take it all when promoted).
    queued_fen: int
    # PENDING freezes and direct deductions: what they asked for.
    pending_fen: int
    deducted_fen: int

    @property
    def frozen_fen(self) -> int:
        return self.active_frozen_fen + self.queued_fen + self.pending_fen


@dataclass(frozen=True)
class Snapshot:
    """What the rule checks of a new action see, under the case's lock."""

    now_us: int
    case: CaseRecord | None
    debtors: tuple[DebtorRecord, ...]
    totals: Totals
    # The hold named by the action, and the action that placed it (which
    # may still be pending or have been refused, leaving no hold).
    hold: HoldRecord | None
    hold_action: ActionRecord | None


@dataclass(frozen=True)
class Planned:
    """What the rule checks decided the new action is."""

    agency_id: str
    amount_fen: int
    claim_fen: int
    asset_id: str
    subject_type: int
    subject_id: str
    subject_name: str
    agency_method: str
    agency_request: str
    agency_key: str


@dataclass(frozen=True)
class Draft:
    """A new action before its rule checks."""

    action_id: str
    idempotency_key: str
    request_digest: str
    kind: int
    case_number: str
    court_code: str
    executor_id: str
    document_number: str
    hold_id: str


@dataclass(frozen=True)
class HoldUpdate:
    """A hold's state as its agency last reported it."""

    hold_id: str
    state: int
    requested_fen: int
    frozen_fen: int
    deducted_fen: int
    shortfall_fen: int
    expires_at_us: int
    detail: str


@dataclass(frozen=True)
class AgencyHold:
    """A hold as its agency reports it now (a feed change or a case listing), by the agency's ID."""

    agency_hold_id: str
    update: HoldUpdate  # its hold_id is filled in by the ledger


@dataclass(frozen=True)
class SyncedHold:
    """A hold the agency's report changed: as it was and as it is now."""

    before: HoldRecord
    after: HoldRecord


@dataclass(frozen=True)
class HoldChange:
    """How an outcome changes the holds: a new hold, or the last reported
    state of one, plus the seals a transfer ended."""

    insert: HoldRecord | None = None
    update: HoldUpdate | None = None
    # (agency_id, agency seal IDs) a transfer ended: TRANSFERRED.
    transferred: tuple[str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class CaseView:
    case: CaseRecord
    debtors: tuple[DebtorRecord, ...]
    totals: Totals
    holds: tuple[HoldRecord, ...]
    actions: tuple[ActionRecord, ...]
    # Its newest enforcement plans' bodies (ledger/plans.py), oldest first.
    plans: tuple[str, ...] = ()


@dataclass(frozen=True)
class CaseSummaryRecord:
    """A case as a list shows it."""

    case: CaseRecord
    debtors: tuple[DebtorRecord, ...]
    deducted_fen: int
    action_count: int


@dataclass(frozen=True)
class ManagedAgency:
    """An agency registered at run time (the admin API), as the ledger keeps it."""

    agency_id: str
    kind: str
    name: str
    address: str
    timeout_ms: int
    created_at_us: int
    updated_at_us: int


class CaseConflict(Exception):
    """The case is already registered with different content."""

    def __init__(self, existing: CaseRecord):
        super().__init__(existing.case_number)
        self.existing = existing


def _action(row) -> ActionRecord:
    return ActionRecord(**{f.name: row[f.name] for f in dataclasses.fields(ActionRecord)})


def _hold(row) -> HoldRecord:
    return HoldRecord(**{f.name: row[f.name] for f in dataclasses.fields(HoldRecord)})


def _case(row) -> CaseRecord:
    return CaseRecord(**{f.name: row[f.name] for f in dataclasses.fields(CaseRecord)})


def _columns(record_type) -> tuple[str, str]:
    names = [f.name for f in dataclasses.fields(record_type)]
    return ", ".join(names), ", ".join(f"${i}" for i in range(1, len(names) + 1))


_ACTION_COLUMNS, _ACTION_MARKS = _columns(ActionRecord)
_HOLD_COLUMNS, _HOLD_MARKS = _columns(HoldRecord)


class Ledger:
    """The gateway's ledger over one Database; open with `Ledger.open`."""

    def __init__(self, db: Database, description: str):
        # Every transaction timed and its failures seen (chakong_gateway_store_*).
        self.db = TimedDatabase(db)
        self.description = description
        self.plans = PlanStore(self.db)
        # Batches, their items and every query's answers (batches.py).
        self.batches = BatchStore(self.db)

    @classmethod
    async def open(cls, url: str, default_sqlite_path: Path, now_us: int) -> "Ledger":
        db = await open_database(url, default_sqlite_path)
        try:
            await migrate(db, now_us)
        except BaseException:
            await db.close()
            raise
        description = f"{db.dialect} {default_sqlite_path}" if not url else db.dialect
        return cls(db, description)

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> None:
        """The cheapest round trip to the database; /readyz asks it on every call."""
        async with self.db.transaction(write=False) as tx:
            await tx.fetchval("SELECT 1")

    # Cases

    async def court_codes(self) -> list[str]:
        """The courts of every registered case (the metrics' court labels)."""
        async with self.db.transaction(write=False) as tx:
            return [row["court_code"] for row in await tx.fetch("SELECT DISTINCT court_code FROM cases")]

    async def register_case(
        self, case: CaseRecord, debtors: Sequence[DebtorRecord]
    ) -> tuple[CaseRecord, bool]:
        """Register the case, or find it registered with the same content;
        (record, created). CaseConflict when registered with other content."""
        try:
            async with self.db.transaction() as tx:
                existing = await self._case(tx, case.case_number)
                if existing is None:
                    names, marks = _columns(CaseRecord)
                    await tx.execute(
                        f"INSERT INTO cases ({names}) VALUES ({marks})", *dataclasses.astuple(case)
                    )
                    for debtor in debtors:
                        await tx.execute(
                            "INSERT INTO case_debtors (case_number, position, subject_type, id_number, name)"
                            " VALUES ($1, $2, $3, $4, $5)",
                            case.case_number, debtor.position, debtor.subject_type, debtor.id_number, debtor.name,
                        )
                    return case, True
        except UniqueViolation:
            # Registered by someone else between our read and our insert.
            async with self.db.transaction(write=False) as tx:
                existing = await self._case(tx, case.case_number)
        if existing.content_digest != case.content_digest:
            raise CaseConflict(existing)
        return existing, False

    async def case_view(self, case_number: str, now_us: int) -> CaseView | None:
        async with self.db.transaction(write=False) as tx:
            case = await self._case(tx, case_number)
            if case is None:
                return None
            debtors = await self._debtors(tx, case_number)
            totals = await self._totals(tx, case_number, now_us)
            holds = tuple(
                _hold(r)
                for r in await tx.fetch(
                    "SELECT * FROM holds WHERE case_number = $1 ORDER BY created_at_us, hold_id", case_number
                )
            )
            actions = tuple(
                _action(r)
                for r in await tx.fetch(
                    "SELECT * FROM actions WHERE case_number = $1 ORDER BY created_at_us, action_id", case_number
                )
            )
        plans = tuple(plan.body for plan in await self.plans.of_case(case_number))
        return CaseView(case, debtors, totals, holds, actions, plans)

    async def case_parties(self, case_number: str, subject_id: str) -> tuple[CaseRecord, bool] | None:
        """The case, and whether `subject_id` is one of its debtors: what authorization needs.

        One indexed lookup, not the debtor list: a case may have hundreds of
        debtors and this runs on every request.
        """
        async with self.db.transaction(write=False) as tx:
            case = await self._case(tx, case_number)
            if case is None:
                return None
            is_debtor = subject_id != "" and await tx.fetchval(
                "SELECT 1 FROM case_debtors WHERE case_number = $1 AND id_number = $2", case_number, subject_id
            ) is not None
            return case, is_debtor

    async def list_cases(
        self, court_code: str, executor_id: str | None, search: str, limit: int
    ) -> list[CaseSummaryRecord]:
        """The court's cases, newest first; only those `executor_id` is assigned to unless it is None;
        `search` a part of the case number or of a debtor's name or ID ('' for all)."""
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        async with self.db.transaction(write=False) as tx:
            rows = await tx.fetch(
                """
                SELECT c.*,
                  (SELECT COALESCE(SUM(amount_fen), 0) FROM actions a
                    WHERE a.case_number = c.case_number AND a.state = $4 AND a.kind = $5) AS deducted_fen,
                  (SELECT COUNT(*) FROM actions a WHERE a.case_number = c.case_number) AS action_count
                FROM cases c
                WHERE c.court_code = $1
                  AND ($2 = '' OR ',' || c.executor_ids || ',' LIKE '%,' || $2 || ',%'
                       OR (c.executor_ids = '' AND c.executor_id = $2))
                  AND ($3 = '%%' OR c.case_number LIKE $3 ESCAPE '\\' OR EXISTS (
                       SELECT 1 FROM case_debtors d WHERE d.case_number = c.case_number
                        AND (d.name LIKE $3 ESCAPE '\\' OR d.id_number LIKE $3 ESCAPE '\\')))
                ORDER BY c.registered_at_us DESC, c.case_number
                LIMIT $6
                """,
                court_code, executor_id or "", pattern, SUCCEEDED, KIND_DEDUCT, limit,
            )
            found = []
            for row in rows:
                case = _case(row)
                found.append(CaseSummaryRecord(case, await self._debtors(tx, case.case_number),
                                               int(row["deducted_fen"]), int(row["action_count"])))
        return found

    async def court_activity(self, court_code: str, since_us: int) -> tuple[list[int], list[ActionRecord]]:
        """When each of the court's cases was registered since `since_us`, and the actions asked since."""
        async with self.db.transaction(write=False) as tx:
            registered = [int(r["registered_at_us"]) for r in await tx.fetch(
                "SELECT registered_at_us FROM cases WHERE court_code = $1 AND registered_at_us >= $2",
                court_code, since_us)]
            actions = [_action(r) for r in await tx.fetch(
                "SELECT * FROM actions WHERE court_code = $1 AND created_at_us >= $2 ORDER BY created_at_us",
                court_code, since_us)]
        return registered, actions

    async def registered_at(self, court_code: str, case_numbers: Sequence[str]) -> dict[str, int]:
        """When each of the named cases of the court was registered (unknown ones left out)."""
        async with self.db.transaction(write=False) as tx:
            found = {}
            for case_number in case_numbers:
                value = await tx.fetchval(
                    "SELECT registered_at_us FROM cases WHERE case_number = $1 AND court_code = $2",
                    case_number, court_code)
                if value is not None:
                    found[case_number] = int(value)
        return found

    async def _case(self, tx: Tx, case_number: str) -> CaseRecord | None:
        row = await tx.fetchrow("SELECT * FROM cases WHERE case_number = $1", case_number)
        return None if row is None else _case(row)

    async def _debtors(self, tx: Tx, case_number: str) -> tuple[DebtorRecord, ...]:
        rows = await tx.fetch(
            "SELECT position, subject_type, id_number, name FROM case_debtors WHERE case_number = $1"
            " ORDER BY position",
            case_number,
        )
        return tuple(DebtorRecord(r["position"], r["subject_type"], r["id_number"], r["name"]) for r in rows)

    async def _totals(self, tx: Tx, case_number: str, now_us: int) -> Totals:
        row = await tx.fetchrow(
            """
            SELECT
              (SELECT COALESCE(SUM(frozen_fen), 0) FROM holds
                WHERE case_number = $1 AND hold_kind = 'freeze' AND state = $2 AND expires_at_us > $4) AS active,
              (SELECT COALESCE(SUM(requested_fen), 0) FROM holds
                WHERE case_number = $1 AND hold_kind = 'freeze' AND state = $3) AS queued,
              (SELECT COALESCE(SUM(claim_fen), 0) FROM actions
                WHERE case_number = $1 AND state = $5) AS pending,
              (SELECT COALESCE(SUM(amount_fen), 0) FROM actions
                WHERE case_number = $1 AND state = $6 AND kind = $7) AS deducted
            """,
            case_number, HOLD_ACTIVE, HOLD_QUEUED, now_us, PENDING, SUCCEEDED, KIND_DEDUCT,
        )
        return Totals(int(row["active"]), int(row["queued"]), int(row["pending"]), int(row["deducted"]))

    # Actions

    async def action_by_key(self, idempotency_key: str) -> ActionRecord | None:
        async with self.db.transaction(write=False) as tx:
            row = await tx.fetchrow("SELECT * FROM actions WHERE idempotency_key = $1", idempotency_key)
        return None if row is None else _action(row)

    async def action(self, action_id: str) -> ActionRecord | None:
        async with self.db.transaction(write=False) as tx:
            row = await tx.fetchrow("SELECT * FROM actions WHERE action_id = $1", action_id)
        return None if row is None else _action(row)

    async def record_intent(
        self,
        draft: Draft,
        plan: Callable[[Snapshot], Planned],
        *,
        now_us: int,
        lease_owner: str,
        lease_until_us: int,
    ) -> tuple[ActionRecord, bool]:
        """Check the rules and record the action PENDING, leased to `lease_owner`.

        Returns (action, created). When the key is already recorded, that
        action is returned with created False and `plan` is not run; the
        caller compares digests. `plan` raises to refuse: nothing is written.
        """
        try:
            async with self.db.transaction() as tx:
                await tx.lock_case(draft.case_number)
                row = await tx.fetchrow("SELECT * FROM actions WHERE idempotency_key = $1", draft.idempotency_key)
                if row is not None:
                    return _action(row), False
                case = await self._case(tx, draft.case_number)
                debtors = await self._debtors(tx, draft.case_number) if case else ()
                totals = await self._totals(tx, draft.case_number, now_us)
                hold = hold_action = None
                if draft.hold_id:
                    found = await tx.fetchrow("SELECT * FROM holds WHERE hold_id = $1", draft.hold_id)
                    hold = None if found is None else _hold(found)
                    found = await tx.fetchrow("SELECT * FROM actions WHERE action_id = $1", draft.hold_id)
                    hold_action = None if found is None else _action(found)
                planned = plan(Snapshot(now_us, case, debtors, totals, hold, hold_action))
                action = ActionRecord(
                    **dataclasses.asdict(draft),
                    **dataclasses.asdict(planned),
                    state=PENDING,
                    result="",
                    error_code="",
                    error_message="",
                    attempts=0,
                    lease_until_us=lease_until_us,
                    lease_owner=lease_owner,
                    created_at_us=now_us,
                    updated_at_us=now_us,
                )
                await tx.execute(
                    f"INSERT INTO actions ({_ACTION_COLUMNS}) VALUES ({_ACTION_MARKS})", *dataclasses.astuple(action)
                )
                return action, True
        except UniqueViolation:
            # The same key, recorded for another case by a request racing ours.
            existing = await self.action_by_key(draft.idempotency_key)
            if existing is None:
                raise
            return existing, False

    async def claim(
        self, action_id: str, *, owner: str, now_us: int, lease_until_us: int, unowned_ok: bool
    ) -> ActionRecord | None:
        """Lease a PENDING action to `owner` if no one else's lease is running;
        `unowned_ok` also takes one waiting for its next retry that no one is
        driving. None when not claimed."""
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "UPDATE actions SET lease_owner = $2, lease_until_us = $3, updated_at_us = $4"
                " WHERE action_id = $1 AND state = $5 AND (lease_until_us <= $4 OR ($6 AND lease_owner = ''))"
                " RETURNING *",
                action_id, owner, lease_until_us, now_us, PENDING, unowned_ok,
            )
        return None if row is None else _action(row)

    async def record_outcome(
        self,
        action: ActionRecord,
        *,
        state: int,
        result: str,
        error_code: str,
        error_message: str,
        attempts: int,
        now_us: int,
        change: HoldChange | None = None,
    ) -> ActionRecord | None:
        """SUCCEEDED or REFUSED, with the holds it changed, once: None when the
        action was no longer PENDING (another driver recorded it first)."""
        async with self.db.transaction() as tx:
            # The totals the rule checks read change here: same lock as they take.
            await tx.lock_case(action.case_number)
            row = await tx.fetchrow(
                "UPDATE actions SET state = $2, result = $3, error_code = $4, error_message = $5,"
                " attempts = attempts + $6, lease_until_us = 0, lease_owner = '', updated_at_us = $7"
                " WHERE action_id = $1 AND state = $8 RETURNING *",
                action.action_id, state, result, error_code, error_message, attempts, now_us, PENDING,
            )
            if row is None:
                return None
            if change is not None:
                await self._apply(tx, change, now_us)
        return _action(row)

    async def _apply(self, tx: Tx, change: HoldChange, now_us: int) -> None:
        if change.insert is not None:
            await tx.execute(
                f"INSERT INTO holds ({_HOLD_COLUMNS}) VALUES ({_HOLD_MARKS})", *dataclasses.astuple(change.insert)
            )
        if change.update is not None:
            h = change.update
            # Replies to concurrent deductions from one freeze can be recorded
            # in another order than the agency acted in; what it has deducted
            # only grows, so a reply showing less than is recorded is older.
            await tx.execute(
                "UPDATE holds SET state = $2, requested_fen = $3, frozen_fen = $4, deducted_fen = $5,"
                " shortfall_fen = $6, expires_at_us = $7, detail = $8, updated_at_us = $9"
                " WHERE hold_id = $1 AND deducted_fen <= $5",
                h.hold_id, h.state, h.requested_fen, h.frozen_fen, h.deducted_fen, h.shortfall_fen,
                h.expires_at_us, h.detail, now_us,
            )
        if change.transferred is not None:
            agency_id, seal_ids = change.transferred
            for seal_id in seal_ids:
                await tx.execute(
                    "UPDATE holds SET state = $3, updated_at_us = $4 WHERE agency_id = $1 AND agency_hold_id = $2",
                    agency_id, seal_id, HOLD_TRANSFERRED, now_us,
                )

    async def record_failure(
        self,
        action: ActionRecord,
        *,
        owner: str,
        error_code: str,
        error_message: str,
        attempts: int,
        retry_at_us: int,
        now_us: int,
    ) -> None:
        """The action stays PENDING; the re-driver takes it again at retry_at_us."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE actions SET error_code = $2, error_message = $3, attempts = attempts + $4,"
                " lease_until_us = $5, lease_owner = '', updated_at_us = $6"
                " WHERE action_id = $1 AND state = $7 AND lease_owner = $8",
                action.action_id, error_code, error_message, attempts, retry_at_us, now_us, PENDING, owner,
            )

    async def due_actions(self, now_us: int, limit: int) -> list[ActionRecord]:
        """PENDING actions whose lease (or retry wait) is over, oldest first."""
        async with self.db.transaction(write=False) as tx:
            rows = await tx.fetch(
                "SELECT * FROM actions WHERE state = $1 AND lease_until_us <= $2"
                " ORDER BY lease_until_us, action_id LIMIT $3",
                PENDING, now_us, limit,
            )
        return [_action(r) for r in rows]

    async def pending_count(self) -> int:
        async with self.db.transaction(write=False) as tx:
            return int(await tx.fetchval("SELECT COUNT(*) FROM actions WHERE state = $1", PENDING))

    async def release_leases(self, owner: str) -> int:
        """On a clean stop: hand what this gateway was driving to the others at once."""
        async with self.db.transaction() as tx:
            return await tx.execute(
                "UPDATE actions SET lease_until_us = 0, lease_owner = '' WHERE state = $1 AND lease_owner = $2",
                PENDING, owner,
            )

    # Holds kept in step with the agencies (the hold changes feeds)

    async def claim_feed(self, agency_id: str, *, owner: str, now_us: int, lease_until_us: int) -> int | None:
        """Take or renew the lease on the agency's feed; its cursor, or None while another gateway holds it."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO hold_feeds (agency_id, cursor, lease_owner, lease_until_us, synced_at_us)"
                " VALUES ($1, 0, '', 0, 0) ON CONFLICT (agency_id) DO NOTHING",
                agency_id,
            )
            return await tx.fetchval(
                "UPDATE hold_feeds SET lease_owner = $2, lease_until_us = $3"
                " WHERE agency_id = $1 AND (lease_owner = $2 OR lease_until_us <= $4) RETURNING cursor",
                agency_id, owner, lease_until_us, now_us,
            )

    async def apply_agency_holds(
        self, agency_id: str, reported: Sequence[AgencyHold], *, now_us: int, owner: str = "", cursor: int | None = None
    ) -> list[SyncedHold] | None:
        """Set each hold the agency reports to its reported state, where it differs; the holds that changed.

        With `cursor` (a feed page), also advance the agency's cursor, in the
        same transaction, and only while `owner` holds the feed's lease: None
        when it no longer does (nothing is applied then). Holds of other
        gateways' ledgers or placed outside chakong are not ours: skipped.
        """
        async with self.db.transaction() as tx:
            if cursor is not None:
                moved = await tx.execute(
                    "UPDATE hold_feeds SET cursor = $3, synced_at_us = $4 WHERE agency_id = $1 AND lease_owner = $2",
                    agency_id, owner, cursor, now_us,
                )
                if not moved:
                    return None
            latest: dict[str, HoldUpdate] = {}
            for hold in reported:  # a later report of one hold wins
                latest[hold.agency_hold_id] = hold.update
            found = []
            for agency_hold_id, update in latest.items():
                row = await tx.fetchrow(
                    "SELECT hold_id, case_number FROM holds WHERE agency_id = $1 AND agency_hold_id = $2",
                    agency_id, agency_hold_id,
                )
                if row is not None:
                    found.append((row["case_number"], row["hold_id"], update))
            # Case locks in one order, so two feeds' transactions never wait on each other in a cycle.
            found.sort(key=lambda item: item[:2])
            for case_number in dict.fromkeys(case for case, _, _ in found):
                await tx.lock_case(case_number)
            synced = []
            for _, hold_id, update in found:
                # Read under the lock: another report of the hold may have been applied meanwhile.
                before = _hold(await tx.fetchrow("SELECT * FROM holds WHERE hold_id = $1", hold_id))
                if same_state(before, update) and not before.lapsed_by_gateway:
                    continue
                row = await tx.fetchrow(
                    "UPDATE holds SET state = $2, requested_fen = $3, frozen_fen = $4, deducted_fen = $5,"
                    " shortfall_fen = $6, expires_at_us = $7, detail = $8, updated_at_us = $9,"
                    " lapsed_by_gateway = 0 WHERE hold_id = $1 RETURNING *",
                    hold_id, update.state, update.requested_fen, update.frozen_fen, update.deducted_fen,
                    update.shortfall_fen, update.expires_at_us, update.detail, now_us,
                )
                synced.append(SyncedHold(before, _hold(row)))
        return synced

    async def reset_feed(self, agency_id: str, *, owner: str, now_us: int) -> bool:
        """Read the agency's feed from its start again (its feed was reset); False when the lease is not ours."""
        async with self.db.transaction() as tx:
            return bool(await tx.execute(
                "UPDATE hold_feeds SET cursor = 0, synced_at_us = $3 WHERE agency_id = $1 AND lease_owner = $2",
                agency_id, owner, now_us,
            ))

    async def lapse_expired(self, now_us: int) -> list[HoldRecord]:
        """Mark ACTIVE holds past their expiry LAPSED, as the gateway's own conclusion until the agency confirms."""
        async with self.db.transaction(write=False) as tx:
            # Most sweeps find nothing: a read, not a write transaction (and its commit) each time.
            if await tx.fetchval(
                "SELECT 1 FROM holds WHERE state = $1 AND expires_at_us > 0 AND expires_at_us <= $2 LIMIT 1",
                HOLD_ACTIVE, now_us,
            ) is None:
                return []
        async with self.db.transaction() as tx:
            due = await tx.fetch(
                "SELECT hold_id, case_number FROM holds WHERE state = $1 AND expires_at_us > 0"
                " AND expires_at_us <= $2 ORDER BY case_number, hold_id",
                HOLD_ACTIVE, now_us,
            )
            lapsed = []
            for case_number in sorted({row["case_number"] for row in due}):
                await tx.lock_case(case_number)
            for row in due:
                updated = await tx.fetchrow(
                    "UPDATE holds SET state = $2, frozen_fen = 0, lapsed_by_gateway = 1, updated_at_us = $3"
                    " WHERE hold_id = $1 AND state = $4 RETURNING *",
                    row["hold_id"], HOLD_LAPSED, now_us, HOLD_ACTIVE,
                )
                if updated is not None:
                    lapsed.append(_hold(updated))
        return lapsed

    async def live_holds(self, agency_id: str) -> list[tuple[HoldRecord, CaseRecord]]:
        """The agency's holds in force, queued or lapsed by the gateway, with their cases: what
        reconciliation compares."""
        async with self.db.transaction(write=False) as tx:
            rows = await tx.fetch(
                "SELECT holds.* FROM holds"
                " JOIN cases ON cases.case_number = holds.case_number"
                " WHERE holds.agency_id = $1 AND (holds.state = $2 OR holds.state = $3 OR holds.lapsed_by_gateway = 1)"
                " ORDER BY holds.case_number, holds.hold_id",
                agency_id, HOLD_ACTIVE, HOLD_QUEUED,
            )
            cases = {number: await self._case(tx, number) for number in {row["case_number"] for row in rows}}
        return [(_hold(row), cases[row["case_number"]]) for row in rows]

    async def hold_state_counts(self) -> dict[int, int]:
        async with self.db.transaction(write=False) as tx:
            rows = await tx.fetch("SELECT state, COUNT(*) AS n FROM holds GROUP BY state")
        return {int(row["state"]): int(row["n"]) for row in rows}

    async def release_feed_leases(self, owner: str) -> int:
        async with self.db.transaction() as tx:
            return await tx.execute(
                "UPDATE hold_feeds SET lease_owner = '', lease_until_us = 0 WHERE lease_owner = $1", owner
            )


    # Agencies registered at run time

    async def managed_agencies(self) -> tuple[int, tuple[ManagedAgency, ...]]:
        """(revision, agencies in registration order); the revision moves with every change."""
        async with self.db.transaction(write=False) as tx:
            revision = int(await tx.fetchval("SELECT revision FROM agency_registry WHERE id = 1"))
            rows = await tx.fetch("SELECT * FROM managed_agencies ORDER BY created_at_us, agency_id")
        return revision, tuple(ManagedAgency(**{f.name: r[f.name] for f in dataclasses.fields(ManagedAgency)})
                               for r in rows)

    async def agency_revision(self) -> int:
        async with self.db.transaction(write=False) as tx:
            return int(await tx.fetchval("SELECT revision FROM agency_registry WHERE id = 1"))

    async def register_agency(self, agency: ManagedAgency) -> bool:
        """False when the ID is already registered here."""
        try:
            async with self.db.transaction() as tx:
                names, marks = _columns(ManagedAgency)
                await tx.execute(f"INSERT INTO managed_agencies ({names}) VALUES ({marks})",
                                 *dataclasses.astuple(agency))
                await tx.execute("UPDATE agency_registry SET revision = revision + 1 WHERE id = 1")
        except UniqueViolation:
            return False
        return True

    async def update_agency(self, agency: ManagedAgency) -> ManagedAgency | None:
        """The entry as updated (created_at kept), or None when the ID is not registered here."""
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "UPDATE managed_agencies SET kind = $2, name = $3, address = $4, timeout_ms = $5, updated_at_us = $6"
                " WHERE agency_id = $1 RETURNING *",
                agency.agency_id, agency.kind, agency.name, agency.address, agency.timeout_ms, agency.updated_at_us,
            )
            if row is None:
                return None
            await tx.execute("UPDATE agency_registry SET revision = revision + 1 WHERE id = 1")
        return ManagedAgency(**{f.name: row[f.name] for f in dataclasses.fields(ManagedAgency)})

    async def remove_agency(self, agency_id: str) -> ManagedAgency | None:
        """The entry removed, or None when the ID is not registered here."""
        async with self.db.transaction() as tx:
            row = await tx.fetchrow("DELETE FROM managed_agencies WHERE agency_id = $1 RETURNING *", agency_id)
            if row is None:
                return None
            await tx.execute("UPDATE agency_registry SET revision = revision + 1 WHERE id = 1")
        return ManagedAgency(**{f.name: row[f.name] for f in dataclasses.fields(ManagedAgency)})


def same_state(hold: HoldRecord, update: HoldUpdate) -> bool:
    """Does the agency's report say what the ledger has?"""
    return (
        hold.state, hold.requested_fen, hold.frozen_fen, hold.deducted_fen, hold.shortfall_fen, hold.expires_at_us
    ) == (
        update.state, update.requested_fen, update.frozen_fen, update.deducted_fen, update.shortfall_fen,
        update.expires_at_us,
    )
