"""The vehicle registry's SQLite tables: vehicles by owner, and seals on them."""

import sqlite3
from collections.abc import Sequence

import grpc

from protos.common.v1 import common_pb2
from protos.vehicle.v1 import vehicle_pb2
from services import datagen
from services.agency import seals
from services.agency.control import Refusal
from services.common.periods import VEHICLE_SEAL_YEARS
from services.agency.holds import pending_seals
from protos.testing.v1 import testing_pb2
from services.agency.store import SEALS_SCHEMA, insert_holders
from services.agency.testing import Fixtures, require_owner
from services.common.identifiers import check_plate
from services.common.validation import FieldError, check_identifier
from services.vehicle.config import Settings

SCHEMA = """
CREATE TABLE vehicles (
    plate           TEXT PRIMARY KEY,
    owner_id_number TEXT NOT NULL,
    vin             TEXT NOT NULL UNIQUE,
    brand           TEXT NOT NULL,
    model           TEXT NOT NULL,
    plate_type      TEXT NOT NULL,
    color           TEXT NOT NULL,
    registered_on   TEXT NOT NULL,
    status          INTEGER NOT NULL
);
CREATE INDEX vehicles_by_owner ON vehicles (owner_id_number);
""" + SEALS_SCHEMA + seals.LEDGER_INDEXES


def populate(conn: sqlite3.Connection, settings: Settings) -> int:
    """Store the generator's vehicles for this registry and their owners."""
    population = datagen.subjects(settings.seed, settings.subjects)
    people = {s.id_number: s for s in population}
    owners: set[str] = set()

    def rows():
        for v in datagen.vehicles(settings.seed, population, settings.agency_id):
            owners.add(v.owner_id_number)
            yield (
                v.plate, v.owner_id_number, v.vin, v.brand, v.model,
                v.plate_type, v.color, v.registered_on, v.status,
            )

    cursor = conn.executemany(
        "INSERT INTO vehicles (plate, owner_id_number, vin, brand, model, plate_type, color,"
        " registered_on, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows(),
    )
    insert_holders(conn, ((i, people[i].subject_type, people[i].name) for i in sorted(owners)))
    return cursor.rowcount


def load_fixtures(conn: sqlite3.Connection, request: testing_pb2.LoadFixturesRequest, subjects: frozenset[str]) -> int:
    """Test mode: the request's vehicles, as if seeded."""
    for i, fixture in enumerate(request.vehicles):
        v, where = fixture.vehicle, f"vehicles[{i}]"
        require_owner(fixture.owner_id_number, subjects, f"{where}.owner_id_number")
        check_identifier(check_plate, v.plate, f"{where}.vehicle.plate")
        if len(v.vin) != 17:
            raise FieldError(f"{where}.vehicle.vin", "must be 17 characters")
        conn.execute(
            "INSERT INTO vehicles (plate, owner_id_number, vin, brand, model, plate_type, color,"
            " registered_on, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (v.plate, fixture.owner_id_number, v.vin, v.brand, v.model, v.plate_type or "小型汽车", v.color,
             v.registered_on or "2020-01-01", v.status or vehicle_pb2.VEHICLE_STATUS_NORMAL),
        )
    return len(request.vehicles)


FIXTURES = Fixtures(tables=("seals", "vehicles"), load=load_fixtures)


def vehicle_owners(conn: sqlite3.Connection, plate: str) -> tuple[str, ...]:
    """The registered owner of a vehicle that can be sealed."""
    row = conn.execute("SELECT owner_id_number, status FROM vehicles WHERE plate = ?", (plate,)).fetchone()
    if row is None:
        raise Refusal(grpc.StatusCode.NOT_FOUND, f"plate: no vehicle {plate} is registered here")
    # A scrapped vehicle (报废) is off the register: nothing left to hold.
    if row["status"] == vehicle_pb2.VEHICLE_STATUS_SCRAPPED:
        raise Refusal(grpc.StatusCode.FAILED_PRECONDITION, f"plate: {plate} is scrapped (报废) and cannot be sealed")
    return (row["owner_id_number"],)


SEAL_RULES = seals.SealRules(
    asset_field="plate",
    max_years=VEHICLE_SEAL_YEARS,
    owners_of=vehicle_owners,
    check_asset_id=check_plate,
    id_prefix="VS",
)


def vehicles_of(conn: sqlite3.Connection, id_number: str) -> list[vehicle_pb2.Vehicle]:
    """The subject's vehicles with their active and queued seals; a vehicle
    under an active seal reports SEALED over its registered status."""
    rows = conn.execute(
        "SELECT * FROM vehicles WHERE owner_id_number = ? ORDER BY registered_on, plate", (id_number,)
    ).fetchall()
    held = pending_seals(conn, [row["plate"] for row in rows])
    return [
        vehicle_pb2.Vehicle(
            plate=row["plate"],
            vin=row["vin"],
            brand=row["brand"],
            model=row["model"],
            plate_type=row["plate_type"],
            color=row["color"],
            registered_on=row["registered_on"],
            status=_status(row["status"], held.get(row["plate"], ())),
            seals=held.get(row["plate"], ()),
        )
        for row in rows
    ]


def _status(registered: int, held: Sequence[common_pb2.Seal]) -> int:
    if any(s.state == common_pb2.HOLD_STATE_ACTIVE for s in held):
        return vehicle_pb2.VEHICLE_STATUS_SEALED
    return registered
