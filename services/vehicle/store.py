"""The vehicle registry's SQLite tables: vehicles by owner, and seals on them."""

import sqlite3

from protos.vehicle.v1 import vehicle_pb2
from services import datagen
from services.agency.holds import pending_seals
from services.agency.store import SEALS_SCHEMA, insert_holders
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
""" + SEALS_SCHEMA


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


def vehicles_of(conn: sqlite3.Connection, id_number: str) -> list[vehicle_pb2.Vehicle]:
    """The subject's vehicles with their active and queued seals."""
    rows = conn.execute(
        "SELECT * FROM vehicles WHERE owner_id_number = ? ORDER BY registered_on, plate", (id_number,)
    ).fetchall()
    seals = pending_seals(conn, [row["plate"] for row in rows])
    return [
        vehicle_pb2.Vehicle(
            plate=row["plate"],
            vin=row["vin"],
            brand=row["brand"],
            model=row["model"],
            plate_type=row["plate_type"],
            color=row["color"],
            registered_on=row["registered_on"],
            status=row["status"],
            seals=seals.get(row["plate"], ()),
        )
        for row in rows
    ]
