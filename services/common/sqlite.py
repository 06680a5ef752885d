"""SQLite set-up shared by the gateway's ledger and the audit trail."""

import sqlite3
import time


def enable_wal(conn: sqlite3.Connection, attempts: int = 200) -> None:
    """Switch to WAL, retrying: SQLite answers "database is locked" at once,
    without its busy handler, when several processes open a new file together."""
    for attempt in range(attempts):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05)
