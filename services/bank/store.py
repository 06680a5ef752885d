"""The bank's SQLite tables: accounts, freezes on them, and deductions to courts."""

import sqlite3
from collections import defaultdict

from protos.bank.v1 import bank_pb2
from protos.common.v1 import common_pb2
from services import datagen
from protos.testing.v1 import testing_pb2
from services.agency import faults
from services.agency.holds import PENDING_STATES, queue_positions
from services.agency.store import HoldTable, insert_holders, timestamp
from services.agency.testing import Fixtures, require_owner
from services.bank.config import Settings
from services.common.validation import FieldError, require_text

# Money is integer fen throughout. `opening_balance_fen` is the seeded
# balance, kept for the conservation check: opening = balance + deductions.
# A freeze holds `frozen_fen` of an account's balance while ACTIVE; QUEUED
# ones (轮候) wait in `queue_seq` order. A direct deduction is recorded
# as a freeze that ends DEDUCTED at once, so every deduction names one.
# `period_us` is the period the court asked for (expires_at − registration):
# a queued freeze's period starts only when it takes effect. NULL in rows
# written without it; those keep their registered expiry.
# `freezes_due` makes "is any active freeze past its expiry?" one index
# probe, so lapses can be settled lazily before every read. The freezes
# table has no planner statistics (ANALYZE runs at seeding, when it is
# empty), so per-account lookups must match more index columns in
# freezes_by_account (account, state) than in freezes_due (state): else
# "held on this account" would scan every active freeze.
# Every change to a freeze enters the hold changes feed through the
# triggers FREEZE_HOLDS declares (services/agency/store.py HoldTable).
SCHEMA = """
CREATE TABLE accounts (
    account_number      TEXT PRIMARY KEY,
    owner_id_number     TEXT NOT NULL,
    account_type        INTEGER NOT NULL,
    currency            TEXT NOT NULL,
    opening_balance_fen INTEGER NOT NULL,
    balance_fen         INTEGER NOT NULL CHECK (balance_fen >= 0),
    status              INTEGER NOT NULL,
    branch              TEXT NOT NULL,
    opened_on           TEXT NOT NULL
);
CREATE INDEX accounts_by_owner ON accounts (owner_id_number);

CREATE TABLE freezes (
    freeze_id        TEXT PRIMARY KEY,
    account_number   TEXT NOT NULL REFERENCES accounts (account_number),
    case_number      TEXT NOT NULL,
    court_code       TEXT NOT NULL,
    state            INTEGER NOT NULL,
    requested_fen    INTEGER NOT NULL CHECK (requested_fen > 0),
    frozen_fen       INTEGER NOT NULL DEFAULT 0 CHECK (frozen_fen >= 0),
    shortfall_fen    INTEGER NOT NULL DEFAULT 0 CHECK (shortfall_fen >= 0),
    deducted_fen     INTEGER NOT NULL DEFAULT 0 CHECK (deducted_fen >= 0),
    queue_seq        INTEGER NOT NULL UNIQUE,
    registered_at_us INTEGER NOT NULL,
    effective_at_us  INTEGER,
    expires_at_us    INTEGER NOT NULL,
    ended_at_us      INTEGER,
    period_us        INTEGER CHECK (period_us > 0)
);
CREATE INDEX freezes_by_account ON freezes (account_number, state, queue_seq);
CREATE INDEX freezes_by_case ON freezes (case_number, court_code);
CREATE INDEX freezes_due ON freezes (state, expires_at_us);

CREATE TABLE deductions (
    deduction_id         TEXT PRIMARY KEY,
    account_number       TEXT NOT NULL REFERENCES accounts (account_number),
    freeze_id            TEXT NOT NULL REFERENCES freezes (freeze_id),
    case_number          TEXT NOT NULL,
    court_code           TEXT NOT NULL,
    amount_fen           INTEGER NOT NULL CHECK (amount_fen > 0),
    court_bank_name      TEXT NOT NULL,
    court_account_number TEXT NOT NULL,
    court_account_name   TEXT NOT NULL,
    deducted_at_us       INTEGER NOT NULL
);
CREATE INDEX deductions_by_account ON deductions (account_number);
CREATE INDEX deductions_by_freeze ON deductions (freeze_id);
"""

# What an AccountFreeze reports, for the feed's triggers; period_us is the
# bank's own bookkeeping and not a change a court sees.
FREEZE_HOLDS = HoldTable(
    table="freezes",
    id_column="freeze_id",
    asset_column="account_number",
    reported=(
        "account_number", "case_number", "court_code", "state", "requested_fen", "frozen_fen", "shortfall_fen",
        "deducted_fen", "queue_seq", "registered_at_us", "effective_at_us", "expires_at_us", "ended_at_us",
    ),
)
SCHEMA += FREEZE_HOLDS.triggers()


def populate(conn: sqlite3.Connection, settings: Settings) -> int:
    """Store the generator's accounts for this institution and their holders."""
    population = datagen.subjects(settings.seed, settings.subjects)
    people = {s.id_number: s for s in population}
    holders: set[str] = set()

    def rows():
        for a in datagen.bank_accounts(
            settings.seed, population, settings.agency_id, settings.agency_name, settings.profile
        ):
            holders.add(a.owner_id_number)
            yield (
                a.account_number, a.owner_id_number, a.account_type, a.currency,
                a.balance_fen, a.balance_fen, a.status, a.branch, a.opened_on,
            )

    cursor = conn.executemany(
        "INSERT INTO accounts (account_number, owner_id_number, account_type, currency,"
        " opening_balance_fen, balance_fen, status, branch, opened_on) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows(),
    )
    insert_holders(conn, ((i, people[i].subject_type, people[i].name) for i in sorted(holders)))
    return cursor.rowcount


def load_fixtures(conn: sqlite3.Connection, request: testing_pb2.LoadFixturesRequest, subjects: frozenset[str]) -> int:
    """Test mode: the request's accounts, as if seeded."""
    for i, fixture in enumerate(request.accounts):
        a, where = fixture.account, f"accounts[{i}]"
        require_owner(fixture.owner_id_number, subjects, f"{where}.owner_id_number")
        require_text(a.account_number, f"{where}.account.account_number", 64)
        if len(a.currency) != 3 or not (a.currency.isascii() and a.currency.isalpha() and a.currency.isupper()):
            raise FieldError(f"{where}.account.currency", "must be 3 upper-case letters (ISO 4217)")
        if a.balance_fen < 0:
            raise FieldError(f"{where}.account.balance_fen", "must not be negative")
        conn.execute(
            "INSERT INTO accounts (account_number, owner_id_number, account_type, currency,"
            " opening_balance_fen, balance_fen, status, branch, opened_on) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (a.account_number, fixture.owner_id_number, a.type or bank_pb2.ACCOUNT_TYPE_DEMAND_DEPOSIT, a.currency,
             a.balance_fen, a.balance_fen, a.status or bank_pb2.ACCOUNT_STATUS_NORMAL, a.branch,
             a.opened_on or "2020-01-01"),
        )
    return len(request.accounts)


FIXTURES = Fixtures(tables=("deductions", "freezes", "accounts"), load=load_fixtures)


def freeze_message(conn: sqlite3.Connection, freeze_id: str) -> bank_pb2.AccountFreeze:
    """One freeze as it stands, with its place in its account's queue."""
    row = conn.execute("SELECT * FROM freezes WHERE freeze_id = ?", (freeze_id,)).fetchone()
    position = 0
    if row["state"] == common_pb2.HOLD_STATE_QUEUED:
        position = conn.execute(
            "SELECT COUNT(*) FROM freezes WHERE account_number = ? AND state = ? AND queue_seq <= ?",
            (row["account_number"], common_pb2.HOLD_STATE_QUEUED, row["queue_seq"]),
        ).fetchone()[0]
    return _freeze_message(row, position)


def deduction_message(conn: sqlite3.Connection, deduction_id: str) -> bank_pb2.Deduction:
    """One deduction, with the freeze it drew on as it stands now."""
    row = conn.execute("SELECT * FROM deductions WHERE deduction_id = ?", (deduction_id,)).fetchone()
    return bank_pb2.Deduction(
        deduction_id=row["deduction_id"],
        account_number=row["account_number"],
        freeze_id=row["freeze_id"],
        case_number=row["case_number"],
        court_code=row["court_code"],
        amount_fen=row["amount_fen"],
        court_account=bank_pb2.CourtAccount(
            bank_name=row["court_bank_name"],
            account_number=row["court_account_number"],
            account_name=row["court_account_name"],
        ),
        deducted_at=timestamp(row["deducted_at_us"]),
        freeze=freeze_message(conn, row["freeze_id"]),
    )


def _freeze_message(row: sqlite3.Row, queue_position: int) -> bank_pb2.AccountFreeze:
    return bank_pb2.AccountFreeze(
        freeze_id=row["freeze_id"],
        account_number=row["account_number"],
        case_number=row["case_number"],
        court_code=row["court_code"],
        state=row["state"],
        requested_fen=row["requested_fen"],
        frozen_fen=row["frozen_fen"],
        shortfall_fen=row["shortfall_fen"],
        deducted_fen=row["deducted_fen"],
        queue_position=queue_position,
        registered_at=timestamp(row["registered_at_us"]),
        effective_at=timestamp(row["effective_at_us"]),
        expires_at=timestamp(row["expires_at_us"]),
        ended_at=timestamp(row["ended_at_us"]),
    )


def accounts_of(conn: sqlite3.Connection, id_number: str) -> list[bank_pb2.Account]:
    """The subject's accounts with their active and queued freezes."""
    freeze_rows = conn.execute(
        "SELECT f.* FROM accounts a JOIN freezes f ON f.account_number = a.account_number"
        " WHERE a.owner_id_number = ? AND f.state IN (?, ?) ORDER BY f.account_number, f.queue_seq",
        (id_number, *PENDING_STATES),
    ).fetchall()
    freezes: dict[str, list[bank_pb2.AccountFreeze]] = defaultdict(list)
    frozen: dict[str, int] = defaultdict(int)
    for row, position in queue_positions(freeze_rows, "account_number"):
        freezes[row["account_number"]].append(_freeze_message(row, position))
        if row["state"] == common_pb2.HOLD_STATE_ACTIVE:
            frozen[row["account_number"]] += row["frozen_fen"]
    accounts = []
    for row in conn.execute(
        "SELECT account_number, account_type, currency, balance_fen, status, branch, opened_on"
        " FROM accounts WHERE owner_id_number = ? ORDER BY opened_on, account_number",
        (id_number,),
    ):
        number = row["account_number"]
        accounts.append(
            bank_pb2.Account(
                account_number=number,
                type=row["account_type"],
                currency=row["currency"],
                balance_fen=row["balance_fen"],
                available_balance_fen=row["balance_fen"] - (0 if faults.active("available_ignores_frozen")
                                                            else frozen[number]),
                frozen_fen=frozen[number],
                status=row["status"],
                branch=row["branch"],
                opened_on=row["opened_on"],
                freezes=freezes[number],
            )
        )
    return accounts
