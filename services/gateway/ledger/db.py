"""The two SQL backends of the gateway ledger behind one small interface.

SQL is written once, PostgreSQL style (`$1` placeholders); the SQLite
backend rewrites the placeholders to SQLite's numbered `?1` form. Each
backend gives transactions (`transaction()`), rows as mappings, and one
exception for a broken UNIQUE constraint.

- SQLite (stdlib sqlite3): one connection used from one worker thread, so
  no call blocks the event loop; an asyncio lock keeps one transaction at a
  time on it. Write transactions start with BEGIN IMMEDIATE, which takes
  the database's single write lock: rule checks are serialized across
  every process using the file.
- PostgreSQL (asyncpg): a connection pool; write transactions lock the
  case row (`lock_case`, SELECT ... FOR UPDATE) so gateways sharing one
  ledger check a case's rules one at a time.
"""

import asyncio
import contextlib
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from services.common.sqlite import enable_wal

logger = logging.getLogger(__name__)

Row = Mapping[str, Any]

_PLACEHOLDER = re.compile(r"\$(\d+)")


class UniqueViolation(Exception):
    """An INSERT or UPDATE broke a UNIQUE or PRIMARY KEY constraint."""


class LedgerUnavailable(ConnectionError):
    """The ledger database cannot be reached or answered with an error.

    A ConnectionError, so a gateway that cannot open its ledger at start
    exits with one readable line (services.common.grpc_server.run)."""


class Tx(Protocol):
    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...
    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...
    async def fetchval(self, sql: str, *args: Any) -> Any: ...
    async def execute(self, sql: str, *args: Any) -> int:
        """Rows affected."""
    async def lock_case(self, case_number: str) -> None:
        """Hold the case's row until the transaction ends (a no-op where the
        whole transaction already holds the database's write lock)."""


class Database(Protocol):
    dialect: str

    def transaction(self, *, write: bool = True) -> contextlib.AbstractAsyncContextManager[Tx]: ...
    def migration_lock(self) -> contextlib.AbstractAsyncContextManager[Tx]: ...
    async def close(self) -> None: ...


# SQLite


class _SqliteTx:
    def __init__(self, db: "SqliteDatabase"):
        self._db = db

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return await self._db._run(lambda conn: conn.execute(_to_sqlite(sql), args).fetchall())

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        return await self._db._run(lambda conn: conn.execute(_to_sqlite(sql), args).fetchone())

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._db._run(lambda conn: conn.execute(_to_sqlite(sql), args).rowcount)

    async def lock_case(self, case_number: str) -> None:
        # BEGIN IMMEDIATE already holds the only write lock there is.
        return None


def _to_sqlite(sql: str) -> str:
    return _PLACEHOLDER.sub(r"?\1", sql)


def _rollback_if_open(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


class SqliteDatabase:
    dialect = "sqlite"

    def __init__(self, path: Path):
        self.path = path
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ledger-sqlite")
        self._lock = asyncio.Lock()
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> "SqliteDatabase":
        def connect() -> sqlite3.Connection:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are ours (BEGIN/COMMIT), not the module's.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            conn.row_factory = sqlite3.Row
            enable_wal(conn)
            # FULL: a committed intent survives a power cut, not just a crash.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            return conn

        self._conn = await asyncio.get_running_loop().run_in_executor(self._executor, connect)
        return self

    def _submit(self, fn) -> asyncio.Future:
        """Queue `fn(conn)` on the ledger's one thread now: statements run in the order submitted."""
        conn = self._conn
        if conn is None:
            raise LedgerUnavailable("ledger is closed")

        def call():
            try:
                return fn(conn)
            except sqlite3.IntegrityError as exc:
                if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
                    raise UniqueViolation(str(exc)) from None
                raise
            except sqlite3.OperationalError as exc:
                # "database is locked" past busy_timeout, disk full, ...
                raise LedgerUnavailable(f"ledger database {self.path}: {exc}") from exc

        return asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def _run(self, fn):
        return await self._submit(fn)

    @contextlib.asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[Tx]:
        async with self._lock:
            # Each of BEGIN, ROLLBACK and COMMIT is queued at once and awaited
            # shielded: a caller cancelled meanwhile (a client gone, a task
            # stopped) must not leave the connection inside its transaction.
            # The queue keeps the order, so an undo submitted here runs before
            # the next holder of the lock can submit anything.
            begun = self._submit(lambda conn: conn.execute("BEGIN IMMEDIATE" if write else "BEGIN"))
            try:
                await asyncio.shield(begun)
            except asyncio.CancelledError:
                self._submit(_rollback_if_open)
                raise
            try:
                yield _SqliteTx(self)
            except BaseException:
                await asyncio.shield(self._submit(lambda conn: conn.execute("ROLLBACK")))
                raise
            await asyncio.shield(self._submit(lambda conn: conn.execute("COMMIT")))

    @contextlib.asynccontextmanager
    async def migration_lock(self) -> AsyncIterator[Tx]:
        # SQLite DDL is transactional and BEGIN IMMEDIATE excludes every
        # other writer, so the migrations run in one locked transaction.
        async with self.transaction() as tx:
            yield tx

    async def close(self) -> None:
        if self._conn is not None:
            async with self._lock:
                conn, self._conn = self._conn, None
                await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)


# PostgreSQL

# Any fixed number: the key of the advisory lock migrations run under.
_MIGRATION_LOCK_KEY = 0x63686B6C  # "chkl"


class _PgTx:
    def __init__(self, conn):
        self._conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return await self._conn.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        return await self._conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._conn.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        status = await self._conn.execute(sql, *args)
        # "INSERT 0 1", "UPDATE 3", "DELETE 0": the count is the last word.
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def lock_case(self, case_number: str) -> None:
        await self._conn.execute("SELECT 1 FROM cases WHERE case_number = $1 FOR UPDATE", case_number)


def _pg_unavailable() -> tuple[type[BaseException], ...]:
    """What says the database cannot serve now (a retry later may succeed), as opposed to a bug.

    Connection lost or refused (a restart: AdminShutdownError, then
    CannotConnectNowError while it starts), the server out of connections,
    a statement cancelled or timed out, and serialization or deadlock
    rollbacks. Data errors (a value the column cannot hold) are not here:
    validation refuses those first, so one reaching the database is a bug.
    """
    import asyncpg

    return (
        OSError, asyncio.TimeoutError, asyncpg.InterfaceError, asyncpg.InternalClientError,
        asyncpg.PostgresConnectionError, asyncpg.OperatorInterventionError, asyncpg.InsufficientResourcesError,
        asyncpg.TransactionRollbackError,
    )


POOL_CLOSE_TIMEOUT_S = 5.0
POOL_ACQUIRE_TIMEOUT_S = 10.0


class PostgresDatabase:
    dialect = "postgresql"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10):
        self.url = url
        self.min_size = min_size
        self.max_size = max_size
        self._pool = None

    async def open(self) -> "PostgresDatabase":
        import asyncpg

        try:
            self._pool = await asyncpg.create_pool(
                self.url, min_size=self.min_size, max_size=self.max_size, command_timeout=30
            )
        except (*_pg_unavailable(), asyncpg.PostgresError) as exc:
            raise LedgerUnavailable(f"cannot connect to the ledger database: {exc}") from exc
        return self

    @contextlib.asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[Tx]:
        import asyncpg

        try:
            # Bounded: a pool whose every connection is taken answers
            # LedgerUnavailable (503) instead of keeping the caller waiting.
            async with self._pool.acquire(timeout=POOL_ACQUIRE_TIMEOUT_S) as conn:
                # Reads see one snapshot: a case view whose totals add up.
                isolation = "read_committed" if write else "repeatable_read"
                async with conn.transaction(isolation=isolation, readonly=not write):
                    yield _PgTx(conn)
        except asyncpg.UniqueViolationError as exc:
            raise UniqueViolation(str(exc)) from None
        except _pg_unavailable() as exc:
            raise LedgerUnavailable(f"ledger database: {type(exc).__name__}: {exc}") from exc

    @contextlib.asynccontextmanager
    async def migration_lock(self) -> AsyncIterator[Tx]:
        # A session-level advisory lock: gateways starting together apply
        # each migration once, the others wait and then find nothing to do.
        async with self._pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_KEY)
            try:
                async with conn.transaction():
                    yield _PgTx(conn)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_KEY)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                # close() waits for every connection to be released; one held
                # by a stuck operation must not hold the gateway's stop forever.
                async with asyncio.timeout(POOL_CLOSE_TIMEOUT_S):
                    await pool.close()
            except TimeoutError:
                logger.warning("ledger: connections still in use after %.0f s; closing them", POOL_CLOSE_TIMEOUT_S)
                pool.terminate()


async def open_database(url: str, default_sqlite_path: Path) -> Database:
    """`sqlite:///path`, `postgresql://...`, or empty for the default SQLite file."""
    if not url:
        return await SqliteDatabase(default_sqlite_path).open()
    if url.startswith("sqlite:///"):
        return await SqliteDatabase(Path(url.removeprefix("sqlite:///") or str(default_sqlite_path))).open()
    if url.startswith(("postgresql://", "postgres://")):
        return await PostgresDatabase(url).open()
    raise ValueError(f"LEDGER_URL={redact(url)!r}: expected sqlite:///path or postgresql://...")


def redact(url: str) -> str:
    """The URL without its password, for logs and errors."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)

