"""Vehicles registered at one Hefei vehicle registry (车管所)."""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from protos.vehicle.v1 import vehicle_pb2
from services.datagen.names import VEHICLE_BRANDS, VEHICLE_COLORS
from services.datagen.population import (
    HOLD_P,
    ISO_DATES,
    LAST_DAY,
    RESIDENT,
    SubjectRecord,
    Weighted,
    active_from,
    day_index,
    rich_holdings,
)


@dataclass(frozen=True, slots=True)
class VehicleRecord:
    owner_id_number: str
    plate: str
    vin: str
    brand: str
    model: str
    plate_type: str
    color: str
    registered_on: str
    status: int


NORMAL = vehicle_pb2.VEHICLE_STATUS_NORMAL
MORTGAGED = vehicle_pb2.VEHICLE_STATUS_MORTGAGED
SCRAPPED = vehicle_pb2.VEHICLE_STATUS_SCRAPPED

# Cumulative P(owner has 1, 2, ... vehicles), by (is person, tier).
_COUNTS = {
    (True, 1): (0.85, 1.0),
    (True, 2): (0.55, 0.9, 1.0),
    (False, 1): (0.5, 0.8, 1.0),
    (False, 2): (0.3, 0.55, 0.75, 0.9, 1.0),
}

_PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O
_DIGITS = "0123456789"
_PLATE_ANY = _PLATE_LETTERS + _DIGITS
# Shapes of the 5 characters after 皖A on ordinary plates: L letter, D digit.
_ORDINARY_SHAPES = Weighted([("LDDDD", 50), ("DDDDD", 10), ("LLDDD", 14), ("DLDDD", 9),
                             ("DDDDL", 9), ("DDLDD", 5), ("DDDLL", 3)])

VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"  # no I, O or Q
_VIN_VALUE = {**{str(d): d for d in range(10)},
              **dict(zip("ABCDEFGH", range(1, 9))), **dict(zip("JKLMN", range(1, 6))),
              "P": 7, "R": 9, **dict(zip("STUVWXYZ", range(2, 10)))}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
# Model-year character (VIN position 10): 2001-2009 digits, then letters
# skipping I, O, Q, U and Z.
_YEAR_CHARS = {**{2000 + y: str(y) for y in range(1, 10)},
               **{2010 + i: c for i, c in enumerate("ABCDEFGHJKLMNPRSTVWXY")}}


def vin_check_char(vin: str) -> str:
    """ISO 3779 check character (position 9) of a 17-character VIN."""
    total = sum(_VIN_VALUE[c] * w for c, w in zip(vin, _VIN_WEIGHTS))
    return "X" if total % 11 == 10 else str(total % 11)


def _vds(brand: str, model: str) -> str:
    # Fixed per model, as the descriptor section encodes body and engine.
    h = zlib.crc32(f"{brand}/{model}".encode())
    chars = []
    for _ in range(5):
        h, i = divmod(h, len(VIN_CHARS))
        chars.append(VIN_CHARS[i])
    return "".join(chars)


# (brand, model, energy, first year, WMI + VDS, plant) per model: a brand's
# popularity split across its models, new-energy models at a lower weight so
# they make up about a sixth of the cars on the road, as in Hefei.
_MODELS = Weighted([
    ((brand, model, energy, since, wmi + _vds(brand, model), plant),
     weight / len(models) * (0.45 if energy else 1.0))
    for brand, weight, wmi, plant, models in VEHICLE_BRANDS
    for model, since, energy in models
])
_COLOR = Weighted(VEHICLE_COLORS)


def _plate(r, energy: str) -> str:
    if energy:
        # 小型新能源汽车: D (battery) or F (plug-in), a letter or digit, 4 digits.
        second = _PLATE_ANY[int(r() * len(_PLATE_ANY))] if r() < 0.3 else _DIGITS[int(r() * 10)]
        return f"皖A{energy}{second}{int(r() * 10_000):04d}"
    chars = [
        _PLATE_LETTERS[int(r() * 24)] if kind == "L" else _DIGITS[int(r() * 10)]
        for kind in _ORDINARY_SHAPES.pick(r)
    ]
    return "皖A" + "".join(chars)


def vehicles(
    seed: int, population: Sequence[SubjectRecord], registry_id: str
) -> Iterator[VehicleRecord]:
    """Vehicles the population owns at one registry; tier 0 owns none."""
    rng = random.Random(f"{seed}:{registry_id}")
    r = rng.random
    p_modest = HOLD_P["vehicle"][1]
    plates: set[str] = set()
    vins: set[str] = set()
    first_day = day_index(2006)
    for subject in population:
        tier = subject.tier
        if tier == 0:
            continue
        if tier == 1:
            if r() >= p_modest:
                continue
        elif not rich_holdings(subject)[0]:
            continue
        person = subject.subject_type == RESIDENT
        cum = _COUNTS[person, tier]
        u = r()
        n = 1
        while u >= cum[n - 1]:
            n += 1
        owner_from = max(first_day, active_from(subject))
        for _ in range(n):
            brand, model, energy, since, prefix, plant = _MODELS.pick(r)
            lo = max(owner_from, day_index(since))
            # Skewed towards recent registrations: older cars have left the road.
            day = LAST_DAY - int((LAST_DAY - lo) * r() ** 1.5)
            year = int(ISO_DATES[day][:4])
            while True:
                plate = _plate(r, energy)
                if plate not in plates:
                    break
            plates.add(plate)
            while True:
                body = f"{prefix}0{_YEAR_CHARS[year]}{plant}{int(r() * 1_000_000):06d}"
                vin = body[:8] + vin_check_char(body) + body[9:]
                if vin not in vins:
                    break
            vins.add(vin)
            u = r()
            if year <= 2011 and u < 0.1:
                status = SCRAPPED
            elif year >= 2014 and u < 0.13:
                status = MORTGAGED
            else:
                status = NORMAL
            yield VehicleRecord(
                subject.id_number, plate, vin, brand, model,
                "小型新能源汽车" if energy else "小型汽车",
                _COLOR.pick(r), ISO_DATES[day], status,
            )
