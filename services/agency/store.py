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

logger = logging.getLogger(__name__)

# Bump when any agency's tables change: a DB built by older code is rebuilt.
SCHEMA_VERSION = "1"

# Tables in every agency's DB. `holders` is who the agency has on record,
# with the registered name that a query's name must match (证件号码 + 姓名).
# `idempotency` keeps the answer to every mutating call by its key, so a
# retry returns the same result and a reused key with other parameters is
# refused.
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
def transaction(conn: sqlite3.Connection, *, mode: str = "IMMEDIATE") -> Iterator[sqlite3.Connection]:
    """BEGIN ... COMMIT, rolled back on any exception."""
    conn.execute(f"BEGIN {mode}")
    try:
        yield conn
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
