"""The audit trail: append-only, hash-chained records of every query and action, allowed or denied.

Each record carries a sequence number (1, 2, 3, ...), the hash of the record
before it (`prev_hash`; 64 zeros for the first) and its own hash:
sha256 over the canonical JSON (sorted keys, no spaces, UTF-8) of all its
fields except `hash`. A one-row chain head holds the last sequence number
and hash; appends lock it, so the chain never forks even with several
writers (SQLite: BEGIN IMMEDIATE; PostgreSQL: SELECT ... FOR UPDATE).

verify() walks the chain in order and names the first record that breaks it:
- edited:    its fields no longer hash to its stored hash;
- deleted:   a sequence number is missing (or, at the end, the head is ahead);
- inserted:  the sequence numbers shift, so the record after the insertion
             no longer hashes to its stored hash (the number is hashed), or a
             forged record's prev_hash does not match;
- reordered: a record's number or prev_hash no longer fits its place.
The chain proves the records are as written only up to whoever can rewrite
the whole tail and the head: the gateway anchors the head outside the
database in signed checkpoints (checkpoints.py), which `chakong audit
verify` checks the records against.

Records hold the subject's full ID; anything leaving the store (logs,
reprs, errors) shows it masked.
"""

import asyncio
import hashlib
import json
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from prometheus_client import Counter

from services.common.logs import mask_id
from services.common.sqlite import enable_wal

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
GENESIS_HASH = "0" * 64
# allowed and denied are written before a request runs (write-ahead); answered
# after an allowed one, with what came of it in `result`.
OUTCOMES = ("allowed", "denied", "answered")
MAX_TEXT_CHARS = 1000
MAX_AGENCIES = 64

AUDIT_RECORDS = Counter("chakong_audit_records_total", "Audit records written, by outcome.", ["outcome"])
AUDIT_WRITE_FAILURES = Counter(
    "chakong_audit_write_failures_total", "Audit appends that failed; the request they recorded was refused."
)
for _outcome in OUTCOMES:
    AUDIT_RECORDS.labels(_outcome)

_ACTION = re.compile(r"[a-z][a-z_.]{0,31}")


class AuditError(Exception):
    """The audit store could not do what was asked; callers fail closed."""


class AuditUnavailable(AuditError):
    """The audit store cannot be opened or reached."""


class AuditWriteError(AuditError):
    """An append did not happen; the request it would have recorded must fail."""


_ENTRY_TEXT_FIELDS = (
    "executor_id", "court_code", "case_number", "document_number", "subject_id", "reason", "result",
    "request_id", "subject_type",
)


@dataclass(frozen=True)
class AuditEntry:
    """What happened, as the caller knows it; the store adds sequence, time and hashes."""

    executor_id: str
    court_code: str
    case_number: str
    document_number: str
    subject_id: str = field(repr=False)
    action: str
    agency_ids: tuple[str, ...]
    outcome: str
    reason: str = ""
    result: str = ""
    request_id: str = ""
    subject_type: str = ""

    def __post_init__(self):
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome: {self.outcome!r} is not one of {', '.join(OUTCOMES)}")
        if not _ACTION.fullmatch(self.action):
            raise ValueError(f"action: {self.action!r} must be 1 to 32 of a-z, '_' and '.', e.g. 'query', 'freeze'")
        if self.outcome == "denied" and not self.reason:
            raise ValueError("reason: a denial must say why")
        agency_ids = tuple(self.agency_ids)
        object.__setattr__(self, "agency_ids", agency_ids)
        if len(agency_ids) > MAX_AGENCIES:
            raise ValueError(f"agency_ids: at most {MAX_AGENCIES}")
        texts = [(name, getattr(self, name)) for name in _ENTRY_TEXT_FIELDS]
        texts += [(f"agency_ids[{i}]", a) for i, a in enumerate(agency_ids)]
        for name, value in texts:
            if not isinstance(value, str):
                raise ValueError(f"{name}: must be text")
            if len(value) > MAX_TEXT_CHARS:
                raise ValueError(f"{name}: must be at most {MAX_TEXT_CHARS} characters")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"{name}: is not valid Unicode text") from None
            if "\x00" in value:
                # PostgreSQL text cannot hold NUL; refuse it on both backends alike.
                raise ValueError(f"{name}: must not contain NUL characters")

    @property
    def subject_masked(self) -> str:
        return mask_id(self.subject_id)


@dataclass(frozen=True)
class AuditRecord:
    """One stored record. repr() leaves the subject out; hashed_fields() is what the hash covers."""

    seq: int
    recorded_at: str
    executor_id: str
    court_code: str
    case_number: str
    document_number: str
    subject_type: str
    subject_id: str = field(repr=False)
    action: str
    agency_ids: tuple[str, ...]
    outcome: str
    reason: str
    result: str
    request_id: str
    prev_hash: str
    hash: str

    @property
    def subject_masked(self) -> str:
        return mask_id(self.subject_id)

    def hashed_fields(self) -> dict:
        # Field by field rather than asdict(), which deep-copies: this runs on every append.
        fields = {name: getattr(self, name) for name in COLUMNS if name != "hash"}
        fields["agency_ids"] = list(self.agency_ids)
        fields["v"] = FORMAT_VERSION
        return fields

    def computed_hash(self) -> str:
        return record_hash(self.hashed_fields())


def canonical_json(fields: dict) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record_hash(fields: dict) -> str:
    return hashlib.sha256(canonical_json(fields)).hexdigest()


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_record(entry: AuditEntry, seq: int, prev_hash: str, recorded_at: str) -> AuditRecord:
    unsigned = AuditRecord(
        seq=seq,
        recorded_at=recorded_at,
        executor_id=entry.executor_id,
        court_code=entry.court_code,
        case_number=entry.case_number,
        document_number=entry.document_number,
        subject_type=entry.subject_type,
        subject_id=entry.subject_id,
        action=entry.action,
        agency_ids=entry.agency_ids,
        outcome=entry.outcome,
        reason=entry.reason,
        result=entry.result,
        request_id=entry.request_id,
        prev_hash=prev_hash,
        hash="",
    )
    return replace(unsigned, hash=unsigned.computed_hash())


# Column order of the record table, shared by both backends.
COLUMNS = (
    "seq", "recorded_at", "executor_id", "court_code", "case_number", "document_number", "subject_type",
    "subject_id", "action", "agency_ids", "outcome", "reason", "result", "request_id", "prev_hash", "hash",
)


def _row_to_record(row) -> AuditRecord:
    values = dict(zip(COLUMNS, row))
    try:
        agencies = json.loads(values["agency_ids"])
        if not isinstance(agencies, list):
            raise ValueError
        values["agency_ids"] = tuple(str(a) for a in agencies)
    except (ValueError, TypeError):
        # Unreadable is tampered: keep the raw text so the hash check fails on it.
        values["agency_ids"] = (f"<unreadable {values['agency_ids']!r}>",)
    for name in COLUMNS:
        if name not in ("seq", "agency_ids") and not isinstance(values[name], str):
            values[name] = "" if values[name] is None else str(values[name])
    return AuditRecord(**values)


def _record_row(record: AuditRecord) -> tuple:
    return tuple(
        json.dumps(list(record.agency_ids), ensure_ascii=False) if name == "agency_ids" else getattr(record, name)
        for name in COLUMNS
    )


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = ""
    head_hash: str = GENESIS_HASH
    # The hash each watched record computes to (ChainChecker's `watch`), as far as the walk got.
    hashes: dict[int, str] = field(default_factory=dict, compare=False, repr=False)

    def __str__(self) -> str:
        if self.ok:
            return f"OK: {self.checked} records (head {self.head_hash})"
        return f"TAMPERED at record #{self.first_bad_seq}: {self.reason}"


class ChainChecker:
    """Feed records in sequence order; stops at the first break and names the record."""

    def __init__(self, watch: Iterable[int] = ()):
        self.watch = frozenset(watch)
        self.seen: dict[int, str] = {}
        self.expected_seq = 1
        self.prev_hash = GENESIS_HASH
        # The hash the previous record was chained to: tells an inserted record from an edited one.
        self.prev_prev_hash: str | None = None
        self.checked = 0
        self.failure: VerifyResult | None = None

    def feed(self, record: AuditRecord) -> bool:
        """False once the chain is broken (self.failure says where)."""
        seq = record.seq
        if seq != self.expected_seq:
            if seq > self.expected_seq:
                gap = f"#{self.expected_seq}" if seq == self.expected_seq + 1 else f"#{self.expected_seq}-#{seq - 1}"
                return self._fail(self.expected_seq, f"record {gap} missing (deleted); the next stored is #{seq}")
            return self._fail(seq, f"out of order: stored after #{self.expected_seq - 1}")
        computed = record.computed_hash()
        if seq in self.watch:
            self.seen[seq] = computed
        if computed != record.hash:
            if seq > 1 and record.prev_hash == self.prev_prev_hash:
                # This record was written right after #seq-2 and has been
                # renumbered since: whatever now sits at #seq-1 was slipped in.
                return self._fail(seq - 1, f"inserted: not in the chain (record #{seq} was written directly "
                                           f"after #{seq - 2} and renumbered)")
            return self._fail(
                seq, "contents do not match its hash (edited, moved or reordered, or records before it removed)"
            )
        if record.prev_hash != self.prev_hash:
            if seq == 1:
                return self._fail(1, "does not start the chain (records before it were removed)")
            # This record is intact (it matches its hash, prev_hash included),
            # so it was written after a different #seq-1: that one was replaced.
            return self._fail(seq - 1, f"altered and re-hashed: record #{seq}, intact, was chained to a "
                                       f"different #{seq - 1}")
        self.prev_prev_hash, self.prev_hash = self.prev_hash, record.hash
        self.expected_seq += 1
        self.checked += 1
        return True

    def finish(self, head: tuple[int, str] | None) -> VerifyResult:
        """The verdict, once every record was fed; `head` is the chain-head row (seq, hash)."""
        if self.failure is not None:
            return self.failure
        last = self.expected_seq - 1
        if head is None:
            return self._verdict(max(last, 1), "the chain head row is missing")
        head_seq, head_hash = head
        if head_seq > last:
            return self._verdict(last + 1, f"missing (deleted): the chain head says the last record is #{head_seq}, "
                                           f"the records end at #{last}")
        if head_seq < last:
            return self._verdict(head_seq + 1, f"inserted: the chain head says the last record is #{head_seq}")
        if head_hash != self.prev_hash:
            return self._verdict(max(last, 1), "the chain head's hash does not match this record (head or "
                                               "records rewritten)")
        return VerifyResult(True, self.checked, None, "", self.prev_hash, self.seen)

    def _verdict(self, seq: int, reason: str) -> VerifyResult:
        return VerifyResult(False, self.checked, seq, reason, self.prev_hash, self.seen)

    def _fail(self, seq: int, reason: str) -> bool:
        self.failure = self._verdict(seq, reason)
        return False


@dataclass(frozen=True)
class Answered:
    """What an `answered` record says of a request: its case, when, and what came of it."""

    case_number: str
    recorded_at: str
    result: str


# recorded_at is ISO 8601 UTC with a fixed width (_timestamp), so text order is time order.
_ANSWERS_SQL = (
    "SELECT case_number, recorded_at, result FROM audit_record"
    " WHERE court_code = {} AND action = {} AND outcome = 'answered' AND recorded_at >= {} ORDER BY seq"
)


class AuditStore(Protocol):
    async def append(self, entry: AuditEntry) -> AuditRecord: ...
    async def ping(self) -> None:
        """One cheap read of the chain head; AuditUnavailable when the store cannot answer."""
    async def verify(self, watch: Iterable[int] = ()) -> VerifyResult: ...
    async def head(self) -> tuple[int, str]:
        """The chain head: the last record's seq and hash ((0, GENESIS_HASH) when empty)."""
    async def close(self) -> None: ...
    async def answers(self, court_code: str, action: str, since: datetime) -> list[Answered]:
        """The `answered` records of `action` by officers of `court_code` recorded since `since`."""


def _now_utc() -> datetime:
    return datetime.now(timezone.utc)


def _counted(record: AuditRecord) -> AuditRecord:
    AUDIT_RECORDS.labels(record.outcome).inc()
    return record


def _write_failed(entry: AuditEntry, exc: BaseException) -> AuditWriteError:
    AUDIT_WRITE_FAILURES.inc()
    logger.error(
        "audit append failed (%s: %s); refusing %s by %s on case %s, subject %s",
        type(exc).__name__, exc, entry.action, entry.executor_id, entry.case_number, entry.subject_masked,
    )
    return AuditWriteError(f"audit store write failed: {type(exc).__name__}: {exc}")


_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_record (
    seq             INTEGER PRIMARY KEY,
    recorded_at     TEXT NOT NULL,
    executor_id     TEXT NOT NULL,
    court_code      TEXT NOT NULL,
    case_number     TEXT NOT NULL,
    document_number TEXT NOT NULL,
    subject_type    TEXT NOT NULL,
    subject_id      TEXT NOT NULL,
    action          TEXT NOT NULL,
    agency_ids      TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    reason          TEXT NOT NULL,
    result          TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
);
-- The command centre's figures read one action of one court over a period (query_answers).
CREATE INDEX IF NOT EXISTS audit_record_by_court_action ON audit_record (court_code, action, recorded_at);
INSERT OR IGNORE INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
-- The application only ever inserts; these stop it doing anything else by mistake.
CREATE TRIGGER IF NOT EXISTS audit_record_no_update BEFORE UPDATE ON audit_record
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_record_no_delete BEFORE DELETE ON audit_record
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
"""


class SqliteAuditStore:
    """The audit trail in one SQLite file; appends from several processes serialise on BEGIN IMMEDIATE."""

    def __init__(self, path: Path | str, *, busy_timeout_ms: int = 5000, clock: Callable[[], datetime] = _now_utc):
        self.path = Path(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._clock = clock
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._waiting: list[tuple[AuditEntry, asyncio.Future]] = []
        self._committer: asyncio.Task | None = None

    async def open(self, *, create: bool = True) -> "SqliteAuditStore":
        """Connect and, with create, make the file and tables; without, the store must exist."""
        if not create and not self.path.is_file():
            raise AuditUnavailable(f"audit store {str(self.path)!r}: no such file")
        try:
            await asyncio.to_thread(self._open, create)
        except (sqlite3.Error, OSError) as exc:
            raise AuditUnavailable(f"audit store {str(self.path)!r}: cannot open: {exc}") from None
        return self

    def _open(self, create: bool) -> None:
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            if create:
                enable_wal(conn)
                conn.executescript("BEGIN IMMEDIATE;" + _SQLITE_SCHEMA + "COMMIT;")
            # An append is reported only once it is on disk.
            conn.execute("PRAGMA synchronous = FULL")
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def close(self) -> None:
        if self._conn is not None:
            with self._lock:
                self._conn.close()
                self._conn = None

    async def ping(self) -> None:
        def read() -> None:
            with self._lock:
                if self._conn is None:
                    raise AuditUnavailable("audit store is closed")
                self._conn.execute("SELECT seq FROM audit_head WHERE id = 1").fetchone()

        try:
            await asyncio.to_thread(read)
        except sqlite3.Error as exc:
            raise AuditUnavailable(f"audit store {str(self.path)!r}: cannot read: {exc}") from None

    async def __aenter__(self) -> "SqliteAuditStore":
        return self if self._conn is not None else await self.open()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def append(self, entry: AuditEntry) -> AuditRecord:
        """Returns once the record is on disk.

        Group commit: appends that arrive while a commit is under way wait
        and go to disk together in the next transaction, one fsync for
        all, so the trail keeps up with concurrent requests.
        """
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((entry, done))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_waiting())
        try:
            record = await done
        except Exception as exc:
            raise _write_failed(entry, exc) from exc
        return _counted(record)

    async def _commit_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                records = await asyncio.to_thread(self._append_batch, [entry for entry, _ in batch])
            except Exception as exc:  # every waiting request fails closed
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for (_, done), record in zip(batch, records):
                    if not done.done():
                        done.set_result(record)

    def _append_batch(self, entries: list[AuditEntry]) -> list[AuditRecord]:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise AuditUnavailable("audit store is closed")
            conn.execute("BEGIN IMMEDIATE")
            try:
                head_seq, head_hash = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
                records = []
                for entry in entries:
                    record = build_record(entry, head_seq + 1, head_hash, _timestamp(self._clock()))
                    conn.execute(
                        f"INSERT INTO audit_record ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                        _record_row(record),
                    )
                    head_seq, head_hash = record.seq, record.hash
                    records.append(record)
                conn.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (head_seq, head_hash))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return records

    async def head(self) -> tuple[int, str]:
        def read() -> tuple[int, str]:
            with self._lock:
                if self._conn is None:
                    raise AuditUnavailable("audit store is closed")
                row = self._conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
            if row is None:
                raise AuditUnavailable(f"audit store {str(self.path)!r}: the chain head row is missing")
            return int(row[0]), str(row[1])

        try:
            return await asyncio.to_thread(read)
        except sqlite3.Error as exc:
            raise AuditUnavailable(f"audit store {str(self.path)!r}: cannot read: {exc}") from None

    async def verify(self, watch: Iterable[int] = ()) -> VerifyResult:
        try:
            return await asyncio.to_thread(self._verify, watch)
        except sqlite3.Error as exc:
            raise AuditUnavailable(f"audit store {str(self.path)!r}: cannot read: {exc}") from None

    def _verify(self, watch: Iterable[int]) -> VerifyResult:
        # A connection of its own, so a long walk does not hold up appends.
        conn = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)
        try:
            conn.execute("BEGIN")  # one snapshot for records and head
            head = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
            checker = ChainChecker(watch)
            for row in conn.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_record ORDER BY seq"):
                if not checker.feed(_row_to_record(row)):
                    break
            conn.execute("COMMIT")
            return checker.finish(head)
        finally:
            conn.close()

    async def records(self) -> list[AuditRecord]:
        """Every record in order (small stores, tests and `chakong audit`)."""
        def read():
            with self._lock:
                assert self._conn is not None
                rows = self._conn.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_record ORDER BY seq").fetchall()
            return [_row_to_record(r) for r in rows]

        return await asyncio.to_thread(read)

    async def answers(self, court_code: str, action: str, since: datetime) -> list[Answered]:
        """The `answered` records of `action` by officers of `court_code` since `since` (the command centre's figures)."""
        def read():
            with self._lock:
                if self._conn is None:
                    raise AuditUnavailable("audit store is closed")
                try:
                    return self._conn.execute(_ANSWERS_SQL.format("?", "?", "?"),
                                              (court_code, action, _timestamp(since))).fetchall()
                except sqlite3.Error as exc:
                    raise AuditUnavailable(f"audit store read failed: {exc}") from None

        return [Answered(*row) for row in await asyncio.to_thread(read)]


_PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_record (
    seq             BIGINT PRIMARY KEY,
    recorded_at     TEXT NOT NULL,
    executor_id     TEXT NOT NULL,
    court_code      TEXT NOT NULL,
    case_number     TEXT NOT NULL,
    document_number TEXT NOT NULL,
    subject_type    TEXT NOT NULL,
    subject_id      TEXT NOT NULL,
    action          TEXT NOT NULL,
    agency_ids      TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    reason          TEXT NOT NULL,
    result          TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_record_by_court_action ON audit_record (court_code, action, recorded_at);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000')
ON CONFLICT (id) DO NOTHING;
CREATE OR REPLACE FUNCTION chakong_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit records are append-only'; END $$;
DROP TRIGGER IF EXISTS audit_record_append_only ON audit_record;
CREATE TRIGGER audit_record_append_only BEFORE UPDATE OR DELETE ON audit_record
    FOR EACH ROW EXECUTE FUNCTION chakong_audit_append_only();
DROP TRIGGER IF EXISTS audit_record_no_truncate ON audit_record;
CREATE TRIGGER audit_record_no_truncate BEFORE TRUNCATE ON audit_record
    FOR EACH STATEMENT EXECUTE FUNCTION chakong_audit_append_only();
"""
# Any constant: serialises schema creation between gateways starting together.
_PG_SCHEMA_LOCK = 0x636B_6175_6469_74


class PostgresAuditStore:
    """The audit trail in PostgreSQL; appends serialise on the chain-head row (SELECT ... FOR UPDATE)."""

    def __init__(self, dsn: str, *, clock: Callable[[], datetime] = _now_utc, connect_timeout_s: float = 5.0):
        self.dsn = dsn
        self._clock = clock
        self._connect_timeout_s = connect_timeout_s
        self._pool = None

    async def open(self, *, create: bool = True) -> "PostgresAuditStore":
        """Connect and, with create, make the tables (needs DDL rights; verification does not)."""
        import asyncpg

        try:
            self._pool = await asyncpg.create_pool(
                self.dsn, min_size=1, max_size=4, timeout=self._connect_timeout_s, command_timeout=10
            )
            if create:
                async with self._pool.acquire() as conn, conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", _PG_SCHEMA_LOCK)
                    await conn.execute(_PG_SCHEMA)
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if self._pool is not None:
                self._pool.terminate()
                self._pool = None
            raise AuditUnavailable(
                f"audit store {_redact(self.dsn)}: cannot open: {type(exc).__name__}: {exc}"
            ) from None
        return self

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def ping(self) -> None:
        import asyncpg

        if self._pool is None:
            raise AuditUnavailable("audit store is closed")
        try:
            await self._pool.fetchval("SELECT seq FROM audit_head WHERE id = 1")
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise AuditUnavailable(
                f"audit store {_redact(self.dsn)}: cannot read: {type(exc).__name__}: {exc}"
            ) from None

    async def __aenter__(self) -> "PostgresAuditStore":
        return self if self._pool is not None else await self.open()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def append(self, entry: AuditEntry) -> AuditRecord:
        try:
            if self._pool is None:
                raise AuditUnavailable("audit store is closed")
            async with self._pool.acquire() as conn, conn.transaction():
                head = await conn.fetchrow("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
                record = build_record(entry, head["seq"] + 1, head["hash"], _timestamp(self._clock()))
                placeholders = ", ".join(f"${i}" for i in range(1, len(COLUMNS) + 1))
                await conn.execute(
                    f"INSERT INTO audit_record ({', '.join(COLUMNS)}) VALUES ({placeholders})", *_record_row(record)
                )
                await conn.execute("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1", record.seq, record.hash)
        except Exception as exc:
            raise _write_failed(entry, exc) from exc
        return _counted(record)

    async def head(self) -> tuple[int, str]:
        import asyncpg

        if self._pool is None:
            raise AuditUnavailable("audit store is closed")
        try:
            row = await self._pool.fetchrow("SELECT seq, hash FROM audit_head WHERE id = 1")
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise AuditUnavailable(
                f"audit store {_redact(self.dsn)}: cannot read: {type(exc).__name__}: {exc}"
            ) from None
        if row is None:
            raise AuditUnavailable(f"audit store {_redact(self.dsn)}: the chain head row is missing")
        return int(row["seq"]), str(row["hash"])

    async def verify(self, watch: Iterable[int] = ()) -> VerifyResult:
        import asyncpg

        if self._pool is None:
            raise AuditUnavailable("audit store is closed")
        try:
            async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
                head = await conn.fetchrow("SELECT seq, hash FROM audit_head WHERE id = 1")
                checker = ChainChecker(watch)
                async for row in conn.cursor(f"SELECT {', '.join(COLUMNS)} FROM audit_record ORDER BY seq"):
                    if not checker.feed(_row_to_record(tuple(row))):
                        break
                return checker.finish(tuple(head) if head is not None else None)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise AuditUnavailable(
                f"audit store {_redact(self.dsn)}: cannot read: {type(exc).__name__}: {exc}"
            ) from None

    async def records(self) -> list[AuditRecord]:
        assert self._pool is not None
        rows = await self._pool.fetch(f"SELECT {', '.join(COLUMNS)} FROM audit_record ORDER BY seq")
        return [_row_to_record(tuple(r)) for r in rows]

    async def answers(self, court_code: str, action: str, since: datetime) -> list[Answered]:
        import asyncpg

        assert self._pool is not None
        try:
            rows = await self._pool.fetch(_ANSWERS_SQL.format("$1", "$2", "$3"), court_code, action, _timestamp(since))
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise AuditUnavailable(f"audit store read failed: {type(exc).__name__}: {exc}") from exc
        return [Answered(*tuple(r)) for r in rows]


def _redact(dsn: str) -> str:
    """The DSN without its password, for messages."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def store_for_url(url: str, **kwargs) -> SqliteAuditStore | PostgresAuditStore:
    """`postgresql://...` (or postgres://), `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, or a path."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresAuditStore(url, **kwargs)
    if url.startswith("sqlite://"):
        path = unquote(url[len("sqlite://"):])
        if not path.startswith("/") or path == "/":
            raise AuditUnavailable(f"audit store {url!r}: expected sqlite:///relative.db or sqlite:////absolute.db")
        return SqliteAuditStore(path[1:], **kwargs)
    if "://" in url:
        raise AuditUnavailable(f"audit store {url!r}: expected a sqlite:// or postgresql:// URL")
    return SqliteAuditStore(url, **kwargs)


async def open_audit_store(url: str, **kwargs) -> SqliteAuditStore | PostgresAuditStore:
    return await store_for_url(url, **kwargs).open()


async def verify_store(url: str, watch: Iterable[int] = ()) -> VerifyResult:
    """Verify an existing store without creating or changing anything; `watch`: seqs whose hashes to report."""
    store = store_for_url(url)
    await store.open(create=False)
    try:
        return await store.verify(watch)
    finally:
        await store.close()


def entries_masked(records: Iterable[AuditRecord]) -> list[dict]:
    """Records as dicts with the subject masked: what may leave the audit store."""
    out = []
    for record in records:
        fields = asdict(record)
        fields["subject_id"] = record.subject_masked
        out.append(fields)
    return out
