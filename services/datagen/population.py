"""Deterministic population of Hefei persons and companies, with wealth tiers."""

from __future__ import annotations

import datetime
import gc
import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

from protos.common.v1 import common_pb2
from services.datagen.names import (
    COMPANY_PREFIXES,
    DISTRICTS,
    GIVEN_FEMALE,
    GIVEN_MALE,
    INDUSTRIES,
    LEGAL_FORMS,
    SURNAMES,
    TRADE_FIRST,
    TRADE_SECOND,
)

RESIDENT = common_pb2.SUBJECT_TYPE_RESIDENT_ID
COMPANY = common_pb2.SUBJECT_TYPE_CREDIT_CODE


@dataclass(frozen=True, slots=True)
class SubjectRecord:
    index: int
    subject_type: int
    id_number: str
    name: str
    tier: int


def record_factory(cls: type) -> Callable[..., object]:
    """A function building cls instances, like cls(...), for hot loops.

    The __init__ of a frozen dataclass goes through object.__setattr__ for
    every field; setting the slots directly is about twice as fast, which
    counts over millions of records. Tests hold the two to equality.
    """
    names = [f.name for f in fields(cls)]
    namespace = {"new": object.__new__, "cls": cls}
    namespace.update({f"set_{n}": getattr(cls, n).__set__ for n in names})
    body = "".join(f"    set_{n}(obj, {n})\n" for n in names)
    exec(f"def make({', '.join(names)}):\n    obj = new(cls)\n{body}    return obj\n", namespace)
    return namespace["make"]


_new_subject = record_factory(SubjectRecord)

COMPANY_SHARE = 0.15
# Cumulative P(tier 0), P(tier <= 1). Companies hold more than persons, so
# that overall the tiers come out near 35% / 50% / 15%.
TIER_CUM = {RESIDENT: (0.376, 0.868), COMPANY: (0.20, 0.75)}

# Chance that a holder of tier 0/1/2 has assets at one agency of a kind.
HOLD_P = {
    "bank": (0.0, 0.25, 0.8),
    "payment": (0.0, 0.25, 0.8),
    "securities": (0.0, 0.25, 0.8),
    "vehicle": (0.0, 0.2, 0.7),
    "realestate": (0.0, 0.25, 0.8),
}

# Population IDs use sequence numbers 000-799; spouses generated for
# property co-ownership use 800-999, so the two can never collide.
_SEQ_POPULATION = 800
_SEQ_SPOUSE_BASE = 800


class Weighted:
    """Weighted choice by one uniform draw: a table with each item repeated
    in proportion to its weight, so a pick is one index, no search."""

    __slots__ = ("table", "size")

    def __init__(self, pairs: Sequence[tuple[object, float]], resolution: int = 1000):
        total = sum(w for _, w in pairs)
        table: list[object] = []
        for item, w in pairs:
            table.extend([item] * max(1, round(w / total * resolution)))
        self.table = tuple(table)
        self.size = len(table)

    def pick(self, r: Callable[[], float]):
        return self.table[int(r() * self.size)]


def pick(r: Callable[[], float], items: Sequence):
    return items[int(r() * len(items))]


# ISO dates for every day from 1940 through 2026, indexed from _DAY0.
_DAY0 = datetime.date(1940, 1, 1).toordinal()
ISO_DATES: tuple[str, ...] = tuple(
    datetime.date.fromordinal(o).isoformat()
    for o in range(_DAY0, datetime.date(2027, 1, 1).toordinal())
)
LAST_DAY = datetime.date(2025, 12, 31).toordinal() - _DAY0


def day_index(year: int, month: int = 1, day: int = 1) -> int:
    return datetime.date(year, month, day).toordinal() - _DAY0


MA_CODES_FROM = day_index(2015, 10, 1)
OLD_COMPANIES_FROM = day_index(1995)


def _adult_from(day: int) -> int:
    iso = ISO_DATES[day]
    month_day = "02-28" if iso[5:] == "02-29" else iso[5:]
    return day_index(int(iso[:4]) + 18, int(month_day[:2]), int(month_day[3:]))


# Region codes a district's residents carry, by birth year, newest first.
# stdnum checks the region code against the birth year, and older residents
# were registered under predecessor codes: 340120 was 合肥市市区 before the
# four urban districts got codes in 1983; 庐江县 and 巢湖 belonged to 巢湖地区
# (3426xx, then 3414xx) until Hefei took them over in 2011.
_REGION_HISTORY = (
    ((1983, "340102"), (0, "340120")),  # 瑶海区
    ((1983, "340103"), (0, "340120")),  # 庐阳区
    ((1983, "340104"), (0, "340120")),  # 蜀山区
    ((1983, "340111"), (0, "340120")),  # 包河区
    ((0, "340121"),),  # 长丰县
    ((1983, "340122"), (0, "342621")),  # 肥东县
    ((1983, "340123"), (0, "342424")),  # 肥西县
    ((2011, "340124"), (1999, "341421"), (0, "342622")),  # 庐江县
    ((2011, "340181"), (1999, "341402"), (1982, "342601"), (0, "342624")),  # 巢湖市
)
CURRENT_REGION = tuple(history[0][1] for history in _REGION_HISTORY)
_URBAN = (0, 1, 2, 3)


def region_code(district: int, year: int) -> str:
    for since, code in _REGION_HISTORY[district]:
        if year >= since:
            return code
    raise AssertionError("unreachable: every history ends at year 0")


_REGION_BY_YEAR = tuple(
    {year: region_code(d, year) for year in range(1940, 2027)} for d in range(len(DISTRICTS))
)
# Region code (of an ID or a credit code) -> district; -1 for codes shared by
# several districts (340120, city-level and development-zone codes).
DISTRICT_OF_CODE: dict[str, int] = {}
for _d, _history in enumerate(_REGION_HISTORY):
    for _, _code in _history:
        DISTRICT_OF_CODE[_code] = -1 if _code == "340120" else _d


def home_district(subject: SubjectRecord) -> int:
    """District a subject lives or is registered in; -1 when only 'Hefei' is known."""
    if subject.subject_type == RESIDENT:
        return DISTRICT_OF_CODE.get(subject.id_number[:6], -1)
    return DISTRICT_OF_CODE.get(subject.id_number[2:8], -1)


DISTRICT_PICK = Weighted([(d, district[2]) for d, district in enumerate(DISTRICTS)])


def _birth_year_weight(year: int) -> int:
    # Adults aged 18-80 in 2026; the 1960s-1990s cohorts are the largest.
    if year <= 1955:
        return 8
    if year <= 1962:
        return 15
    if year <= 1997:
        return 20
    return 16


# Birth years of adults aged 18-80 on 2026-01-01, one entry per unit of weight.
_BIRTH_YEARS = tuple(y for y in range(1946, 2008) for _ in range(_birth_year_weight(y)))
_YEAR_START = {y: day_index(y) for y in range(1940, 2028)}
_YEAR_DAYS = {y: _YEAR_START[y + 1] - _YEAR_START[y] for y in range(1940, 2027)}
_BIRTH_LAST = day_index(2007, 12, 31)
_SPOUSE_FIRST = day_index(1941)

# GB 11643 check: the weighted sum of the 17 digits splits into region, date
# and sequence parts, precomputed here so an ID costs three lookups. Tests
# hold the result to services.common.identifiers.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def _id_part(digits: str, offset: int) -> tuple[str, int]:
    return digits, sum(int(c) * w for c, w in zip(digits, _ID_WEIGHTS[offset:]))


_REGION_PART = tuple(
    {year: _id_part(code, 0) for year, code in by_year.items()} for by_year in _REGION_BY_YEAR
)
_DATE_PART = tuple(
    _id_part(iso[:4] + iso[5:7] + iso[8:10], 6) for iso in ISO_DATES[_SPOUSE_FIRST:_BIRTH_LAST + 1]
)
_SEQ_PART = tuple(_id_part(f"{seq:03d}", 14) for seq in range(1000))
# Birth date as written in an ID ("19900101") -> day index of the 18th birthday.
ADULT_FROM = {
    date: _adult_from(_SPOUSE_FIRST + i) for i, (date, _) in enumerate(_DATE_PART)
}


def active_from(subject: SubjectRecord) -> int:
    """Day index from which a subject can hold assets: a person's 18th
    birthday; for a company, when codes of its kind were issued."""
    if subject.subject_type == RESIDENT:
        return ADULT_FROM[subject.id_number[6:14]]
    return MA_CODES_FROM if subject.id_number[8:10] == "MA" else OLD_COMPANIES_FROM


def resident_id(district: int, day: int, seq: int) -> str:
    """A valid GB 11643 number for someone from `district` born on ISO_DATES[day]."""
    region, region_sum = _REGION_PART[district][int(ISO_DATES[day][:4])]
    date, date_sum = _DATE_PART[day - _SPOUSE_FIRST]
    sequence, seq_sum = _SEQ_PART[seq]
    return region + date + sequence + _ID_CHECK[(region_sum + date_sum + seq_sum) % 11]


_SURNAMES = Weighted(SURNAMES).table


def _given_names(chars: Sequence[str]) -> tuple[str, ...]:
    # About 72% of given names have two characters, the rest one.
    doubles = [a + b for a in chars for b in chars]
    repeat = round(0.28 / 0.72 * len(doubles) / len(chars))
    return tuple(doubles + [c for c in chars for _ in range(repeat)])


_GIVEN = (_given_names(GIVEN_FEMALE), _given_names(GIVEN_MALE))


def person_name(r: Callable[[], float], male: bool) -> str:
    given = _GIVEN[male]
    return _SURNAMES[int(r() * len(_SURNAMES))] + given[int(r() * len(given))]


# Credit-code registration authorities: the city, the 高新/经开/新站
# development zones, the districts and counties.
_CC_REGIONS = [("340100", 30), ("340171", 8), ("340172", 6), ("340173", 4)]
for _code, _ in _CC_REGIONS:
    DISTRICT_OF_CODE[_code] = -1
_CC_REGIONS += [(code, DISTRICTS[d][2] * 0.8) for d, code in enumerate(CURRENT_REGION)]

# GB 32100 alphabet minus I, O, S, V, Z; organisation codes stay inside it.
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {c: i for i, c in enumerate(_USCC_CHARS)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_PAIRS = tuple(a + b for a in _USCC_CHARS for b in _USCC_CHARS)
_USCC_BODY_WEIGHTS = _USCC_WEIGHTS[8:]
# "91" (an enterprise) + registration region, with its part of the MOD 31 sum.
_CC_HEADS = Weighted([
    (("91" + code, sum(_USCC_VALUE[c] * w for c, w in zip("91" + code, _USCC_WEIGHTS))), weight)
    for code, weight in _CC_REGIONS
])
_ORG_OLD_LEADS = ("05", "06", "14", "15", "56", "57", "58", "66", "67", "68", "69",
                  "70", "71", "72", "73", "74", "75", "76", "77", "78", "79")
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_VALUE = {c: int(c, 36) for c in _USCC_CHARS}


def _org_check(body: str) -> str:
    # GB 11714 organisation code check character, embedded in the credit code.
    total = sum(_ORG_VALUE[c] * w for c, w in zip(body, _ORG_WEIGHTS))
    value = 11 - total % 11
    return "X" if value == 10 else "0" if value == 11 else str(value)


def _credit_code(r: Callable[[], float]) -> str:
    if r() < 0.7:
        # Codes issued since 2015 start with MA; Hefei's run MA2...
        pairs = _USCC_PAIRS
        body = "MA2" + pairs[int(r() * 961)] + pairs[int(r() * 961)] + _USCC_CHARS[int(r() * 31)]
    else:
        body = _ORG_OLD_LEADS[int(r() * len(_ORG_OLD_LEADS))] + f"{int(r() * 1_000_000):06d}"
    head, head_sum = _CC_HEADS.pick(r)
    body += _org_check(body)
    total = head_sum + sum(_USCC_VALUE[c] * w for c, w in zip(body, _USCC_BODY_WEIGHTS))
    return head + body + _USCC_CHARS[-total % 31]


_COMPANY_PREFIX = Weighted(COMPANY_PREFIXES)
_LEGAL_FORM = Weighted(LEGAL_FORMS)


def _company_name(r: Callable[[], float], seen: set[str]) -> str:
    attempt = 0
    while True:
        trade = pick(r, TRADE_FIRST) + pick(r, TRADE_SECOND)
        if attempt >= 3:
            # Two-character trade names run out in large populations.
            trade += pick(r, TRADE_SECOND)
        name = _COMPANY_PREFIX.pick(r) + trade + pick(r, INDUSTRIES) + _LEGAL_FORM.pick(r)
        if name not in seen:
            seen.add(name)
            return name
        attempt += 1


def subjects(seed: int, count: int) -> list[SubjectRecord]:
    """`count` distinct subjects, ~85% persons and ~15% companies, with tiers."""
    # Millions of records and no cycles among them: the cyclic collector
    # would only rescan them over and over, so it pauses meanwhile.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _subjects(seed, count)
    finally:
        if gc_was_enabled:
            gc.enable()


def _subjects(seed: int, count: int) -> list[SubjectRecord]:
    rng = random.Random(f"{seed}:subjects")
    r, bits = rng.random, rng.getrandbits
    seen_ids: set[str] = set()
    seen_company_names: set[str] = set()
    # Hot loop: a person is drawn from two 64-bit numbers cut into pieces
    # (far cheaper than a float per choice), with every table in a local.
    districts, n_districts = DISTRICT_PICK.table, DISTRICT_PICK.size
    birth_years, n_years = _BIRTH_YEARS, len(_BIRTH_YEARS)
    year_start, year_days = _YEAR_START, _YEAR_DAYS
    region_part, date_part, seq_part, check_chars = _REGION_PART, _DATE_PART, _SEQ_PART, _ID_CHECK
    date_base = _SPOUSE_FIRST
    surnames, n_surnames = _SURNAMES, len(_SURNAMES)
    given_names, n_given = _GIVEN, len(_GIVEN[0])
    company_cut = int(COMPANY_SHARE * 2**16)
    person_low, person_mid = (int(p * 2**20) for p in TIER_CUM[RESIDENT])
    company_low, company_mid = TIER_CUM[COMPANY]
    new_subject = _new_subject
    out: list[SubjectRecord] = []
    append = out.append
    for index in range(count):
        # Top 16 bits: person or company; next 20: tier; low 28: name.
        b = bits(64)
        if b >> 48 < company_cut:
            while True:
                id_number = _credit_code(r)
                if id_number not in seen_ids:
                    break
            seen_ids.add(id_number)
            name = _company_name(r, seen_company_names)
            u = r()
            tier = 0 if u < company_low else 1 if u < company_mid else 2
            append(new_subject(index, COMPANY, id_number, name, tier))
            continue
        while True:
            c = bits(64)
            year = birth_years[c % n_years]
            c //= n_years
            day = year_start[year] + c % year_days[year]
            c //= 366
            seq = c % _SEQ_POPULATION
            c //= _SEQ_POPULATION
            region, region_sum = region_part[districts[c % n_districts]][year]
            date, date_sum = date_part[day - date_base]
            sequence, seq_sum = seq_part[seq]
            id_number = region + date + sequence + check_chars[(region_sum + date_sum + seq_sum) % 11]
            if id_number not in seen_ids:
                break
        seen_ids.add(id_number)
        u = (b >> 28) & 0xFFFFF
        tier = 0 if u < person_low else 1 if u < person_mid else 2
        b &= 0xFFFFFFF
        name = surnames[b % n_surnames] + given_names[seq & 1][b // n_surnames % n_given]
        append(new_subject(index, RESIDENT, id_number, name, tier))
    return out


def rich_holdings(subject: SubjectRecord) -> tuple[bool, bool]:
    """Whether a tier-2 subject owns (a vehicle, a property).

    Decided per subject rather than per registry so that showcase() can pick
    subjects known to hold assets at several agencies without knowing them.
    """
    digest = hashlib.blake2b(subject.id_number.encode(), digest_size=8, person=b"rich").digest()
    vehicle = int.from_bytes(digest[:4], "big") / 2**32 < HOLD_P["vehicle"][2]
    realestate = int.from_bytes(digest[4:], "big") / 2**32 < HOLD_P["realestate"][2]
    return vehicle, realestate


def showcase(population: Sequence[SubjectRecord], n: int) -> list[SubjectRecord]:
    """First n tier-2 subjects owning both a vehicle and a property, for demos.

    Those hold assets at two agency kinds for certain, and most also hold
    accounts, whatever banks are configured.
    """
    out: list[SubjectRecord] = []
    for subject in population:
        if len(out) >= n:
            break
        if subject.tier == 2 and all(rich_holdings(subject)):
            out.append(subject)
    return out


def spouse(seed: int, owner: SubjectRecord, attempt: int = 0) -> tuple[str, str]:
    """(resident ID, name) of a person's spouse, outside the population.

    Depends only on the seed and the owner, so every registry agrees; a
    caller that meets a clash between two spouses asks again with attempt+1.
    """
    rng = random.Random(f"{seed}:spouse:{owner.id_number}:{attempt}")
    r = rng.random
    iso = owner.id_number[6:14]
    owner_day = day_index(int(iso[:4]), int(iso[4:6]), int(iso[6:]))
    owner_male = int(owner.id_number[16]) & 1
    # Husbands are usually a little older than their wives.
    gap = int(rng.triangular(-2.0, 6.0, 2.0) * 365.25)
    day = owner_day + gap if owner_male else owner_day - gap
    day = min(max(day, _SPOUSE_FIRST), _BIRTH_LAST)
    district = home_district(owner)
    if district < 0:
        district = pick(r, _URBAN)
    # Opposite sex: the sequence number's parity is the sex.
    seq = _SEQ_SPOUSE_BASE + 2 * int(r() * 100) + (0 if owner_male else 1)
    return resident_id(district, day, seq), person_name(r, not owner_male)
