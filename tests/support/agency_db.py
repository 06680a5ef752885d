"""A mock agency's SQLite DB edited behind its back: hand edits its hold changes feed records, and lost events it does not.

The agency's triggers record every change to a freeze or seal, a hand edit
too (`edit_hold`). `lose_event` makes the one kind of drift the feed cannot
report, a change whose feed rows are gone, for the tests of the gateway's
reconciliation (ListCaseFreezes / ListCaseSeals must find it). Both work on
a running agency: SQLite serialises the writes, and the agency reads the
file afresh on every call.
"""

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from tests.support.agencies import Agency

# Hold table and its key in each kind of agency DB.
_HOLD_TABLES = {"freezes": "freeze_id", "seals": "seal_id"}


def agency_db(agency: Agency) -> Path:
    """The DB file of an agency started by the test harness."""
    env = agency.process.env
    return Path(env.get("DB_PATH") or Path(env["DATA_DIR"]) / f"{agency.id}.db")


@contextlib.contextmanager
def _write(db: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(db, isolation_level=None, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()


def _hold_table(conn: sqlite3.Connection) -> tuple[str, str]:
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    table = next(t for t in _HOLD_TABLES if t in names)
    return table, _HOLD_TABLES[table]


def _update(conn: sqlite3.Connection, hold_id: str, columns: dict[str, object]) -> None:
    table, key = _hold_table(conn)
    known = {row["name"] for row in conn.execute(f"PRAGMA table_info({table})")}
    unknown = set(columns) - known
    assert columns and not unknown, f"columns of {table}: {sorted(known)}; not {sorted(unknown)}"
    assignments = ", ".join(f"{name} = ?" for name in columns)
    updated = conn.execute(f"UPDATE {table} SET {assignments} WHERE {key} = ?", (*columns.values(), hold_id))
    assert updated.rowcount == 1, f"no hold {hold_id} in {table}"


def edit_hold(db: Path, hold_id: str, **columns: object) -> None:
    """Change a freeze or seal by hand (`frozen_fen=0`, `state=3`, ...): the
    feed records it like any change, stamped with the wall clock."""
    with _write(db) as conn:
        _update(conn, hold_id, columns)


def lose_event(db: Path, hold_id: str, **columns: object) -> int:
    """Change a hold by hand and delete the feed rows the change appended
    (the hold's own and those of holds queued behind it), in one
    transaction: the feed never shows it, as if its event had been lost.
    Earlier changes stay. Returns how many feed rows were deleted."""
    with _write(db) as conn:
        before = conn.execute("SELECT COALESCE(MAX(cursor), 0) FROM hold_changes").fetchone()[0]
        _update(conn, hold_id, columns)
        return conn.execute("DELETE FROM hold_changes WHERE cursor > ?", (before,)).rowcount


def delete_hold(db: Path, hold_id: str) -> None:
    """Remove a freeze or seal from the agency's records, as no agency
    would: its changes leave the feed with it, and the holds queued behind
    it move up (a change each)."""
    with _write(db) as conn:
        table, key = _hold_table(conn)
        assert conn.execute(f"DELETE FROM {table} WHERE {key} = ?", (hold_id,)).rowcount == 1, hold_id


def hold_changes(db: Path) -> list[sqlite3.Row]:
    """The feed's rows as stored: cursor, hold_id, changed_at_us."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM hold_changes ORDER BY cursor").fetchall()
