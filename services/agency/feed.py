"""The hold changes feed: the triggers that record every change to a hold, and the paged read of it.

The contract is in protos/common/v1/common.proto (HoldChangesRequest). How
this implementation keeps it:

- Recording. Triggers on the hold table (`freezes` at a bank, `seals` at a
  registry; services/agency/store.py HoldTable) append to `hold_changes`
  (store.COMMON_SCHEMA) inside the transaction that changes the hold.
  Nothing in the ledgers' code writes the feed, so every path that changes
  a hold is covered without being listed: a court's call, a promotion from
  the queue, a lapse at settling, a shortfall, a transfer, and a hand edit
  of the database too.
- Queue positions. A queued hold's `queue_position` is not stored: it is
  counted from the holds queued ahead of it on the same asset. When a hold
  enters or leaves a queue (a promotion, a release of a queued hold, a
  lapse that promotes), every hold queued behind it moves up without its
  own row changing, so the triggers record those holds as changed too.
- Cursor order is commit order. SQLite has one writer at a time and a
  cursor is taken inside the writing transaction, so a reader never sees a
  cursor while a smaller one is still uncommitted and could appear later.
  (An agency on a database with concurrent writers must ensure the same,
  for example by assigning cursors under one lock held to the commit: a
  plain sequence hands out numbers as transactions ask, not as they
  commit, and a reader past a fast transaction's cursor would skip a slow
  one's smaller cursor for good.)
- changed_at is the agency's clock at the change: the triggers read
  `txn_clock`, which store.transaction sets to the clock reading for the
  agency's own transactions (the same `now_us` the operation used, so a
  lapse settled after the test clock jumped is stamped at the agency's
  "now", never before the lapse itself). A write from outside the agency's
  code (a hand edit) finds it NULL and is stamped with SQLite's wall clock.
- Current state. A page is read in one read transaction: the holds are
  rendered from the same snapshot as the changes listed, so no change comes
  with a state older than itself.
"""

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from services.agency.store import HoldTable, transaction
from services.common.identifiers import case_number_spellings
from services.common.validation import FieldError, validate_case, validate_token

logger = logging.getLogger(__name__)

Hold = TypeVar("Hold", bound=Message)

# HoldChangesRequest.limit: 1 to MAX_PAGE, 0 for DEFAULT_PAGE.
DEFAULT_PAGE = 500
MAX_PAGE = 1000


@dataclass(frozen=True)
class Change:
    """One row of a feed page: the change's cursor, the hold as it is now, when it changed."""

    cursor: int
    hold: Any
    changed_at_us: int


def page_size(limit: int) -> int:
    """HoldChangesRequest.limit as a number of changes; FieldError beyond MAX_PAGE."""
    if limit == 0:
        return DEFAULT_PAGE
    if limit > MAX_PAGE:
        raise FieldError("limit", f"must be at most {MAX_PAGE} (0 asks for {DEFAULT_PAGE})")
    return limit


def last_issued_cursor(conn: sqlite3.Connection) -> int:
    """The highest cursor ever issued, deleted rows included (AUTOINCREMENT's high-water mark)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'hold_changes'").fetchone()
    return row[0] if row is not None else 0


class CursorAhead(Exception):
    """The reader's cursor was never issued by this feed."""


def read_changes(
    conn: sqlite3.Connection,
    holds: HoldTable,
    render: Callable[[sqlite3.Connection, str], Hold],
    *,
    after_cursor: int,
    limit: int,
) -> tuple[list[Change], int]:
    """Up to `limit` changes with a cursor after `after_cursor`, in cursor
    order, each with its hold rendered as it is now; and the cursor to ask
    after next. Does not settle: the caller settles first.

    Raises CursorAhead for a cursor the feed never issued.
    """
    with transaction(conn, mode="DEFERRED"):
        issued = last_issued_cursor(conn)
        if after_cursor > issued:
            raise CursorAhead(
                f"after_cursor: {after_cursor} was never issued here (the last cursor issued is {issued}): this"
                " feed has been reset, for example with the agency's records rebuilt; read from 0 and reconcile"
                " every case (ListCaseFreezes / ListCaseSeals)"
            )
        rows = conn.execute(
            f"SELECT c.cursor, c.hold_id, c.changed_at_us, h.{holds.id_column} IS NOT NULL AS present"
            f" FROM hold_changes c LEFT JOIN {holds.table} h ON h.{holds.id_column} = c.hold_id"
            " WHERE c.cursor > ? ORDER BY c.cursor LIMIT ?",
            (after_cursor, limit),
        ).fetchall()
        rendered: dict[str, Hold] = {}
        changes = []
        for row in rows:
            if not row["present"]:
                # Deleting a hold deletes its changes (the delete trigger);
                # a row left by hand is passed over, not a feed stuck on it.
                continue
            hold_id = row["hold_id"]
            if hold_id not in rendered:
                rendered[hold_id] = render(conn, hold_id)
            changes.append(Change(row["cursor"], rendered[hold_id], row["changed_at_us"]))
    return changes, rows[-1]["cursor"] if rows else after_cursor


def case_holds(
    conn: sqlite3.Connection,
    holds: HoldTable,
    render: Callable[[sqlite3.Connection, str], Hold],
    *,
    case_number: str,
    court_code: str,
) -> list[Hold]:
    """Every hold of the case placed by the court, pending or ended, in
    registration order. The case matches however its brackets are written."""
    spellings = case_number_spellings(case_number)
    marks = ",".join("?" * len(spellings))
    with transaction(conn, mode="DEFERRED"):
        ids = [
            row[0]
            for row in conn.execute(
                f"SELECT {holds.id_column} FROM {holds.table} WHERE case_number IN ({marks}) AND court_code = ?"
                " ORDER BY queue_seq",
                (*spellings, court_code),
            )
        ]
        return [render(conn, hold_id) for hold_id in ids]


# The two RPCs every agency kind serves over its own hold table and message.


async def list_changes(
    request: Any,
    context: grpc.aio.ServicerContext,
    *,
    conn: sqlite3.Connection,
    agency_id: str,
    holds: HoldTable,
    render: Callable[[sqlite3.Connection, str], Hold],
    settle: Callable[[], object],
) -> tuple[list[Change], int]:
    """ListFreezeChanges / ListSealChanges: validate, settle what time has
    decided, read one page. The caller wraps the changes in its messages."""
    try:
        validate_token(request.request_id, "request_id", required=False)
        limit = page_size(request.limit)
    except FieldError as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    # Lapses due by now are committed (and so enter the feed) before the
    # page is read: a reader learns of them even when no court calls.
    settle()
    try:
        changes, last_cursor = read_changes(conn, holds, render, after_cursor=request.after_cursor, limit=limit)
    except CursorAhead as exc:
        # FAILED_PRECONDITION, not OUT_OF_RANGE: waiting until the feed
        # grows past the cursor would skip every change up to it.
        logger.warning("feed read refused at %s: %s", agency_id, exc, extra={"agency": agency_id})
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
    # Readers poll: an empty page is not worth a line at INFO.
    logger.log(
        logging.INFO if changes else logging.DEBUG,
        "feed %s: %d change(s) after cursor %d, next after %d",
        request.request_id or "-", len(changes), request.after_cursor, last_cursor,
        extra={"agency": agency_id, "count": len(changes), "after_cursor": request.after_cursor,
               "last_cursor": last_cursor},
    )
    return changes, last_cursor


async def list_case_holds(
    request: Any,
    context: grpc.aio.ServicerContext,
    *,
    conn: sqlite3.Connection,
    agency_id: str,
    holds: HoldTable,
    render: Callable[[sqlite3.Connection, str], Hold],
    settle: Callable[[], object],
) -> list[Hold]:
    """ListCaseFreezes / ListCaseSeals: validate, settle, every hold of the case."""
    try:
        validate_token(request.request_id, "request_id", required=False)
        validate_case(request.case)
    except FieldError as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    settle()
    found = case_holds(
        conn, holds, render, case_number=request.case.case_number, court_code=request.case.court_code
    )
    logger.info(
        "case holds %s: case %s of court %s has %d hold(s) at %s",
        request.request_id or "-", request.case.case_number, request.case.court_code, len(found), agency_id,
        extra={"agency": agency_id, "case_number": request.case.case_number,
               "court_code": request.case.court_code, "count": len(found)},
    )
    return found
