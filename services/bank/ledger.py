"""The bank's freeze ledger: freeze, renew, release, deduct, lapse and the 轮候 queue, over SQLite.

Plain functions over a connection and a moment `now_us`; the caller runs
each inside one transaction (services.agency.control.exactly_once) and
these functions raise Refusal before writing anything of their own, so a
refusal leaves only settled lapses behind (which were true anyway).

The life of a freeze (HoldState):

    QUEUED ──(funds freed: release, lapse, full deduction)──▶ ACTIVE
    ACTIVE ──release (whole)──▶ RELEASED
    ACTIVE ──expires_at passes unrenewed──▶ LAPSED
    ACTIVE ──deductions take all of frozen_fen──▶ DEDUCTED
    QUEUED ──release (whole)──▶ RELEASED

An ended freeze (RELEASED, LAPSED, DEDUCTED) holds nothing: frozen_fen 0.
Money on an account: available = balance − Σ frozen_fen of ACTIVE freezes.

Where DOMAIN.md is silent, this ledger decides:
- A freeze takes effect at once when the account has available funds (it
  freezes min(amount, available) and reports the shortfall) or when no
  active freeze holds anything (an empty account: ACTIVE, 0 frozen, all
  shortfall). It queues only behind funds other freezes hold, and behind
  any freeze already queued (registration order is the court's priority).
- A queued freeze that takes effect freezes what is available then and
  keeps its shortfall; it is not topped up later when more funds free.
- Its period starts when it takes effect: expires_at = effective_at +
  the period asked for at registration, capped at one calendar year.
- Lapses are settled lazily but exactly: before every control operation
  and every query, each ACTIVE freeze with expires_at ≤ now lapses at its
  own expires_at, earliest first; freezes expiring at the same instant
  lapse together and the queue is promoted at that instant. So a freeze
  promoted by a lapse is effective from the lapse, not from whenever
  someone next looked.
- Renewal, release and deduction need both the placing court and the same
  case: a court acts on a freeze only for the case it was placed for.
- A queued freeze can only be released whole: it holds nothing to reduce.
- Time-relative rules on expires_at are checked here, not in validation:
  they are decided when the request is first applied. A success is
  recorded under its key, so a retry long after still gets the original
  answer; the refusal (INVALID_ARGUMENT, a FieldError) is not, so the key
  stays free for the corrected request, as for any malformed request.
"""

import sqlite3
import uuid
from dataclasses import dataclass

import grpc

from protos.bank.v1 import bank_pb2
from protos.common.v1 import common_pb2
from services.agency import faults
from services.agency.control import Refusal, check_expiry
from services.common.periods import BANK_FREEZE_YEARS, add_years
from services.agency.store import timestamp

ACTIVE = common_pb2.HOLD_STATE_ACTIVE
QUEUED = common_pb2.HOLD_STATE_QUEUED
RELEASED = common_pb2.HOLD_STATE_RELEASED
LAPSED = common_pb2.HOLD_STATE_LAPSED
DEDUCTED = common_pb2.HOLD_STATE_DEDUCTED
ENDED_STATES = (RELEASED, LAPSED, DEDUCTED)


@dataclass(frozen=True)
class Authority:
    """On whose behalf: the case and the court handling it."""

    case_number: str
    court_code: str


@dataclass(frozen=True)
class Holder:
    """The account holder as the court names them."""

    id_number: str
    subject_type: int
    name: str


@dataclass(frozen=True)
class CourtAccount:
    """The court's receiving account for deducted funds."""

    bank_name: str
    account_number: str
    account_name: str


def state_name(state: int) -> str:
    return common_pb2.HoldState.Name(state).removeprefix("HOLD_STATE_")


# Settling lapses


def lapses_due(conn: sqlite3.Connection, now_us: int) -> bool:
    """Is any ACTIVE freeze at or past its expiry? One probe of freezes_due."""
    if faults.active("lapse_not_applied"):
        return False
    return (
        conn.execute(
            "SELECT 1 FROM freezes WHERE state = ? AND expires_at_us <= ? LIMIT 1", (ACTIVE, now_us)
        ).fetchone()
        is not None
    )


def settle(conn: sqlite3.Connection, now_us: int) -> int:
    """Lapse every ACTIVE freeze whose expiry has come and, on accounts with
    a queue, promote it at the moment of each lapse, earliest first; returns
    how many lapsed. A promoted freeze may itself lapse before now_us: the
    loop takes it in its turn."""
    if faults.active("lapse_not_applied"):
        return 0
    # Where nothing is queued, lapses promote nobody and their order cannot
    # matter: one statement settles them all (a backlog after downtime
    # would otherwise cost a round of queries per expiry moment).
    lapsed = conn.execute(
        "UPDATE freezes SET state = ?, frozen_fen = 0, ended_at_us = expires_at_us"
        " WHERE state = ? AND expires_at_us <= ?"
        " AND account_number NOT IN (SELECT account_number FROM freezes WHERE state = ?)",
        (LAPSED, ACTIVE, now_us, QUEUED),
    ).rowcount
    while True:
        moment = conn.execute(
            "SELECT MIN(expires_at_us) FROM freezes WHERE state = ? AND expires_at_us <= ?", (ACTIVE, now_us)
        ).fetchone()[0]
        if moment is None:
            return lapsed
        accounts = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT account_number FROM freezes WHERE state = ? AND expires_at_us = ?"
                " ORDER BY account_number",
                (ACTIVE, moment),
            )
        ]
        lapsed += conn.execute(
            "UPDATE freezes SET state = ?, frozen_fen = 0, ended_at_us = expires_at_us"
            " WHERE state = ? AND expires_at_us = ?",
            (LAPSED, ACTIVE, moment),
        ).rowcount
        for account_number in accounts:
            promote(conn, account_number, moment)


def promote(conn: sqlite3.Connection, account_number: str, at_us: int) -> list[str]:
    """Let queued freezes on the account take effect at `at_us`, in
    registration order, while there is something for them to take (see the
    module docstring); returns the IDs that took effect."""
    balance, held = _balance_and_held(conn, account_number)
    available = balance - held
    promoted = []
    order = "DESC" if faults.active("queue_order_ignored") else ""
    for row in conn.execute(
        "SELECT freeze_id, requested_fen, expires_at_us, period_us FROM freezes"
        f" WHERE account_number = ? AND state = ? ORDER BY queue_seq {order}",
        (account_number, QUEUED),
    ).fetchall():
        if available <= 0 and held > 0:
            break
        frozen = min(row["requested_fen"], available)
        conn.execute(
            "UPDATE freezes SET state = ?, frozen_fen = ?, shortfall_fen = ?, effective_at_us = ?,"
            " expires_at_us = ? WHERE freeze_id = ?",
            (
                ACTIVE, frozen, row["requested_fen"] - frozen, at_us,
                _expiry_from(at_us, row["period_us"], row["expires_at_us"]), row["freeze_id"],
            ),
        )
        available -= frozen
        held += frozen
        promoted.append(row["freeze_id"])
    return promoted


def _expiry_from(effective_us: int, period_us: int | None, registered_expiry_us: int) -> int:
    if period_us is None or faults.active("period_from_registration"):
        return registered_expiry_us
    # A period asked for across a 29 February can be a day longer than a
    # calendar year that starts later; the statutory limit wins.
    return min(effective_us + period_us, add_years(effective_us, BANK_FREEZE_YEARS))


# Operations


def freeze(
    conn: sqlite3.Connection,
    *,
    authority: Authority,
    holder: Holder,
    account_number: str,
    amount_fen: int,
    expires_at_us: int,
    now_us: int,
) -> str:
    """Register a freeze of `amount_fen` until `expires_at_us`; returns its ID.

    ACTIVE at once with min(amount, available) frozen and the rest reported
    as shortfall, or QUEUED behind funds other freezes hold. Refused when
    the account is unknown (NOT_FOUND), not the holder's or closed
    (FAILED_PRECONDITION), the case already has a pending freeze on it
    (ALREADY_EXISTS), or expires_at is not within one year from now
    (INVALID_ARGUMENT).
    """
    settle(conn, now_us)
    account = _account_of(conn, account_number, holder)
    if account["status"] == bank_pb2.ACCOUNT_STATUS_CLOSED:
        raise Refusal(grpc.StatusCode.FAILED_PRECONDITION, f"account_number: account {account_number} is closed")
    _check_expiry(expires_at_us, now_us)
    existing = conn.execute(
        "SELECT freeze_id, state FROM freezes WHERE account_number = ? AND case_number = ? AND court_code = ?"
        " AND state IN (?, ?) ORDER BY queue_seq LIMIT 1",
        (account_number, authority.case_number, authority.court_code, ACTIVE, QUEUED),
    ).fetchone()
    if existing is not None and not faults.active("duplicate_hold_accepted"):
        raise Refusal(
            grpc.StatusCode.ALREADY_EXISTS,
            f"case {authority.case_number} already has freeze {existing['freeze_id']}"
            f" ({state_name(existing['state'])}) on account {account_number}; renew or release it instead",
        )
    balance, held = _balance_and_held(conn, account_number)
    available = balance - held
    queue_waiting = conn.execute(
        "SELECT 1 FROM freezes WHERE account_number = ? AND state = ? LIMIT 1", (account_number, QUEUED)
    ).fetchone()
    freeze_id = _new_id("fz")
    if queue_waiting is not None or (available <= 0 and held > 0):
        state, frozen, shortfall, effective = QUEUED, 0, 0, None
    else:
        frozen = amount_fen if faults.active("no_shortfall") else min(amount_fen, available)
        state, shortfall, effective = ACTIVE, amount_fen - frozen, now_us
    conn.execute(
        "INSERT INTO freezes (freeze_id, account_number, case_number, court_code, state, requested_fen,"
        " frozen_fen, shortfall_fen, deducted_fen, queue_seq, registered_at_us, effective_at_us, expires_at_us,"
        " ended_at_us, period_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, NULL, ?)",
        (
            freeze_id, account_number, authority.case_number, authority.court_code, state, amount_fen,
            frozen, shortfall, _next_queue_seq(conn), now_us, effective, expires_at_us,
            expires_at_us - now_us,
        ),
    )
    return freeze_id


def renew(
    conn: sqlite3.Connection, *, authority: Authority, freeze_id: str, expires_at_us: int, now_us: int
) -> str:
    """Extend an ACTIVE freeze before it lapses to a later expires_at, at
    most one year from now (续冻). A queued freeze has no running period."""
    settle(conn, now_us)
    row = _freeze_for(conn, freeze_id, authority, "renew")
    if row["state"] == LAPSED:
        raise Refusal(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"freeze {freeze_id} lapsed at {_iso(row['ended_at_us'])}; a freeze can be renewed only before it"
            " expires: register a new freeze",
        )
    if row["state"] != ACTIVE:
        raise Refusal(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"freeze {freeze_id} is not active ({state_name(row['state'])}); only an active freeze can be"
            " renewed" + ("; a queued freeze's period starts when it takes effect" if row["state"] == QUEUED else ""),
        )
    if not faults.active("renew_past_period"):
        _check_expiry(expires_at_us, now_us)
    if expires_at_us <= row["expires_at_us"]:
        raise Refusal(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"expires_at: must be later than the current expiry {_iso(row['expires_at_us'])}",
        )
    conn.execute("UPDATE freezes SET expires_at_us = ? WHERE freeze_id = ?", (expires_at_us, freeze_id))
    return freeze_id


def release(conn: sqlite3.Connection, *, authority: Authority, freeze_id: str, amount_fen: int, now_us: int) -> str:
    """Release a whole freeze (amount 0, or exactly what is frozen) or part
    of an active one's frozen amount (excess seizure); then the queue on the
    account moves up."""
    settle(conn, now_us)
    row = _freeze_for(conn, freeze_id, authority, "release")
    if row["state"] not in (ACTIVE, QUEUED):
        raise Refusal(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"freeze {freeze_id} has already ended ({state_name(row['state'])}); nothing to release",
        )
    frozen = row["frozen_fen"]
    if amount_fen == 0 or (row["state"] == ACTIVE and amount_fen == frozen):
        conn.execute(
            "UPDATE freezes SET state = ?, frozen_fen = 0, ended_at_us = ? WHERE freeze_id = ?",
            (RELEASED, now_us, freeze_id),
        )
    elif row["state"] == QUEUED:
        raise Refusal(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"amount_fen: freeze {freeze_id} is queued and holds nothing yet; release it whole (amount_fen 0)",
        )
    elif amount_fen < frozen:
        conn.execute("UPDATE freezes SET frozen_fen = ? WHERE freeze_id = ?", (frozen - amount_fen, freeze_id))
    else:
        raise Refusal(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"amount_fen: freeze {freeze_id} holds {frozen} fen; release at most that (0 releases the whole freeze)",
        )
    promote(conn, row["account_number"], now_us)
    return freeze_id


def deduct_from_freeze(
    conn: sqlite3.Connection,
    *,
    authority: Authority,
    freeze_id: str,
    amount_fen: int,
    court_account: CourtAccount,
    now_us: int,
    holder: Holder | None = None,
) -> str:
    """Move `amount_fen` of an ACTIVE freeze to the court (扣划); returns the
    deduction ID. The rest stays frozen; a freeze deducted to zero ends
    DEDUCTED. `holder`, when the court names one, must own the account."""
    settle(conn, now_us)
    row = _freeze_for(conn, freeze_id, authority, "deduct from")
    if holder is not None:
        _account_of(conn, row["account_number"], holder)
    if row["state"] != ACTIVE:
        raise Refusal(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"freeze {freeze_id} is not active ({state_name(row['state'])}); only an active freeze can be deducted",
        )
    frozen = row["frozen_fen"]
    if amount_fen > frozen and not faults.active("deduct_beyond_freeze"):
        raise Refusal(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"amount_fen: only {frozen} fen remains frozen on freeze {freeze_id}; deduct at most that",
        )
    remaining = max(0, frozen - amount_fen)
    _debit(conn, row["account_number"], amount_fen)
    conn.execute(
        "UPDATE freezes SET frozen_fen = ?, deducted_fen = deducted_fen + ?, state = ?, ended_at_us = ?"
        " WHERE freeze_id = ?",
        (remaining, amount_fen, DEDUCTED if remaining == 0 else ACTIVE, now_us if remaining == 0 else None, freeze_id),
    )
    deduction_id = _record_deduction(
        conn, row["account_number"], freeze_id, authority, amount_fen, court_account, now_us
    )
    if remaining == 0:
        promote(conn, row["account_number"], now_us)
    return deduction_id


def deduct_direct(
    conn: sqlite3.Connection,
    *,
    authority: Authority,
    holder: Holder,
    account_number: str,
    amount_fen: int,
    court_account: CourtAccount,
    now_us: int,
) -> str:
    """Deduct straight from the available balance: an atomic freeze and
    deduction, recorded as a freeze that ends DEDUCTED at once. Never more
    than is available; funds other freezes hold are not touched."""
    settle(conn, now_us)
    _account_of(conn, account_number, holder)
    balance, held = _balance_and_held(conn, account_number)
    available = balance - held
    if amount_fen > available:
        raise Refusal(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"amount_fen: only {max(available, 0)} fen is available (unfrozen) on account {account_number};"
            " deduct at most that, or deduct from the case's freeze",
        )
    freeze_id = _new_id("fz")
    conn.execute(
        "INSERT INTO freezes (freeze_id, account_number, case_number, court_code, state, requested_fen,"
        " frozen_fen, shortfall_fen, deducted_fen, queue_seq, registered_at_us, effective_at_us, expires_at_us,"
        " ended_at_us, period_us) VALUES (?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?, ?, NULL)",
        (
            freeze_id, account_number, authority.case_number, authority.court_code, DEDUCTED, amount_fen,
            amount_fen, _next_queue_seq(conn), now_us, now_us, now_us, now_us,
        ),
    )
    _debit(conn, account_number, amount_fen)
    return _record_deduction(conn, account_number, freeze_id, authority, amount_fen, court_account, now_us)


# Invariants


def check_conservation(conn: sqlite3.Connection) -> list[str]:
    """Every violation of the ledger's invariants, as readable lines; empty
    when all hold. Scans every account: for tests and audits, not requests.

    For each account: opening = balance + Σ deductions; 0 ≤ Σ frozen of
    ACTIVE freezes ≤ balance; a freeze waits in the queue only while active
    freezes hold every fen. For each freeze: deducted = Σ its deductions;
    frozen + deducted + shortfall ≤ requested; ended ones hold nothing; at
    most one pending freeze per case and court on an account.
    """
    violations = []
    for r in conn.execute(
        """
        SELECT a.account_number, a.opening_balance_fen AS opening, a.balance_fen AS balance,
               COALESCE(d.total, 0) AS deducted, COALESCE(f.held, 0) AS held, COALESCE(f.queued, 0) AS queued
        FROM accounts a
        LEFT JOIN (SELECT account_number, SUM(amount_fen) AS total FROM deductions GROUP BY account_number) d
               ON d.account_number = a.account_number
        LEFT JOIN (SELECT account_number, SUM(CASE WHEN state = ? THEN frozen_fen ELSE 0 END) AS held,
                          SUM(state = ?) AS queued
                   FROM freezes GROUP BY account_number) f
               ON f.account_number = a.account_number
        WHERE d.account_number IS NOT NULL OR f.account_number IS NOT NULL
           OR a.balance_fen != a.opening_balance_fen OR a.balance_fen < 0
        """,
        (ACTIVE, QUEUED),
    ):
        name = r["account_number"]
        if r["opening"] != r["balance"] + r["deducted"]:
            violations.append(
                f"account {name}: opening {r['opening']} != balance {r['balance']} + deductions {r['deducted']}"
            )
        if r["balance"] < 0:
            violations.append(f"account {name}: negative balance {r['balance']}")
        if r["held"] > r["balance"]:
            violations.append(f"account {name}: active freezes hold {r['held']} > balance {r['balance']}")
        if r["queued"] and not (r["held"] > 0 and r["held"] >= r["balance"]):
            violations.append(
                f"account {name}: {r['queued']} freeze(s) queued while funds are free"
                f" (balance {r['balance']}, held {r['held']})"
            )
    for r in conn.execute(
        """
        SELECT f.*, COALESCE(d.total, 0) AS deductions_total
        FROM freezes f
        LEFT JOIN (SELECT freeze_id, SUM(amount_fen) AS total FROM deductions GROUP BY freeze_id) d
               ON d.freeze_id = f.freeze_id
        """
    ):
        name = r["freeze_id"]
        if min(r["frozen_fen"], r["deducted_fen"], r["shortfall_fen"]) < 0:
            violations.append(f"freeze {name}: negative amount")
        if r["deducted_fen"] != r["deductions_total"]:
            violations.append(f"freeze {name}: deducted {r['deducted_fen']} != its deductions {r['deductions_total']}")
        if r["frozen_fen"] + r["deducted_fen"] + r["shortfall_fen"] > r["requested_fen"]:
            violations.append(
                f"freeze {name}: frozen {r['frozen_fen']} + deducted {r['deducted_fen']}"
                f" + shortfall {r['shortfall_fen']} > requested {r['requested_fen']}"
            )
        if r["state"] in ENDED_STATES and (r["frozen_fen"] != 0 or r["ended_at_us"] is None):
            violations.append(f"freeze {name}: ended ({state_name(r['state'])}) but still holds {r['frozen_fen']}")
        if r["state"] == QUEUED and (r["frozen_fen"] or r["effective_at_us"] is not None):
            violations.append(f"freeze {name}: queued but holds {r['frozen_fen']} or has taken effect")
        if r["state"] == DEDUCTED and r["deducted_fen"] == 0:
            violations.append(f"freeze {name}: DEDUCTED with nothing deducted")
    for r in conn.execute(
        "SELECT account_number, case_number, court_code, COUNT(*) AS n FROM freezes WHERE state IN (?, ?)"
        " GROUP BY account_number, case_number, court_code HAVING n > 1",
        (ACTIVE, QUEUED),
    ):
        violations.append(
            f"account {r['account_number']}: {r['n']} pending freezes for case {r['case_number']}"
            f" of court {r['court_code']}"
        )
    return violations


# Helpers


def _balance_and_held(conn: sqlite3.Connection, account_number: str) -> tuple[int, int]:
    row = conn.execute(
        "SELECT a.balance_fen, (SELECT COALESCE(SUM(frozen_fen), 0) FROM freezes"
        " WHERE account_number = a.account_number AND state = ?) FROM accounts a WHERE a.account_number = ?",
        (ACTIVE, account_number),
    ).fetchone()
    return row[0], row[1]


def _account_of(conn: sqlite3.Connection, account_number: str, holder: Holder) -> sqlite3.Row:
    """The account, if it exists and the named holder owns it."""
    account = conn.execute(
        "SELECT account_number, owner_id_number, status FROM accounts WHERE account_number = ?", (account_number,)
    ).fetchone()
    if account is None:
        raise Refusal(grpc.StatusCode.NOT_FOUND, f"account_number: no account {account_number} at this institution")
    if account["owner_id_number"] != holder.id_number:
        raise Refusal(grpc.StatusCode.FAILED_PRECONDITION, "account_number: account does not belong to subject")
    registered = conn.execute(
        "SELECT subject_type, name FROM holders WHERE id_number = ?", (holder.id_number,)
    ).fetchone()
    if registered is None or registered["subject_type"] != holder.subject_type or registered["name"] != holder.name:
        raise Refusal(
            grpc.StatusCode.FAILED_PRECONDITION,
            "subject: the name or document type does not match what is registered for this ID number"
            " (证件号码与姓名不一致); check the debtor's registered name",
        )
    return account


def _freeze_for(conn: sqlite3.Connection, freeze_id: str, authority: Authority, action: str) -> sqlite3.Row:
    """The freeze, if this court placed it for this case."""
    row = conn.execute("SELECT * FROM freezes WHERE freeze_id = ?", (freeze_id,)).fetchone()
    if row is None:
        code = grpc.StatusCode.NOT_FOUND
        if faults.active("not_found_as_failed_precondition"):
            code = grpc.StatusCode.FAILED_PRECONDITION
        raise Refusal(code, f"freeze_id: no freeze {freeze_id} at this institution")
    if row["court_code"] != authority.court_code:
        raise Refusal(
            grpc.StatusCode.PERMISSION_DENIED,
            f"freeze {freeze_id} was placed by another court; only the court that placed it may {action} it",
        )
    if row["case_number"] != authority.case_number:
        raise Refusal(
            grpc.StatusCode.PERMISSION_DENIED,
            f"freeze {freeze_id} was placed for case {row['case_number']}; act on it under that case",
        )
    return row


def _check_expiry(expires_at_us: int, now_us: int) -> None:
    """FieldError (INVALID_ARGUMENT, not recorded under the key) unless within the statutory year from now."""
    check_expiry(timestamp(expires_at_us), "expires_at", start_us=now_us, max_years=BANK_FREEZE_YEARS)


def _debit(conn: sqlite3.Connection, account_number: str, amount_fen: int) -> None:
    conn.execute(
        "UPDATE accounts SET balance_fen = balance_fen - ? WHERE account_number = ?", (amount_fen, account_number)
    )


def _record_deduction(
    conn: sqlite3.Connection,
    account_number: str,
    freeze_id: str,
    authority: Authority,
    amount_fen: int,
    court_account: CourtAccount,
    now_us: int,
) -> str:
    deduction_id = _new_id("dd")
    conn.execute(
        "INSERT INTO deductions (deduction_id, account_number, freeze_id, case_number, court_code, amount_fen,"
        " court_bank_name, court_account_number, court_account_name, deducted_at_us)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            deduction_id, account_number, freeze_id, authority.case_number, authority.court_code, amount_fen,
            court_account.bank_name, court_account.account_number, court_account.account_name, now_us,
        ),
    )
    return deduction_id


def _next_queue_seq(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COALESCE(MAX(queue_seq), 0) + 1 FROM freezes").fetchone()[0]


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def _iso(us: int) -> str:
    return timestamp(us).ToJsonString()
