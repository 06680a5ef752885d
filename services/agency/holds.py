"""Reading freezes and seals back for query answers: states and queue positions."""

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence

from protos.common.v1 import common_pb2
from services.agency.store import timestamp

# Holds a query reports: in force or waiting (轮候). Ended ones are history.
PENDING_STATES = (common_pb2.HOLD_STATE_ACTIVE, common_pb2.HOLD_STATE_QUEUED)


def queue_positions(rows: Iterable[sqlite3.Row], asset_column: str) -> list[tuple[sqlite3.Row, int]]:
    """Pair each hold with its queue position: 1 for the first queued on
    its asset, 0 when not queued. Rows must come in registration order."""
    waiting: dict[str, int] = defaultdict(int)
    paired = []
    for row in rows:
        position = 0
        if row["state"] == common_pb2.HOLD_STATE_QUEUED:
            waiting[row[asset_column]] += 1
            position = waiting[row[asset_column]]
        paired.append((row, position))
    return paired


def seal_message(row: sqlite3.Row, queue_position: int) -> common_pb2.Seal:
    return common_pb2.Seal(
        seal_id=row["seal_id"],
        asset_id=row["asset_id"],
        case_number=row["case_number"],
        court_code=row["court_code"],
        state=row["state"],
        queue_position=queue_position,
        registered_at=timestamp(row["registered_at_us"]),
        effective_at=timestamp(row["effective_at_us"]),
        expires_at=timestamp(row["expires_at_us"]),
        ended_at=timestamp(row["ended_at_us"]),
    )


def pending_seals(conn: sqlite3.Connection, asset_ids: Sequence[str]) -> dict[str, list[common_pb2.Seal]]:
    """Active and queued seals on each asset, in registration order."""
    if not asset_ids:
        return {}
    marks = ",".join("?" * len(asset_ids))
    rows = conn.execute(
        f"SELECT * FROM seals WHERE asset_id IN ({marks}) AND state IN (?, ?)"
        " ORDER BY asset_id, queue_seq",
        (*asset_ids, *PENDING_STATES),
    ).fetchall()
    seals: dict[str, list[common_pb2.Seal]] = defaultdict(list)
    for row, position in queue_positions(rows, "asset_id"):
        seals[row["asset_id"]].append(seal_message(row, position))
    return seals
