"""Properties recorded at one Hefei real-estate registry (不动产登记)."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache

from protos.common.v1 import common_pb2
from protos.realestate.v1 import realestate_pb2
from services.datagen.names import (
    COMMUNITY_FIRST,
    COMMUNITY_SUFFIX,
    DISTRICTS,
    INDUSTRIAL_PARKS,
    MORTGAGEE_BANKS,
    TOWER_SUFFIX,
)
from services.datagen.population import (
    CURRENT_REGION,
    DISTRICT_PICK,
    HOLD_P,
    ISO_DATES,
    RESIDENT,
    SubjectRecord,
    Weighted,
    active_from,
    day_index,
    home_district,
    pick,
    rich_holdings,
    spouse,
)


@dataclass(frozen=True, slots=True)
class OwnerShare:
    subject_type: int
    id_number: str
    name: str
    share_bp: int


@dataclass(frozen=True, slots=True)
class MortgageRecord:
    mortgagee: str
    amount_fen: int
    registered_on: str


@dataclass(frozen=True, slots=True)
class PropertyRecord:
    certificate_number: str
    unit_number: str
    address: str
    area_m2: float
    use: int
    owners: tuple[OwnerShare, ...]
    mortgages: tuple[MortgageRecord, ...]
    registered_on: str


RESIDENTIAL = realestate_pb2.PROPERTY_USE_RESIDENTIAL
COMMERCIAL = realestate_pb2.PROPERTY_USE_COMMERCIAL
OFFICE = realestate_pb2.PROPERTY_USE_OFFICE
PARKING = realestate_pb2.PROPERTY_USE_PARKING
INDUSTRIAL = realestate_pb2.PROPERTY_USE_INDUSTRIAL

# Cumulative P(owner has 1, 2, ... properties), by (is person, tier).
_COUNTS = {
    (True, 1): (0.8, 1.0),
    (True, 2): (0.35, 0.75, 1.0),
    (False, 1): (0.7, 1.0),
    (False, 2): (0.3, 0.6, 0.85, 1.0),
}
# A person's first property is a home; the rest and companies' vary.
_PERSON_EXTRA_USE = Weighted([(RESIDENTIAL, 50), (PARKING, 35), (COMMERCIAL, 15)])
_COMPANY_USE = Weighted([(OFFICE, 40), (COMMERCIAL, 25), (INDUSTRIAL, 20), (PARKING, 15)])
_P_SPOUSE = {RESIDENTIAL: 0.55, PARKING: 0.5, COMMERCIAL: 0.35}
_P_MORTGAGE = {RESIDENTIAL: 0.45, PARKING: 0.05, COMMERCIAL: 0.35, OFFICE: 0.4, INDUSTRIAL: 0.45}
# Price per m² in yuan (parking: per space), low and high.
_PRICE = {RESIDENTIAL: (15_000, 38_000), COMMERCIAL: (15_000, 40_000), OFFICE: (10_000, 25_000),
          INDUSTRIAL: (1_500, 3_000), PARKING: (80_000, 250_000)}
_MORTGAGEE = Weighted(MORTGAGEE_BANKS)
# The unified certificate (不动产权证书) replaced the old ones in 2016.
_FIRST_YEAR, _LAST_YEAR = 2016, 2025


@dataclass(frozen=True, slots=True)
class _Site:
    """A residential compound, office tower or industrial plot."""

    street: str  # "长江西路188号", or "店埠镇包公大道66号" in a county
    name: str
    parcel: str  # region + 地籍区/子区 + GB + 宗地顺序号: the first 19 of a unit number
    buildings: int
    units: int
    floors: int
    rooms: int


# Sites per district. The map is the same for every seed and large enough
# that millions of owners rarely pick the same flat twice.
_COMPOUNDS = {False: 1500, True: 500}  # by is_county
_TOWERS = 200
_PLANTS = 5000
_COMPOUND_MIDDLE = ("", "新", "东", "西", "南", "北", "城市", "湖畔", "花", "锦", "御", "水岸",
                    "星河", "云", "壹号")


@cache
def _site(district: int, kind: str, i: int) -> _Site:
    """Site i of a kind ("compound", "tower", "plant") in a district."""
    _, _, _, _, towns, roads = DISTRICTS[district]
    rng = random.Random(f"chakong:site:{district}:{kind}:{i}")
    r = rng.random
    street = f"{pick(r, towns)}{pick(r, roads)}{1 + int(r() * 300)}号"
    zone = f"{1 + int(r() * 20):03d}{1 + int(r() * 15):03d}"
    # Distinct 宗地 numbers within the district: a bijection of (kind, i).
    serial = {"compound": 0, "tower": 2000, "plant": 3000}[kind] + i
    parcel = f"{CURRENT_REGION[district]}{zone}GB{1 + (serial * 7919 + 977 * district) % 99_999:05d}"
    if kind == "compound":
        # Walk the name combinations with a stride coprime to their count,
        # so compounds in one district never share a name.
        combos = len(COMMUNITY_FIRST) * len(_COMPOUND_MIDDLE) * len(COMMUNITY_SUFFIX)
        k = (i * 7717 + 31 * district) % combos
        k, first = divmod(k, len(COMMUNITY_FIRST))
        suffix, middle = divmod(k, len(_COMPOUND_MIDDLE))
        label = COMMUNITY_FIRST[first] + _COMPOUND_MIDDLE[middle] + COMMUNITY_SUFFIX[suffix]
        return _Site(street, label, parcel, 6 + int(r() * 30), 1 + int(r() * 3),
                     6 + int(r() * 28), 2 + int(r() * 3))
    if kind == "tower":
        k = (i * 53 + 7 * district) % (len(COMMUNITY_FIRST) * len(TOWER_SUFFIX))
        suffix, first = divmod(k, len(COMMUNITY_FIRST))
        label = COMMUNITY_FIRST[first] + TOWER_SUFFIX[suffix]
        return _Site(street, label, parcel, 1, 1, 15 + int(r() * 30), 20)
    return _Site(street, INDUSTRIAL_PARKS[district], parcel, 1 + int(r() * 6), 1, 1, 1)


def _place(r, use: int, district: int) -> tuple[str, str, float]:
    """(address, unit number, area) of one unit of the given use."""
    compounds = _COMPOUNDS[DISTRICTS[district][3]]
    if use == RESIDENTIAL:
        s = _site(district, "compound", int(r() * compounds))
        b, u = 1 + int(r() * s.buildings), 1 + int(r() * s.units)
        floor, room = 1 + int(r() * s.floors), 1 + int(r() * s.rooms)
        address = f"{s.street}{s.name}{b}栋{u}单元{floor}{room:02d}室"
        unit = f"{b:04d}{((u - 1) * s.floors + floor - 1) * s.rooms + room:04d}"
        area = r() * r() * 130 + 50  # mostly 60-110 m², a few large flats
    elif use == PARKING:
        s = _site(district, "compound", int(r() * compounds))
        level, space = 1 + int(r() * 2), 1 + int(r() * 800)
        address = f"{s.street}{s.name}地下车库B{level}层{space}号车位"
        unit = f"{9000 + level:04d}{space:04d}"
        area = 12 + r() * 3
    elif use == COMMERCIAL:
        s = _site(district, "compound", int(r() * compounds))
        b, shop = 1 + int(r() * s.buildings), 101 + int(r() * 30)
        address = f"{s.street}{s.name}{b}栋{shop}商铺"
        unit = f"{b:04d}{8000 + shop:04d}"
        area = 30 + r() * r() * 270
    elif use == OFFICE:
        s = _site(district, "tower", int(r() * _TOWERS))
        floor, room = 3 + int(r() * (s.floors - 2)), 1 + int(r() * s.rooms)
        address = f"{s.street}{s.name}{floor}{room:02d}室"
        unit = f"0001{floor * 100 + room:04d}"
        area = 60 + r() * r() * 540
    else:
        s = _site(district, "plant", int(r() * _PLANTS))
        b = 1 + int(r() * s.buildings)
        address = f"{s.name}{s.street}{b}号厂房"
        unit = f"{b:04d}0001"
        area = 500 + r() * r() * 7500
    return f"合肥市{DISTRICTS[district][0]}{address}", f"{s.parcel}F{unit}", round(area, 2)


def properties(
    seed: int, population: Sequence[SubjectRecord], registry_id: str
) -> Iterator[PropertyRecord]:
    """Properties the population owns at one registry; tier 0 owns none."""
    rng = random.Random(f"{seed}:{registry_id}")
    r = rng.random
    p_modest = HOLD_P["realestate"][1]
    units: set[str] = set()
    certificates: set[tuple[int, int]] = set()
    spouse_of: dict[str, str] = {}  # spouse ID -> owner ID, to catch clashes
    for subject in population:
        tier = subject.tier
        if tier == 0:
            continue
        if tier == 1:
            if r() >= p_modest:
                continue
        elif not rich_holdings(subject)[1]:
            continue
        person = subject.subject_type == RESIDENT
        cum = _COUNTS[person, tier]
        u = r()
        n = 1
        while u >= cum[n - 1]:
            n += 1
        home = home_district(subject)
        # People buy their first home a few years after coming of age.
        owner_year = int(ISO_DATES[active_from(subject)][:4]) + (3 if person else 0)
        first_year = min(max(_FIRST_YEAR, owner_year), _LAST_YEAR)
        partner: tuple[str, str] | None = None
        for i in range(n):
            if person:
                use = RESIDENTIAL if i == 0 else _PERSON_EXTRA_USE.pick(r)
            else:
                use = _COMPANY_USE.pick(r)
            district = home if home >= 0 and r() < 0.6 else DISTRICT_PICK.pick(r)
            while True:
                address, unit, area = _place(r, use, district)
                if unit not in units:
                    break
            units.add(unit)
            year = first_year + int(r() * (_LAST_YEAR - first_year + 1))
            while True:
                seq = 1 + int(r() * 9_999_999)
                if (year, seq) not in certificates:
                    break
            certificates.add((year, seq))
            start = day_index(year)
            registered = start + int(r() * (day_index(year + 1) - start))

            co_owner = None
            if person and r() < _P_SPOUSE.get(use, 0.0):
                if partner is None:
                    attempt = 0
                    while True:
                        partner = spouse(seed, subject, attempt)
                        if spouse_of.setdefault(partner[0], subject.id_number) == subject.id_number:
                            break
                        attempt += 1
                # A spouse co-owns only once old enough to have married.
                if int(partner[0][6:10]) + 20 <= year:
                    co_owner = partner
            if co_owner:
                owners = (
                    OwnerShare(subject.subject_type, subject.id_number, subject.name, 5000),
                    OwnerShare(common_pb2.SUBJECT_TYPE_RESIDENT_ID, co_owner[0], co_owner[1], 5000),
                )
            else:
                owners = (OwnerShare(subject.subject_type, subject.id_number, subject.name, 10000),)

            mortgages: tuple[MortgageRecord, ...] = ()
            if r() < _P_MORTGAGE[use]:
                low, high = _PRICE[use]
                # Counties cost about half of what the city districts do.
                price = (low + r() * (high - low)) * (0.55 if DISTRICTS[district][3] else 1.0)
                value = price if use == PARKING else price * area
                loan_yuan = max(1, round(value * (0.4 + r() * 0.3) / 10_000)) * 10_000
                bank = _MORTGAGEE.pick(r)
                city = "" if bank.startswith("合肥") else "合肥"
                mortgages = (MortgageRecord(
                    f"{bank}{city}{DISTRICTS[district][1]}支行", loan_yuan * 100,
                    ISO_DATES[registered]),)
            yield PropertyRecord(
                f"皖({year})合肥市不动产权第{seq:07d}号", unit, address, area, use, owners,
                mortgages, ISO_DATES[registered],
            )
