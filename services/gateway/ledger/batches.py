"""The ledger's SQL for batches, their items, and every query with each agency's answer (migration 5).

A batch is a queue kept in the ledger itself, so that it is as durable as
the cases it asks about and needs no other server: items are claimed under
a lease (`claim_items`): on PostgreSQL with FOR UPDATE SKIP LOCKED, so
gateways sharing one ledger take disjoint items without waiting on each
other; on SQLite BEGIN IMMEDIATE already serializes the claim. An item
whose gateway died is claimed again when its lease runs out, and only the
agencies without a final answer are asked again (`open_answers`).
"""

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass

from services.gateway.ledger.db import Tx

RUNNING, DONE, CANCELLED = "RUNNING", "DONE", "CANCELLED"
BATCH_STATES = (RUNNING, DONE, CANCELLED)
# Item states.
ITEM_PENDING, ITEM_DONE, ITEM_CANCELLED = "PENDING", "DONE", "CANCELLED"
ITEM_STATES = (ITEM_PENDING, ITEM_DONE, ITEM_CANCELLED)
# An answer's status: the AgencyStatus name without its prefix, or PENDING until it is in.
ANSWER_PENDING = "PENDING"
INTERACTIVE, BATCH = "interactive", "batch"

# Rows per multi-row INSERT: well inside both backends' limits on parameters.
_INSERT_CHUNK = 500


@dataclass(frozen=True)
class BatchRecord:
    batch_id: str
    court_code: str
    executor_id: str
    state: str
    total: int
    agency_ids: str
    rejected: str
    source: str
    created_at_us: int
    updated_at_us: int
    finished_at_us: int

    @property
    def agencies(self) -> tuple[str, ...]:
        return tuple(a for a in self.agency_ids.split(",") if a)

    @property
    def rejected_rows(self) -> list[dict]:
        return json.loads(self.rejected)


@dataclass(frozen=True)
class BatchItem:
    batch_id: str
    line: int
    case_number: str
    court_code: str
    document_number: str
    subject_type: int
    subject_id: str
    subject_name: str
    state: str
    query_id: str
    lease_owner: str
    lease_until_us: int
    updated_at_us: int


@dataclass(frozen=True)
class QueryRecord:
    query_id: str
    origin: str
    batch_id: str
    case_number: str
    court_code: str
    executor_id: str
    subject_type: int
    subject_id: str
    created_at_us: int


@dataclass(frozen=True)
class AnswerRecord:
    query_id: str
    agency_id: str
    batch_id: str
    status: str
    # The AgencyResult, proto3 JSON ('' while PENDING).
    result: str
    asked_at_us: int
    window_until_us: int
    arrived_at_us: int
    late: int


@dataclass(frozen=True)
class BatchCounts:
    """Where a batch stands: items by state, and each agency's answers by status."""

    items: dict[str, int]
    answers: dict[str, dict[str, int]]


def _names(record_type) -> list[str]:
    return [f.name for f in dataclasses.fields(record_type)]


async def _insert_many(tx: Tx, table: str, record_type, rows: Sequence) -> None:
    names = _names(record_type)
    width = len(names)
    for start in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[start:start + _INSERT_CHUNK]
        marks = ", ".join(
            "(" + ", ".join(f"${i * width + j + 1}" for j in range(width)) + ")" for i in range(len(chunk))
        )
        args = [value for row in chunk for value in dataclasses.astuple(row)]
        await tx.execute(f"INSERT INTO {table} ({', '.join(names)}) VALUES {marks}", *args)


async def _upsert_answers(tx: Tx, answers: Sequence[AnswerRecord], update: str) -> None:
    """Insert the answer rows; a row already there is updated by `update` only while it is PENDING."""
    names = _names(AnswerRecord)
    width = len(names)
    pending = _sql_text(ANSWER_PENDING)
    for start in range(0, len(answers), _INSERT_CHUNK):
        chunk = answers[start:start + _INSERT_CHUNK]
        marks = ", ".join(
            "(" + ", ".join(f"${i * width + j + 1}" for j in range(width)) + ")" for i in range(len(chunk))
        )
        await tx.execute(
            f"INSERT INTO query_answers ({', '.join(names)}) VALUES {marks}"
            f" ON CONFLICT (query_id, agency_id) DO UPDATE SET {update} WHERE query_answers.status = {pending}",
            *(value for answer in chunk for value in dataclasses.astuple(answer)),
        )


def _sql_text(value: str) -> str:
    # A constant of this module, never input.
    assert value.isalnum()
    return f"'{value}'"


async def _answer(tx: Tx, answer: AnswerRecord) -> bool:
    return bool(await tx.execute(
        "UPDATE query_answers SET status = $3, result = $4, arrived_at_us = $5, late = $6"
        " WHERE query_id = $1 AND agency_id = $2 AND status = $7",
        answer.query_id, answer.agency_id, answer.status, answer.result, answer.arrived_at_us, answer.late,
        ANSWER_PENDING,
    ))


class BatchStore:
    """Batches, their items and every query's answers, over the ledger's database."""

    def __init__(self, db):
        self.db = db

    # Batches

    async def create(self, batch: BatchRecord, items: Sequence[BatchItem], queries: Sequence[QueryRecord]) -> None:
        """The batch, its items and their queries, in one transaction: all of it or nothing."""
        async with self.db.transaction() as tx:
            await _insert_many(tx, "batches", BatchRecord, [batch])
            await _insert_many(tx, "queries", QueryRecord, queries)
            await _insert_many(tx, "batch_items", BatchItem, items)

    async def batch(self, batch_id: str) -> BatchRecord | None:
        async with self.db.transaction(write=False) as tx:
            row = await tx.fetchrow("SELECT * FROM batches WHERE batch_id = $1", batch_id)
        return None if row is None else BatchRecord(**dict(row))

    async def batches_of_court(self, court_code: str, limit: int) -> list[BatchRecord]:
        async with self.db.transaction(write=False) as tx:
            rows = await tx.fetch(
                "SELECT * FROM batches WHERE court_code = $1 ORDER BY created_at_us DESC, batch_id LIMIT $2",
                court_code, limit,
            )
        return [BatchRecord(**dict(r)) for r in rows]

    async def counts(self, batch_id: str) -> BatchCounts:
        async with self.db.transaction(write=False) as tx:
            items = {
                r["state"]: int(r["n"])
                for r in await tx.fetch(
                    "SELECT state, COUNT(*) AS n FROM batch_items WHERE batch_id = $1 GROUP BY state", batch_id
                )
            }
            answers: dict[str, dict[str, int]] = {}
            for r in await tx.fetch(
                "SELECT agency_id, status, COUNT(*) AS n FROM query_answers WHERE batch_id = $1"
                " GROUP BY agency_id, status",
                batch_id,
            ):
                answers.setdefault(r["agency_id"], {})[r["status"]] = int(r["n"])
        return BatchCounts(items, answers)

    async def cancel(self, batch_id: str, now_us: int) -> bool:
        """Stop asking: RUNNING becomes CANCELLED and its PENDING items too; False if it had ended."""
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE batches SET state = $2, updated_at_us = $3, finished_at_us = $3"
                " WHERE batch_id = $1 AND state = $4",
                batch_id, CANCELLED, now_us, RUNNING,
            )
            if changed:
                await tx.execute(
                    "UPDATE batch_items SET state = $2, updated_at_us = $3 WHERE batch_id = $1 AND state = $4",
                    batch_id, ITEM_CANCELLED, now_us, ITEM_PENDING,
                )
        return bool(changed)

    # Items, as the workers take them

    async def claim_items(self, owner: str, now_us: int, lease_until_us: int, limit: int) -> list[BatchItem]:
        """Up to `limit` PENDING items no live lease holds, leased to `owner`, oldest batch first."""
        skip_locked = " FOR UPDATE SKIP LOCKED" if self.db.dialect == "postgresql" else ""
        async with self.db.transaction() as tx:
            rows = await tx.fetch(
                "UPDATE batch_items SET lease_owner = $1, lease_until_us = $2"
                " WHERE (batch_id, line) IN ("
                "  SELECT batch_id, line FROM batch_items WHERE state = $3 AND lease_until_us <= $4"
                f"  ORDER BY lease_until_us, batch_id, line LIMIT $5{skip_locked})"
                " RETURNING *",
                owner, lease_until_us, ITEM_PENDING, now_us, limit,
            )
        return sorted((BatchItem(**dict(r)) for r in rows), key=lambda item: (item.batch_id, item.line))

    async def renew_leases(self, owner: str, lease_until_us: int) -> int:
        async with self.db.transaction() as tx:
            return await tx.execute(
                "UPDATE batch_items SET lease_until_us = $2 WHERE lease_owner = $1 AND state = $3",
                owner, lease_until_us, ITEM_PENDING,
            )

    async def release_leases(self, owner: str) -> int:
        """On a clean stop: what this gateway was asking goes to the others at once."""
        async with self.db.transaction() as tx:
            return await tx.execute(
                "UPDATE batch_items SET lease_until_us = 0 WHERE lease_owner = $1 AND state = $2",
                owner, ITEM_PENDING,
            )

    async def record_progress(self, asks: Sequence[AnswerRecord], answers: Sequence[AnswerRecord],
                              finished: Sequence[BatchItem], owner: str, now_us: int) -> None:
        """In one transaction (a group commit of many items' progress), a few statements whatever the number
        of rows: agencies being asked (PENDING), answers arrived (each stored once: only over PENDING), and
        items DONE (only while `owner` still holds them), with their batches DONE when nothing is left."""
        async with self.db.transaction() as tx:
            await _upsert_answers(tx, asks, "asked_at_us = excluded.asked_at_us")
            await _upsert_answers(tx, answers, "status = excluded.status, result = excluded.result,"
                                               " arrived_at_us = excluded.arrived_at_us, late = excluded.late")
            by_batch: dict[str, list[int]] = {}
            for item in finished:
                by_batch.setdefault(item.batch_id, []).append(item.line)
            for batch_id, lines in sorted(by_batch.items()):
                for start in range(0, len(lines), _INSERT_CHUNK):
                    chunk = lines[start:start + _INSERT_CHUNK]
                    marks = ", ".join(f"${i + 6}" for i in range(len(chunk)))
                    await tx.execute(
                        "UPDATE batch_items SET state = $3, updated_at_us = $4"
                        f" WHERE batch_id = $1 AND lease_owner = $2 AND state = $5 AND line IN ({marks})",
                        batch_id, owner, ITEM_DONE, now_us, ITEM_PENDING, *chunk,
                    )
                await tx.execute(
                    "UPDATE batches SET state = $2, updated_at_us = $3, finished_at_us = $3"
                    " WHERE batch_id = $1 AND state = $4 AND NOT EXISTS"
                    " (SELECT 1 FROM batch_items WHERE batch_id = $1 AND state = $5)",
                    batch_id, DONE, now_us, RUNNING, ITEM_PENDING,
                )

    async def finish_empty(self, batch_id: str, now_us: int) -> None:
        """A batch with no runnable item (every row refused) is done at once."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE batches SET state = $2, updated_at_us = $3, finished_at_us = $3"
                " WHERE batch_id = $1 AND state = $4 AND NOT EXISTS"
                " (SELECT 1 FROM batch_items WHERE batch_id = $1 AND state = $5)",
                batch_id, DONE, now_us, RUNNING, ITEM_PENDING,
            )

    async def items(self, batch_id: str, after_line: int, limit: int) -> list[BatchItem]:
        async with self.db.transaction(write=False) as tx:
            rows = await tx.fetch(
                "SELECT * FROM batch_items WHERE batch_id = $1 AND line > $2 ORDER BY line LIMIT $3",
                batch_id, after_line, limit,
            )
        return [BatchItem(**dict(r)) for r in rows]

    async def item_owners(self, batch_id: str) -> dict[str, int]:
        """DONE items by the gateway that finished them (the sharing test, and operators)."""
        async with self.db.transaction(write=False) as tx:
            rows = await tx.fetch(
                "SELECT lease_owner, COUNT(*) AS n FROM batch_items WHERE batch_id = $1 AND state = $2"
                " GROUP BY lease_owner",
                batch_id, ITEM_DONE,
            )
        return {r["lease_owner"]: int(r["n"]) for r in rows}

    # Queries and answers

    async def record_queries(self, queries: Sequence[tuple[QueryRecord, Sequence[AnswerRecord]]],
                             late: Sequence[AnswerRecord]) -> None:
        """Interactive queries with their answers, and late answers arrived, in one transaction."""
        async with self.db.transaction() as tx:
            if queries:
                await _insert_many(tx, "queries", QueryRecord, [query for query, _ in queries])
                answers = [answer for _, answers in queries for answer in answers]
                if answers:
                    await _insert_many(tx, "query_answers", AnswerRecord, answers)
            for answer in late:
                await _answer(tx, answer)

    async def query(self, query_id: str) -> tuple[QueryRecord, list[AnswerRecord]] | None:
        async with self.db.transaction(write=False) as tx:
            row = await tx.fetchrow("SELECT * FROM queries WHERE query_id = $1", query_id)
            if row is None:
                return None
            answers = await tx.fetch(
                "SELECT * FROM query_answers WHERE query_id = $1 ORDER BY agency_id", query_id
            )
        return QueryRecord(**dict(row)), [AnswerRecord(**dict(a)) for a in answers]

    async def answers(self, query_ids: Sequence[str]) -> dict[str, list[AnswerRecord]]:
        """The answers of many queries (a page of a batch's results), by query."""
        found: dict[str, list[AnswerRecord]] = {query_id: [] for query_id in query_ids}
        if not query_ids:
            return found
        marks = ", ".join(f"${i + 1}" for i in range(len(query_ids)))
        async with self.db.transaction(write=False) as tx:
            rows = await tx.fetch(
                f"SELECT * FROM query_answers WHERE query_id IN ({marks}) ORDER BY query_id, agency_id", *query_ids
            )
        for row in rows:
            found[row["query_id"]].append(AnswerRecord(**dict(row)))
        return found

    async def expire_answers(self, now_us: int) -> int:
        """Answers whose window passed while nobody waited (a gateway died): TIMEOUT."""
        async with self.db.transaction() as tx:
            return await tx.execute(
                "UPDATE query_answers SET status = 'TIMEOUT', arrived_at_us = $1"
                " WHERE status = $2 AND window_until_us <= $1 AND batch_id = ''",
                now_us, ANSWER_PENDING,
            )

    async def item_state_counts(self) -> dict[str, int]:
        """Items of every batch by state (the batch items metric)."""
        async with self.db.transaction(write=False) as tx:
            rows = await tx.fetch("SELECT state, COUNT(*) AS n FROM batch_items GROUP BY state")
        return {r["state"]: int(r["n"]) for r in rows}
