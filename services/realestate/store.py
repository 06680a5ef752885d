"""The real-estate registry's SQLite tables: properties, owners, mortgages, seals, transfers."""

import re
import sqlite3
from collections import defaultdict

import grpc

from protos.common.v1 import common_pb2
from protos.realestate.v1 import realestate_pb2
from services import datagen
from services.agency import seals
from services.agency.control import Refusal
from services.common.periods import REALESTATE_SEAL_YEARS
from services.agency.holds import pending_seals
from protos.testing.v1 import testing_pb2
from services.agency.store import SEALS_SCHEMA, insert_holders
from services.agency.testing import Fixtures, require_owner
from services.common.identifiers import InvalidIdentifier
from services.common.validation import FieldError, check_identifier
from services.realestate.config import Settings

# A property has one or more owners with shares in basis points; a subject
# finds its properties through `owners_by_id`. `transfers` records court
# sales (过户): the old certificate, the buyer and the new certificate. A
# transfer cancels the old certificate (its rows stay, as history) and
# registers the property again under the new one.
SCHEMA = """
CREATE TABLE properties (
    certificate_number TEXT PRIMARY KEY,
    unit_number        TEXT NOT NULL,
    address            TEXT NOT NULL,
    area_m2            REAL NOT NULL,
    use                INTEGER NOT NULL,
    registered_on      TEXT NOT NULL
);

CREATE TABLE owners (
    certificate_number TEXT NOT NULL REFERENCES properties (certificate_number),
    position           INTEGER NOT NULL,
    subject_type       INTEGER NOT NULL,
    id_number          TEXT NOT NULL,
    name               TEXT NOT NULL,
    share_bp           INTEGER NOT NULL CHECK (share_bp BETWEEN 1 AND 10000),
    PRIMARY KEY (certificate_number, position)
) WITHOUT ROWID;
CREATE INDEX owners_by_id ON owners (id_number);

CREATE TABLE mortgages (
    certificate_number TEXT NOT NULL REFERENCES properties (certificate_number),
    position           INTEGER NOT NULL,
    mortgagee          TEXT NOT NULL,
    amount_fen         INTEGER NOT NULL,
    registered_on      TEXT NOT NULL,
    PRIMARY KEY (certificate_number, position)
) WITHOUT ROWID;

CREATE TABLE transfers (
    transfer_id            TEXT PRIMARY KEY,
    certificate_number     TEXT NOT NULL REFERENCES properties (certificate_number),
    new_certificate_number TEXT NOT NULL UNIQUE,
    buyer_type             INTEGER NOT NULL,
    buyer_id_number        TEXT NOT NULL,
    buyer_name             TEXT NOT NULL,
    case_number            TEXT NOT NULL,
    court_code             TEXT NOT NULL,
    ruling_number          TEXT NOT NULL,
    price_fen              INTEGER NOT NULL CHECK (price_fen > 0),
    transferred_at_us      INTEGER NOT NULL
);
CREATE INDEX transfers_by_certificate ON transfers (certificate_number);
""" + SEALS_SCHEMA + seals.LEDGER_INDEXES

# 不动产权证号: 皖(2019)合肥市不动产权第0123456号, brackets ASCII or full-width.
_CERTIFICATE_NUMBER = re.compile(r"[\u4e00-\u9fff][(（]\d{4}[)）][\u4e00-\u9fff]{2,12}不动产权第\d{7}号")


def check_certificate_number(value: str) -> str:
    if not _CERTIFICATE_NUMBER.fullmatch(value):
        raise InvalidIdentifier("must look like 皖(2019)合肥市不动产权第0123456号")
    return value


def require_current(conn: sqlite3.Connection, certificate_number: str) -> sqlite3.Row:
    """The property registered under this certificate; NOT_FOUND, with where
    it went, for a certificate cancelled by a transfer."""
    moved = conn.execute(
        "SELECT new_certificate_number, transferred_at_us FROM transfers WHERE certificate_number = ?",
        (certificate_number,),
    ).fetchone()
    if moved is not None:
        raise Refusal(
            grpc.StatusCode.NOT_FOUND,
            f"certificate_number: {certificate_number} was cancelled at {seals.iso(moved['transferred_at_us'])}:"
            f" transferred to {moved['new_certificate_number']} after a court sale",
        )
    row = conn.execute(
        "SELECT * FROM properties WHERE certificate_number = ?", (certificate_number,)
    ).fetchone()
    if row is None:
        raise Refusal(
            grpc.StatusCode.NOT_FOUND, f"certificate_number: no property {certificate_number} is registered here"
        )
    return row


def property_owners(conn: sqlite3.Connection, certificate_number: str) -> list[str]:
    """ID numbers of the owners of a property under a current certificate."""
    require_current(conn, certificate_number)
    return [
        row[0]
        for row in conn.execute("SELECT id_number FROM owners WHERE certificate_number = ?", (certificate_number,))
    ]


SEAL_RULES = seals.SealRules(
    asset_field="certificate_number",
    max_years=REALESTATE_SEAL_YEARS,
    owners_of=property_owners,
    check_asset_id=check_certificate_number,
    id_prefix="RS",
)


def populate(conn: sqlite3.Connection, settings: Settings) -> int:
    """Store the generator's properties for this registry, with owners and mortgages."""
    count = 0
    population = datagen.subjects(settings.seed, settings.subjects)
    for p in datagen.properties(settings.seed, population, settings.agency_id):
        conn.execute(
            "INSERT INTO properties (certificate_number, unit_number, address, area_m2, use, registered_on)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (p.certificate_number, p.unit_number, p.address, p.area_m2, p.use, p.registered_on),
        )
        conn.executemany(
            "INSERT INTO owners (certificate_number, position, subject_type, id_number, name, share_bp)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(p.certificate_number, i, o.subject_type, o.id_number, o.name, o.share_bp) for i, o in enumerate(p.owners)],
        )
        conn.executemany(
            "INSERT INTO mortgages (certificate_number, position, mortgagee, amount_fen, registered_on)"
            " VALUES (?, ?, ?, ?, ?)",
            [(p.certificate_number, i, m.mortgagee, m.amount_fen, m.registered_on) for i, m in enumerate(p.mortgages)],
        )
        insert_holders(conn, [(o.id_number, o.subject_type, o.name) for o in p.owners])
        count += 1
    return count


def load_fixtures(conn: sqlite3.Connection, request: testing_pb2.LoadFixturesRequest, subjects: frozenset[str]) -> int:
    """Test mode: the request's properties with their owners and mortgages, as if seeded."""
    for i, p in enumerate(request.properties):
        where = f"properties[{i}]"
        check_identifier(check_certificate_number, p.certificate_number, f"{where}.certificate_number")
        if not p.owners:
            raise FieldError(f"{where}.owners", "at least one owner is required")
        if sum(o.share_bp for o in p.owners) != 10_000:
            raise FieldError(f"{where}.owners", "shares (share_bp) must add up to 10000")
        conn.execute(
            "INSERT INTO properties (certificate_number, unit_number, address, area_m2, use, registered_on)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (p.certificate_number, p.unit_number, p.address, p.area_m2,
             p.use or realestate_pb2.PROPERTY_USE_RESIDENTIAL, p.registered_on or "2019-01-01"),
        )
        for j, o in enumerate(p.owners):
            require_owner(o.subject.id_number, subjects, f"{where}.owners[{j}].subject.id_number")
            conn.execute(
                "INSERT INTO owners (certificate_number, position, subject_type, id_number, name, share_bp)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (p.certificate_number, j, o.subject.type, o.subject.id_number, o.subject.name, o.share_bp),
            )
        for j, m in enumerate(p.mortgages):
            conn.execute(
                "INSERT INTO mortgages (certificate_number, position, mortgagee, amount_fen, registered_on)"
                " VALUES (?, ?, ?, ?, ?)",
                (p.certificate_number, j, m.mortgagee, m.amount_fen, m.registered_on),
            )
    return len(request.properties)


FIXTURES = Fixtures(tables=("transfers", "seals", "mortgages", "owners", "properties"), load=load_fixtures)


def properties_of(conn: sqlite3.Connection, id_number: str) -> list[realestate_pb2.Property]:
    """The properties the subject owns wholly or in part, with all their owners,
    mortgages and active and queued seals; not those under certificates
    cancelled by a transfer."""
    rows = conn.execute(
        "SELECT p.* FROM owners o JOIN properties p ON p.certificate_number = o.certificate_number"
        " WHERE o.id_number = ? AND NOT EXISTS"
        " (SELECT 1 FROM transfers t WHERE t.certificate_number = p.certificate_number)"
        " ORDER BY p.registered_on, p.certificate_number",
        (id_number,),
    ).fetchall()
    certificates = [row["certificate_number"] for row in rows]
    if not certificates:
        return []
    marks = ",".join("?" * len(certificates))
    owners: dict[str, list[realestate_pb2.Owner]] = defaultdict(list)
    for o in conn.execute(
        f"SELECT * FROM owners WHERE certificate_number IN ({marks}) ORDER BY certificate_number, position",
        certificates,
    ):
        owners[o["certificate_number"]].append(
            realestate_pb2.Owner(
                subject=common_pb2.Subject(type=o["subject_type"], id_number=o["id_number"], name=o["name"]),
                share_bp=o["share_bp"],
            )
        )
    mortgages: dict[str, list[realestate_pb2.Mortgage]] = defaultdict(list)
    for m in conn.execute(
        f"SELECT * FROM mortgages WHERE certificate_number IN ({marks}) ORDER BY certificate_number, position",
        certificates,
    ):
        mortgages[m["certificate_number"]].append(
            realestate_pb2.Mortgage(
                mortgagee=m["mortgagee"], amount_fen=m["amount_fen"], registered_on=m["registered_on"]
            )
        )
    seals = pending_seals(conn, certificates)
    return [
        realestate_pb2.Property(
            certificate_number=row["certificate_number"],
            unit_number=row["unit_number"],
            address=row["address"],
            area_m2=row["area_m2"],
            use=row["use"],
            owners=owners[row["certificate_number"]],
            mortgages=mortgages[row["certificate_number"]],
            registered_on=row["registered_on"],
            seals=seals.get(row["certificate_number"], ()),
        )
        for row in rows
    ]
