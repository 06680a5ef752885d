"""SQLite set-up every mock agency shares: connections, transactions and seeding."""

import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from protos.common.v1 import common_pb2

logger = logging.getLogger(__name__)

# Bump when any agency's tables change: a DB built by older code is rebuilt.
# 2: the hold changes feed (hold_changes, txn_clock, the triggers on freezes
# and seals). A DB with holds but without their history cannot serve the
# feed's contract, so older DBs are rebuilt rather than given an empty feed.
SCHEMA_VERSION = "2"

# Tables in every agency's DB. `holders` is who the agency has on record,
# with the registered name that a query's name must match (证件号码 + 姓名).
# `idempotency` keeps the answer to every mutating call by its key, so a
# retry returns the same result and a reused key with other parameters is
# refused.
#
# `hold_changes` is the hold changes feed (chakong.common.v1.HoldChangesRequest):
# one row per change to a freeze or seal, appended by the triggers on the
# hold table (services/agency/feed.py), never by the agency's code, so no
# code path, present or future, and no hand edit of the DB can change a hold
# without a row here. AUTOINCREMENT, not a plain rowid: a cursor is never
# reused even after the newest rows are deleted. The mock keeps every row;
# the contract asks for at least 30 days.
#
# `txn_clock` holds the agency's clock reading while one of its own write
# transactions is open (store.transaction(now_us=...)) and NULL otherwise;
# the triggers stamp changed_at_us with it, or with the database's wall
# clock for a write that did not come through the agency's code.
COMMON_SCHEMA = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE holders (
    id_number    TEXT PRIMARY KEY,
    subject_type INTEGER NOT NULL,
    name         TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE idempotency (
    idempotency_key TEXT PRIMARY KEY,
    method          TEXT NOT NULL,
    court_code      TEXT NOT NULL,
    request_digest  BLOB NOT NULL,
    response        BLOB NOT NULL,
    created_at_us   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE hold_changes (
    cursor        INTEGER PRIMARY KEY AUTOINCREMENT,
    hold_id       TEXT NOT NULL,
    changed_at_us INTEGER NOT NULL
);
CREATE INDEX hold_changes_by_hold ON hold_changes (hold_id, cursor);

CREATE TABLE txn_clock (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    now_us   INTEGER
);
INSERT INTO txn_clock (only_row, now_us) VALUES (1, NULL);
"""

# The hold changes feed's triggers: appended to the schema of each hold
# table (`freezes` at a bank, `seals` at a registry), they record every
# insert or update of a hold that changes what its message reports, in the
# transaction that makes it (services/agency/feed.py tells the whole story).
_QUEUED = common_pb2.HOLD_STATE_QUEUED

# The agency's clock for its own transactions, else the wall clock in
# microseconds (julianday counts days from noon, 24 November 4714 BC;
# 2440587.5 of them end at the Unix epoch).
_CHANGED_AT_SQL = (
    "COALESCE((SELECT now_us FROM txn_clock),"
    " CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER))"
)


@dataclass(frozen=True)
class HoldTable:
    """Where an agency keeps its holds, as the feed's triggers and reads need it."""

    # The table ("freezes", "seals") and its primary key ("freeze_id", "seal_id").
    table: str
    id_column: str
    # Holds on the same asset (an account, a plate, a certificate) queue
    # together, in `queue_seq` order.
    asset_column: str
    # Every column whose value the hold's message (AccountFreeze, Seal)
    # reports, directly or, for queue_seq, through queue_position. An update
    # that changes none of them (period_us, say) is not a change.
    reported: tuple[str, ...]

    def triggers(self) -> str:
        """CREATE TRIGGER statements that record every change in hold_changes."""
        return _TRIGGERS.format(
            t=self.table, id=self.id_column, asset=self.asset_column, queued=_QUEUED, now=_CHANGED_AT_SQL,
            changed=" OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in self.reported),
        )


# A queued hold's position counts the holds queued on its asset with a
# queue_seq at most its own. So when a hold joins or leaves a queue, or its
# asset or queue_seq changes, the holds queued behind where it was and
# where it is now have moved: each is recorded after the hold itself.
_TRIGGERS = """
CREATE TRIGGER {t}_feed_insert AFTER INSERT ON {t}
BEGIN
    INSERT INTO hold_changes (hold_id, changed_at_us) VALUES (NEW.{id}, {now});
    INSERT INTO hold_changes (hold_id, changed_at_us)
        SELECT {id}, {now} FROM {t}
        WHERE NEW.state = {queued} AND state = {queued} AND {asset} = NEW.{asset}
          AND queue_seq > NEW.queue_seq AND {id} IS NOT NEW.{id}
        ORDER BY queue_seq;
END;

CREATE TRIGGER {t}_feed_update AFTER UPDATE ON {t} WHEN {changed}
BEGIN
    INSERT INTO hold_changes (hold_id, changed_at_us) VALUES (NEW.{id}, {now});
    INSERT INTO hold_changes (hold_id, changed_at_us)
        SELECT {id}, {now} FROM {t}
        WHERE ((OLD.state = {queued}) != (NEW.state = {queued})
               OR OLD.{asset} IS NOT NEW.{asset} OR OLD.queue_seq IS NOT NEW.queue_seq)
          AND state = {queued} AND {id} IS NOT NEW.{id}
          AND ((OLD.state = {queued} AND {asset} = OLD.{asset} AND queue_seq > OLD.queue_seq)
               OR (NEW.state = {queued} AND {asset} = NEW.{asset} AND queue_seq > NEW.queue_seq))
        ORDER BY queue_seq;
END;

-- The agency never deletes a hold. One deleted by hand has no message left
-- to carry, so its changes go with it (a reader finds it gone when it
-- reconciles); those queued behind it moved up.
CREATE TRIGGER {t}_feed_delete AFTER DELETE ON {t}
BEGIN
    DELETE FROM hold_changes WHERE hold_id = OLD.{id};
    INSERT INTO hold_changes (hold_id, changed_at_us)
        SELECT {id}, {now} FROM {t}
        WHERE OLD.state = {queued} AND state = {queued} AND {asset} = OLD.{asset} AND queue_seq > OLD.queue_seq
        ORDER BY queue_seq;
END;
"""


# Seals (查封) on whole assets: vehicles by plate, properties by certificate
# number. Times are microseconds since the Unix epoch (UTC); NULL is unset.
# `queue_seq` is the registration order: queued seals take effect in it.
SEALS_SCHEMA = """
CREATE TABLE seals (
    seal_id          TEXT PRIMARY KEY,
    asset_id         TEXT NOT NULL,
    case_number      TEXT NOT NULL,
    court_code       TEXT NOT NULL,
    state            INTEGER NOT NULL,
    queue_seq        INTEGER NOT NULL UNIQUE,
    registered_at_us INTEGER NOT NULL,
    effective_at_us  INTEGER,
    expires_at_us    INTEGER NOT NULL,
    ended_at_us      INTEGER
);
CREATE INDEX seals_by_asset ON seals (asset_id, queue_seq);
CREATE INDEX seals_by_case ON seals (case_number, court_code);
"""

# Every column a Seal message reports, for the feed's triggers.
SEAL_HOLDS = HoldTable(
    table="seals",
    id_column="seal_id",
    asset_column="asset_id",
    reported=(
        "asset_id", "case_number", "court_code", "state", "queue_seq", "registered_at_us", "effective_at_us",
        "expires_at_us", "ended_at_us",
    ),
)
SEALS_SCHEMA += SEAL_HOLDS.triggers()


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode: transactions are explicit (`transaction`)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode = WAL")
    # WAL + NORMAL: a power cut may lose the last commits, never corrupt.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 5000")
    # Reads come straight from the page cache / mapped file: a 1M-account
    # DB is ~150 MB, so map all of it.
    conn.execute("PRAGMA mmap_size = 1073741824")
    conn.execute("PRAGMA cache_size = -65536")
    return conn


@contextmanager
def transaction(
    conn: sqlite3.Connection, *, mode: str = "IMMEDIATE", now_us: int | None = None
) -> Iterator[sqlite3.Connection]:
    """BEGIN ... COMMIT, rolled back on any exception.

    `now_us`, for a write transaction of the agency's own, is its clock's
    reading: the hold changes the transaction makes are stamped with it
    (txn_clock, COMMON_SCHEMA). It is cleared before the commit, so no other
    connection ever sees it and a later hand edit gets the wall clock.
    """
    conn.execute(f"BEGIN {mode}")
    try:
        if now_us is not None:
            conn.execute("UPDATE txn_clock SET now_us = ?", (now_us,))
        yield conn
        if now_us is not None:
            conn.execute("UPDATE txn_clock SET now_us = NULL")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def timestamp(us: int | None) -> Timestamp | None:
    """A proto Timestamp from microseconds since the epoch; None stays unset."""
    if us is None:
        return None
    seconds, micros = divmod(us, 1_000_000)
    return Timestamp(seconds=seconds, nanos=micros * 1000)


def insert_holders(conn: sqlite3.Connection, holders: Iterable[tuple[str, int, str]]) -> None:
    """(id_number, subject_type, name); the first registration of an ID wins."""
    conn.executemany(
        "INSERT OR IGNORE INTO holders (id_number, subject_type, name) VALUES (?, ?, ?)", holders
    )


def holder(conn: sqlite3.Connection, id_number: str) -> sqlite3.Row | None:
    return conn.execute(
        "SELECT subject_type, name FROM holders WHERE id_number = ?", (id_number,)
    ).fetchone()


@dataclass(frozen=True)
class SeedPlan:
    """How to build one agency's DB and what the result depends on."""

    # Every parameter the data depends on; a DB recorded with any other
    # value is rebuilt.
    fingerprint: Mapping[str, str]
    # CREATE statements of the agency's own tables (COMMON_SCHEMA is added).
    schema: str
    # Fills the tables inside the build transaction; returns how many
    # records (accounts, vehicles, properties) it stored.
    populate: Callable[[sqlite3.Connection], int]


@dataclass(frozen=True)
class SeedOutcome:
    reseeded: bool
    records: int
    seconds: float


def ensure_seeded(path: Path, plan: SeedPlan) -> SeedOutcome:
    """Reuse the DB at `path` if it was built from the same fingerprint, else rebuild it.

    The new DB is built in a side file in one transaction and renamed over
    the old one, so a crash at any point leaves either the old DB or the
    new one, never a half-seeded file. Blocking: call it in a thread.
    """
    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _seeding_lock(path):
        recorded = read_meta(path)
        if recorded is not None and all(recorded.get(k) == v for k, v in plan.fingerprint.items()):
            logger.info("reusing seeded database %s (%s records)", path, recorded.get("records"))
            return SeedOutcome(False, int(recorded.get("records", "0")), time.perf_counter() - started)
        if recorded is None:
            logger.info("seeding database %s: %s", path, dict(plan.fingerprint))
        else:
            changed = {k: (recorded.get(k), v) for k, v in plan.fingerprint.items() if recorded.get(k) != v}
            logger.info("reseeding database %s: parameters changed %s", path, changed)
            actions = _recorded_actions(path)
            if actions:
                # Freezes, seals and deductions live in the same file.
                logger.warning("reseeding %s discards %d recorded freeze/seal/deduct actions", path, actions)
        records = _build(path, plan)
    seconds = time.perf_counter() - started
    logger.info("seeded database %s: %d records in %.1f s", path, records, seconds)
    return SeedOutcome(True, records, seconds)


def read_meta(path: Path) -> dict[str, str] | None:
    """The meta table of the DB at `path`, or None if it is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            return dict(conn.execute("SELECT key, value FROM meta").fetchall())
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        logger.warning("database %s is unreadable (%s); rebuilding it", path, exc)
        return None


def _recorded_actions(path: Path) -> int:
    """Mutating calls the DB has answered: every one leaves an idempotency record."""
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            return conn.execute("SELECT COUNT(*) FROM idempotency").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return 0


@contextmanager
def _seeding_lock(path: Path) -> Iterator[None]:
    # Two processes pointed at one DB would otherwise build it twice and
    # rename over each other.
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build(path: Path, plan: SeedPlan) -> int:
    # A fixed side-file name is safe under the lock; one left by a crash is
    # garbage and goes first.
    side = path.with_name(path.name + ".seeding")
    _remove(side, side.with_name(side.name + "-journal"))
    try:
        conn = sqlite3.connect(side, isolation_level=None)
        try:
            # The side file is thrown away on any failure, so it needs no
            # fsync per commit; the rollback journal stays in memory.
            conn.execute("PRAGMA journal_mode = MEMORY")
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute("PRAGMA cache_size = -262144")
            conn.executescript(COMMON_SCHEMA + plan.schema)
            with transaction(conn, mode="EXCLUSIVE"):
                records = plan.populate(conn)
                meta = {
                    **plan.fingerprint,
                    "records": str(records),
                    "seeded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
                conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
            conn.execute("ANALYZE")
            # WAL is recorded in the file, so every later connection uses it.
            conn.execute("PRAGMA journal_mode = WAL")
        finally:
            conn.close()
        with open(side, "rb") as built:
            os.fsync(built.fileno())
        # A WAL or shared-memory file left by the old DB (after a crash)
        # would be replayed onto the new one: remove them before the swap.
        _remove(path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
        os.replace(side, path)
        _fsync_dir(path.parent)
    except BaseException:
        _remove(side)
        raise
    return records


def _remove(*paths: Path) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
