"""The seal ledger (查封登记簿) the vehicle and real-estate registries share.

Plain functions over an open SQLite connection and a time `now_us`; they
raise Refusal to refuse and know nothing of gRPC. A registry supplies its
SealRules (statutory period, how to find an asset's owners); the caller
runs each operation inside `control.exactly_once`, so one operation is one
transaction. Every refusal is raised before anything but settling is
written, because exactly_once commits the transaction it refuses in.

The rules, after the 2020 规定 on seals and DOMAIN.md:

- One ACTIVE seal per asset at a time. A seal placed while another is
  ACTIVE waits as QUEUED (轮候), in registration order (`queue_seq`), and
  takes effect when everything ahead of it has ended.
- A seal lasts at most `max_years` from the moment it takes effect, and each
  renewal at most `max_years` from the moment it is renewed.
- A queued seal keeps the period it asked for, not the date: while QUEUED,
  `expires_at_us` is the end it would have had, had it taken effect at
  registration, so its period is `expires_at_us - registered_at_us`. On
  promotion at time t it expires at t + period, capped at `max_years` after
  t (a period counted over a 29 February may be a day longer than
  `max_years` counted from t).
- An ACTIVE seal whose end has come (expires_at <= now) LAPSES at its end
  (ended_at = expires_at), and the next queued seal takes effect at that
  same moment, not when somebody next looks. Settling is lazy: `settle`
  runs first in every operation and `settle_due` in every query.
- Only the court that placed a seal, acting in the same case, may renew or
  release it (a court must act for one case's purpose; DOMAIN "Who may
  ask"). Case numbers written with full-width brackets are the same case.
- A case has at most one pending (ACTIVE or QUEUED) seal per asset.
- A transfer after a court sale is asked by the court holding the ACTIVE
  seal, in that seal's case; it ends every pending seal as TRANSFERRED.
"""

import datetime as dt
import sqlite3
from collections.abc import Callable, Collection
from dataclasses import dataclass

import grpc

from protos.common.v1 import common_pb2
from services.agency import faults
from services.agency.control import Refusal, check_expiry
from services.common.periods import add_years
from services.agency.store import holder, timestamp, transaction
from services.common.validation import FieldError

ACTIVE = common_pb2.HOLD_STATE_ACTIVE
QUEUED = common_pb2.HOLD_STATE_QUEUED
RELEASED = common_pb2.HOLD_STATE_RELEASED
LAPSED = common_pb2.HOLD_STATE_LAPSED
TRANSFERRED = common_pb2.HOLD_STATE_TRANSFERRED
PENDING = (ACTIVE, QUEUED)

# Lapsing looks for ACTIVE seals whose end has passed before every
# operation and query: this index keeps that a range scan. IF NOT EXISTS
# because `prepare` adds it to databases seeded before it existed.
LEDGER_INDEXES = """
CREATE INDEX IF NOT EXISTS seals_due ON seals (state, expires_at_us);
"""

# A seal as a query shows it: the row and its queue position (1 for the
# first queued seal on the asset, 0 when not queued).
SealView = tuple[sqlite3.Row, int]


@dataclass(frozen=True)
class SealRules:
    """What differs between registries that seal whole assets."""

    # Request field naming the asset ("plate", "certificate_number"); also
    # names it in refusals.
    asset_field: str
    # Statutory maximum of a seal period and of each renewal.
    max_years: int
    # ID numbers of the asset's registered owners; raises Refusal when the
    # asset is unknown or cannot be sealed.
    owners_of: Callable[[sqlite3.Connection, str], Collection[str]]
    # Format check of an asset ID (raises InvalidIdentifier), for validation.
    check_asset_id: Callable[[str], str]
    # Seal IDs are this prefix and the registration sequence: unique within
    # one registry, which is how the gateway addresses them.
    id_prefix: str


def prepare(conn: sqlite3.Connection) -> None:
    """Create the ledger's indexes if the database predates them."""
    conn.executescript(LEDGER_INDEXES)


def seal(
    conn: sqlite3.Connection,
    rules: SealRules,
    *,
    asset_id: str,
    subject: common_pb2.Subject,
    case_number: str,
    court_code: str,
    expires_us: int,
    now_us: int,
) -> SealView:
    """Seal `asset_id` for the case: ACTIVE if nothing is, else QUEUED.

    The subject must be a registered owner of the asset (by ID number) and
    match the registered name and document type (证件号码与姓名一致).
    """
    _check_period(rules, expires_us, now_us)
    settle(conn, rules, now_us)
    if subject.id_number not in rules.owners_of(conn, asset_id):
        raise Refusal(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"subject: not a registered owner of {rules.asset_field} {asset_id};"
            " only the debtor's own asset can be sealed",
        )
    registered = holder(conn, subject.id_number)
    if registered is None or (registered["name"], registered["subject_type"]) != (subject.name, subject.type):
        raise Refusal(
            grpc.StatusCode.FAILED_PRECONDITION,
            "subject: the name or document type does not match the registered owner (证件号码与姓名不一致)",
        )
    for row in _pending(conn, asset_id):
        if faults.active("duplicate_hold_accepted"):
            break
        if row["court_code"] == court_code and same_case(row["case_number"], case_number):
            raise Refusal(
                grpc.StatusCode.ALREADY_EXISTS,
                f"case: {case_number} already has seal {row['seal_id']} ({_state_name(row['state'])}) on"
                f" {rules.asset_field} {asset_id}; renew or release that seal instead",
            )
    active = conn.execute(
        "SELECT 1 FROM seals WHERE asset_id = ? AND state = ?", (asset_id, ACTIVE)
    ).fetchone()
    seq = conn.execute("SELECT COALESCE(MAX(queue_seq), 0) + 1 FROM seals").fetchone()[0]
    seal_id = f"{rules.id_prefix}{seq:010d}"
    conn.execute(
        "INSERT INTO seals (seal_id, asset_id, case_number, court_code, state, queue_seq, registered_at_us,"
        " effective_at_us, expires_at_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            seal_id, asset_id, case_number, court_code, QUEUED if active else ACTIVE, seq, now_us,
            None if active else now_us, expires_us,
        ),
    )
    return view(conn, seal_id)


def renew(
    conn: sqlite3.Connection,
    rules: SealRules,
    *,
    seal_id: str,
    case_number: str,
    court_code: str,
    expires_us: int,
    now_us: int,
) -> SealView:
    """Move the end of an ACTIVE, unexpired seal later, at most `max_years` from now."""
    if not faults.active("renew_past_period"):
        _check_period(rules, expires_us, now_us)
    settle(conn, rules, now_us)
    row = _own_seal(conn, seal_id, court_code, case_number, "renew")
    if row["state"] != ACTIVE:
        raise Refusal(grpc.StatusCode.FAILED_PRECONDITION, _not_active(conn, rules, row, "renewed"))
    if expires_us <= row["expires_at_us"]:
        raise Refusal(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"expires_at: must be later than the seal's current end {iso(row['expires_at_us'])}",
        )
    conn.execute("UPDATE seals SET expires_at_us = ? WHERE seal_id = ?", (expires_us, seal_id))
    return view(conn, seal_id)


def release(
    conn: sqlite3.Connection, rules: SealRules, *, seal_id: str, case_number: str, court_code: str, now_us: int
) -> SealView:
    """Release (解封) an ACTIVE or QUEUED seal; the next queued one takes effect now."""
    settle(conn, rules, now_us)
    row = _own_seal(conn, seal_id, court_code, case_number, "release")
    if row["state"] not in PENDING:
        raise Refusal(grpc.StatusCode.FAILED_PRECONDITION, _not_active(conn, rules, row, "released"))
    conn.execute(
        "UPDATE seals SET state = ?, ended_at_us = ? WHERE seal_id = ?", (RELEASED, now_us, seal_id)
    )
    if row["state"] == ACTIVE:
        _promote(conn, rules, row["asset_id"], now_us)
    return view(conn, seal_id)


def active_seal_for(
    conn: sqlite3.Connection, rules: SealRules, *, asset_id: str, court_code: str, case_number: str, action: str
) -> sqlite3.Row:
    """The ACTIVE seal on the asset through which the case may `action` it
    (for example transfer it after a court sale); Refusal otherwise.

    Call after `settle`. A court whose seal is only queued is told so
    (FAILED_PRECONDITION: it may act once its seal takes effect); any other
    court or case is not the holder (PERMISSION_DENIED).
    """
    pending = _pending(conn, asset_id)
    active = next((row for row in pending if row["state"] == ACTIVE), None)
    if active is None:
        raise Refusal(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"{rules.asset_field}: {asset_id} has no active seal; only the court holding the active seal may"
            f" {action} it",
        )
    if active["court_code"] == court_code and same_case(active["case_number"], case_number):
        return active
    own = [row for row in pending if row["court_code"] == court_code and same_case(row["case_number"], case_number)]
    if own:
        queued = own[0]
        raise Refusal(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"case: seal {queued['seal_id']} of this case is only queued (轮候, position"
            f" {_queue_position(conn, queued)}) behind seal {active['seal_id']} of court {active['court_code']};"
            f" only the court holding the active seal may {action} {asset_id}",
        )
    raise Refusal(
        grpc.StatusCode.PERMISSION_DENIED,
        f"case: the active seal {active['seal_id']} on {asset_id} is held by court {active['court_code']} for case"
        f" {active['case_number']}; only that court, in that case, may {action} it",
    )


def end_pending(conn: sqlite3.Connection, asset_id: str, state: int, now_us: int) -> list[str]:
    """End every ACTIVE and QUEUED seal on the asset in `state` (TRANSFERRED
    after a court sale); their IDs in registration order. No promotion."""
    ended = [row["seal_id"] for row in _pending(conn, asset_id)]
    conn.execute(
        "UPDATE seals SET state = ?, ended_at_us = ? WHERE asset_id = ? AND state IN (?, ?)",
        (state, now_us, asset_id, *PENDING),
    )
    return ended


def settle(conn: sqlite3.Connection, rules: SealRules, now_us: int) -> list[str]:
    """Lapse every ACTIVE seal whose end is at or before `now_us`, each at
    its end, promoting the next queued seal at that moment (which may in
    turn lapse). Call inside a transaction; returns the lapsed seal IDs."""
    lapsed: list[str] = []
    while not faults.active("lapse_not_applied"):
        row = conn.execute(
            "SELECT seal_id, asset_id, expires_at_us FROM seals WHERE state = ? AND expires_at_us <= ?"
            " ORDER BY expires_at_us, queue_seq LIMIT 1",
            (ACTIVE, now_us),
        ).fetchone()
        if row is None:
            return lapsed
        conn.execute(
            "UPDATE seals SET state = ?, ended_at_us = expires_at_us WHERE seal_id = ?", (LAPSED, row["seal_id"])
        )
        lapsed.append(row["seal_id"])
        _promote(conn, rules, row["asset_id"], row["expires_at_us"])
    return lapsed


def settle_due(conn: sqlite3.Connection, rules: SealRules, now_us: int) -> list[str]:
    """`settle` in its own transaction, for the query path; only an indexed
    look-up when nothing is due."""
    if faults.active("lapse_not_applied") or conn.execute(
        "SELECT 1 FROM seals WHERE state = ? AND expires_at_us <= ? LIMIT 1", (ACTIVE, now_us)
    ).fetchone() is None:
        return []
    with transaction(conn, now_us=now_us):
        return settle(conn, rules, now_us)


def view(conn: sqlite3.Connection, seal_id: str) -> SealView:
    row = conn.execute("SELECT * FROM seals WHERE seal_id = ?", (seal_id,)).fetchone()
    return row, _queue_position(conn, row)


def same_case(a: str, b: str) -> bool:
    """Courts write case numbers with ASCII or full-width brackets."""
    return _normal_case(a) == _normal_case(b)


def iso(us: int) -> str:
    return dt.datetime.fromtimestamp(us // 1_000_000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _normal_case(case_number: str) -> str:
    return case_number.replace("（", "(").replace("）", ")")


def _check_period(rules: SealRules, expires_us: int, start_us: int) -> None:
    # Servicers check this first as INVALID_ARGUMENT; the ledger checks it
    # again so that no caller can place or renew beyond the statute.
    try:
        check_expiry(timestamp(expires_us), "expires_at", start_us=start_us, max_years=rules.max_years)
    except FieldError as exc:
        raise Refusal(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None


def _promote(conn: sqlite3.Connection, rules: SealRules, asset_id: str, at_us: int) -> None:
    order = "DESC" if faults.active("queue_order_ignored") else ""
    row = conn.execute(
        "SELECT seal_id, registered_at_us, expires_at_us FROM seals WHERE asset_id = ? AND state = ?"
        f" ORDER BY queue_seq {order} LIMIT 1",
        (asset_id, QUEUED),
    ).fetchone()
    if row is None:
        return
    period = row["expires_at_us"] - row["registered_at_us"]
    expires_us = min(at_us + period, add_years(at_us, rules.max_years))
    if faults.active("period_from_registration"):
        expires_us = row["expires_at_us"]
    conn.execute(
        "UPDATE seals SET state = ?, effective_at_us = ?, expires_at_us = ? WHERE seal_id = ?",
        (ACTIVE, at_us, expires_us, row["seal_id"]),
    )


def _pending(conn: sqlite3.Connection, asset_id: str) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT * FROM seals WHERE asset_id = ? AND state IN (?, ?) ORDER BY queue_seq", (asset_id, *PENDING)
    ).fetchall()


def _queue_position(conn: sqlite3.Connection, row: sqlite3.Row) -> int:
    if row["state"] != QUEUED:
        return 0
    return conn.execute(
        "SELECT COUNT(*) FROM seals WHERE asset_id = ? AND state = ? AND queue_seq <= ?",
        (row["asset_id"], QUEUED, row["queue_seq"]),
    ).fetchone()[0]


def _own_seal(
    conn: sqlite3.Connection, seal_id: str, court_code: str, case_number: str, action: str
) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM seals WHERE seal_id = ?", (seal_id,)).fetchone()
    if row is None:
        code = grpc.StatusCode.NOT_FOUND
        if faults.active("not_found_as_failed_precondition"):
            code = grpc.StatusCode.FAILED_PRECONDITION
        raise Refusal(code, f"seal_id: no seal {seal_id} is registered here")
    if row["court_code"] != court_code:
        raise Refusal(
            grpc.StatusCode.PERMISSION_DENIED,
            f"seal_id: {seal_id} was placed by court {row['court_code']}; only that court may {action} it",
        )
    if not same_case(row["case_number"], case_number):
        raise Refusal(
            grpc.StatusCode.PERMISSION_DENIED,
            f"seal_id: {seal_id} was placed for case {row['case_number']}; {action} it under that case",
        )
    return row


def _not_active(conn: sqlite3.Connection, rules: SealRules, row: sqlite3.Row, verb: str) -> str:
    seal_id, state = row["seal_id"], row["state"]
    if state == QUEUED:
        return (
            f"seal_id: {seal_id} is queued (轮候, position {_queue_position(conn, row)}) and has not taken"
            f" effect; only an active seal can be {verb}"
        )
    if state == LAPSED:
        return (
            f"seal_id: {seal_id} lapsed at {iso(row['ended_at_us'])} without renewal; it can no longer be"
            f" {verb} (a seal is renewed only before it expires; place a new one)"
        )
    if state == RELEASED:
        return f"seal_id: {seal_id} was already released at {iso(row['ended_at_us'])}"
    if state == TRANSFERRED:
        return (
            f"seal_id: {seal_id} ended at {iso(row['ended_at_us'])} when {rules.asset_field} {row['asset_id']}"
            " was transferred after a court sale"
        )
    return f"seal_id: {seal_id} is {_state_name(state)} and cannot be {verb}"


def _state_name(state: int) -> str:
    return common_pb2.HoldState.Name(state).removeprefix("HOLD_STATE_")
