"""Generated Hefei test data: deterministic, valid identifiers, coherent across agencies."""

import collections
import datetime
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from protos.bank.v1 import bank_pb2
from protos.common.v1 import common_pb2
from protos.realestate.v1 import realestate_pb2
from protos.vehicle.v1 import vehicle_pb2
from services.common.identifiers import (
    check_credit_code,
    check_plate,
    check_resident_id,
    credit_code_check_char,
    resident_id_check_char,
)
from services.datagen import (
    BANK_PROFILES,
    DEFAULT_BANKS,
    DEFAULT_REALESTATE_REGISTRY,
    DEFAULT_VEHICLE_REGISTRY,
    AccountRecord,
    SubjectRecord,
    accounts_population_size,
    bank_accounts,
    properties,
    showcase,
    subjects,
    vehicles,
)
from services.datagen.__main__ import main
from services.datagen.names import DISTRICTS
from services.datagen.population import day_index, record_factory, resident_id, spouse
from tests.support.datagen import World, digest

REPO = Path(__file__).resolve().parent.parent
RESIDENT = common_pb2.SUBJECT_TYPE_RESIDENT_ID
COMPANY = common_pb2.SUBJECT_TYPE_CREDIT_CODE
SEED = 42


@pytest.fixture(scope="module")
def world() -> World:
    return World(SEED, 4000)


@pytest.fixture(scope="module")
def large_population() -> list[SubjectRecord]:
    """Enough subjects for about 20,000 accounts at one bank."""
    return subjects(SEED, accounts_population_size(20_000))


# --- determinism ---


def test_same_seed_same_records(world):
    again = World(SEED, 4000)
    assert again.population == world.population
    assert again.accounts == world.accounts
    assert again.vehicles == world.vehicles
    assert again.properties == world.properties


def test_records_do_not_depend_on_hash_seed():
    hash_seed = "4242" if os.environ.get("PYTHONHASHSEED") != "4242" else "2424"
    out = subprocess.run(
        [sys.executable, "-c", "from tests.support.datagen import digest; print(digest(7, 1000))"],
        cwd=REPO, env={**os.environ, "PYTHONHASHSEED": hash_seed},
        capture_output=True, text=True, check=True, timeout=60,
    )
    assert out.stdout.strip() == digest(7, 1000)


def test_different_seeds_differ():
    a, b = subjects(1, 500), subjects(2, 500)
    assert len({s.id_number for s in a} & {s.id_number for s in b}) < 5
    accounts_a = list(bank_accounts(1, a, "icbc", "中国工商银行", "bank"))
    accounts_b = list(bank_accounts(2, a, "icbc", "中国工商银行", "bank"))
    assert accounts_a != accounts_b


def test_institutions_differ_on_the_same_population(world):
    icbc = {a.account_number for a in world.accounts["icbc"]}
    ccb = {a.account_number for a in world.accounts["ccb"]}
    assert icbc.isdisjoint(ccb)
    holders = lambda accounts: {a.owner_id_number for a in accounts}  # noqa: E731
    assert holders(world.accounts["icbc"]) != holders(world.accounts["ccb"])


def test_fast_record_factory_matches_constructor():
    make = record_factory(AccountRecord)
    fields = ("3401", "6222", 1, "CNY", 5, 1, "branch", "2020-01-01")
    assert make(*fields) == AccountRecord(*fields)
    assert repr(make(*fields)) == repr(AccountRecord(*fields))
    with pytest.raises(AttributeError):
        make(*fields).balance_fen = 0


# --- the population ---


def test_population_shares(large_population):
    population = large_population
    persons = sum(s.subject_type == RESIDENT for s in population) / len(population)
    tiers = collections.Counter(s.tier for s in population)
    assert 0.83 < persons < 0.87
    assert abs(tiers[0] / len(population) - 0.35) < 0.02
    assert abs(tiers[1] / len(population) - 0.50) < 0.02
    assert abs(tiers[2] / len(population) - 0.15) < 0.02
    assert [s.index for s in population] == list(range(len(population)))


def test_identifiers_valid_and_unique(large_population):
    population = large_population
    assert len({s.id_number for s in population}) == len(population)
    counts = collections.Counter()
    for s in population:
        if s.subject_type == RESIDENT:
            if s.index < 3000:  # stdnum's region lookup is slow; the check char is not
                check_resident_id(s.id_number)
            assert s.id_number[17] == resident_id_check_char(s.id_number[:17])
            assert "19460101" <= s.id_number[6:14] <= "20071231"
            assert 2 <= len(s.name) <= 4
        else:
            check_credit_code(s.id_number)
            assert s.id_number[17] == credit_code_check_char(s.id_number[:17])
            assert s.id_number.startswith("913401")
            assert s.name.endswith("公司")
        counts[s.subject_type] += 1
    assert counts[RESIDENT] > 30_000 and counts[COMPANY] > 5_000
    companies = [s.name for s in population if s.subject_type == COMPANY]
    assert len(set(companies)) == len(companies)


@pytest.mark.parametrize("district", range(len(DISTRICTS)))
def test_region_code_valid_for_every_birth_year(district):
    # stdnum checks the region against the birth year; spouses may be born from 1941.
    for year in range(1941, 2008):
        for month, day in ((1, 1), (12, 31)):
            check_resident_id(resident_id(district, day_index(year, month, day), 123))


# --- agencies ---


def luhn_valid(number: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(number)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def test_accounts_valid(world):
    adult = {s.id_number: s for s in world.population}
    for institution_id, name, profile in DEFAULT_BANKS:
        accounts = world.accounts[institution_id]
        assert len(accounts) > 100
        assert len({a.account_number for a in accounts}) == len(accounts)
        for a in accounts:
            assert a.currency == "CNY"
            assert a.balance_fen >= 0
            assert a.status in bank_pb2.AccountStatus.values() and a.status
            if a.status == bank_pb2.ACCOUNT_STATUS_CLOSED:
                assert a.balance_fen == 0
            opened = datetime.date.fromisoformat(a.opened_on)
            assert opened <= datetime.date(2025, 12, 31)
            owner = adult[a.owner_id_number]
            if owner.subject_type == RESIDENT:
                assert opened.year - int(owner.id_number[6:10]) >= 18
            if profile == "bank":
                assert re.fullmatch(r"62\d{17}", a.account_number) and luhn_valid(a.account_number)
                assert a.account_type in (
                    bank_pb2.ACCOUNT_TYPE_DEMAND_DEPOSIT,
                    bank_pb2.ACCOUNT_TYPE_TIME_DEPOSIT,
                    bank_pb2.ACCOUNT_TYPE_WEALTH_MANAGEMENT,
                )
                assert a.branch.startswith(name) and a.branch.endswith("支行")
            elif profile == "payment":
                assert re.fullmatch(r"2088\d{12}", a.account_number)
                assert a.account_type == bank_pb2.ACCOUNT_TYPE_PAYMENT_BALANCE
            else:
                assert re.fullmatch(r"\d{12}", a.account_number)
                assert a.account_type == bank_pb2.ACCOUNT_TYPE_SECURITIES_CASH
                assert a.branch.startswith(name) and a.branch.endswith("营业部")
    # ICBC cards carry ICBC's card BIN.
    assert all(a.account_number.startswith("622202") for a in world.accounts["icbc"])


def test_balances_lognormal_with_zeros_and_dormant(world):
    accounts = [a for accounts in world.accounts.values() for a in accounts]
    balances = sorted(a.balance_fen for a in accounts)
    median = balances[len(balances) // 2]
    assert 0 < median < balances[int(len(balances) * 0.99)] / 20  # long right tail
    assert 0.03 < sum(b == 0 for b in balances) / len(balances) < 0.2
    statuses = collections.Counter(a.status for a in accounts)
    assert statuses[bank_pb2.ACCOUNT_STATUS_DORMANT] and statuses[bank_pb2.ACCOUNT_STATUS_CLOSED]
    by_type = collections.defaultdict(list)
    population = {s.id_number: s for s in world.population}
    for a in accounts:
        if a.status == bank_pb2.ACCOUNT_STATUS_NORMAL and a.balance_fen:
            by_type[population[a.owner_id_number].subject_type].append(a.balance_fen)
    companies, persons = sorted(by_type[COMPANY]), sorted(by_type[RESIDENT])
    assert companies[len(companies) // 2] > 5 * persons[len(persons) // 2]


def test_unknown_profile_rejected(world):
    with pytest.raises(ValueError, match="profile"):
        list(bank_accounts(SEED, world.population, "x", "x", "insurance"))
    assert BANK_PROFILES == ("bank", "payment", "securities")


VIN_VALUES = {**{str(d): d for d in range(10)}, **dict(zip("ABCDEFGH", range(1, 9))),
              **dict(zip("JKLMN", range(1, 6))), "P": 7, "R": 9, **dict(zip("STUVWXYZ", range(2, 10)))}
VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def vin_valid(vin: str) -> bool:
    if not re.fullmatch(r"[A-HJ-NPR-Z0-9]{17}", vin):
        return False
    remainder = sum(VIN_VALUES[c] * w for c, w in zip(vin, VIN_WEIGHTS)) % 11
    return vin[8] == ("X" if remainder == 10 else str(remainder))


def test_vin_checker_itself():
    assert vin_valid("1M8GDM9AXKP042788")  # the textbook example
    assert not vin_valid("1M8GDM9A1KP042788")


def test_vehicles_valid(world):
    vs = world.vehicles
    assert len(vs) > 300
    assert len({v.plate for v in vs}) == len(vs)
    assert len({v.vin for v in vs}) == len(vs)
    for v in vs:
        check_plate(v.plate)
        assert vin_valid(v.vin), v.vin
        assert v.status in (vehicle_pb2.VEHICLE_STATUS_NORMAL, vehicle_pb2.VEHICLE_STATUS_MORTGAGED,
                            vehicle_pb2.VEHICLE_STATUS_SCRAPPED)
        new_energy = len(v.plate) == 8
        assert v.plate_type == ("小型新能源汽车" if new_energy else "小型汽车")
        assert "2006-01-01" <= v.registered_on <= "2025-12-31"
        datetime.date.fromisoformat(v.registered_on)
    brands = collections.Counter(v.brand for v in vs)
    assert {"江淮", "蔚来", "大众", "比亚迪"} <= set(brands)
    assert all(len(v.plate) == 8 for v in vs if v.brand in ("蔚来", "特斯拉"))
    statuses = collections.Counter(v.status for v in vs)
    assert statuses[vehicle_pb2.VEHICLE_STATUS_NORMAL] > statuses[vehicle_pb2.VEHICLE_STATUS_MORTGAGED] > 0


def test_properties_valid(world):
    ps = world.properties
    assert len(ps) > 300
    assert len({p.certificate_number for p in ps}) == len(ps)
    assert len({p.unit_number for p in ps}) == len(ps)
    uses = collections.Counter(p.use for p in ps)
    assert uses.most_common(1)[0][0] == realestate_pb2.PROPERTY_USE_RESIDENTIAL
    mortgaged = sum(bool(p.mortgages) for p in ps) / len(ps)
    assert 0.3 < mortgaged < 0.5
    co_owned = 0
    for p in ps:
        m = re.fullmatch(r"皖\((\d{4})\)合肥市不动产权第\d{7}号", p.certificate_number)
        assert m and 2016 <= int(m.group(1)) <= 2025
        assert p.registered_on.startswith(m.group(1))
        assert re.fullmatch(r"3401\d{8}GB\d{5}F\d{8}", p.unit_number), p.unit_number
        assert p.address.startswith("合肥市")
        assert sum(o.share_bp for o in p.owners) == 10000
        if p.use == realestate_pb2.PROPERTY_USE_RESIDENTIAL:
            assert 50 <= p.area_m2 <= 180 and p.address.endswith("室")
        if p.use == realestate_pb2.PROPERTY_USE_PARKING:
            assert 12 <= p.area_m2 <= 15
        assert p.area_m2 == round(p.area_m2, 2)
        for owner in p.owners:
            (check_resident_id if owner.subject_type == RESIDENT else check_credit_code)(owner.id_number)
        for mortgage in p.mortgages:
            assert mortgage.amount_fen > 0 and mortgage.amount_fen % 100 == 0
            assert "银行" in mortgage.mortgagee
        if len(p.owners) == 2:
            co_owned += 1
            primary, partner = p.owners
            assert (primary.share_bp, partner.share_bp) == (5000, 5000)
            # Spouses are of the opposite sex and were adults when they bought.
            assert int(primary.id_number[16]) % 2 != int(partner.id_number[16]) % 2
            assert int(partner.id_number[6:10]) + 20 <= int(p.registered_on[:4])
    assert co_owned > 50


def test_assets_unique_at_scale(large_population):
    # Random plates and unit numbers only start to collide with thousands of them.
    vs = list(vehicles(SEED, large_population, DEFAULT_VEHICLE_REGISTRY))
    assert len(vs) > 8_000
    assert len({v.plate for v in vs}) == len({v.vin for v in vs}) == len(vs)
    ps = list(properties(SEED, large_population, DEFAULT_REALESTATE_REGISTRY))
    assert len(ps) > 8_000
    assert len({p.certificate_number for p in ps}) == len({p.unit_number for p in ps}) == len(ps)
    partners = collections.defaultdict(set)
    for p in ps:
        if len(p.owners) == 2:
            partners[p.owners[1].id_number].add(p.owners[0].id_number)
    assert all(len(owners) == 1 for owners in partners.values())


def test_spouse_is_stable_and_outside_the_population(world):
    ids = {s.id_number for s in world.population}
    partners = {}
    for p in world.properties:
        if len(p.owners) == 2:
            owner, partner = p.owners
            assert partners.setdefault(owner.id_number, partner.id_number) == partner.id_number
            assert partner.id_number not in ids
    person = next(s for s in world.population if s.subject_type == RESIDENT)
    assert spouse(SEED, person) == spouse(SEED, person)


def test_tier_zero_holds_nothing_anywhere(world):
    tier0 = {s.id_number for s in world.population if s.tier == 0}
    assert len(tier0) > 1000
    held = world.held(by_kind=False)
    assert tier0.isdisjoint(held)
    # Tier 2 holds at far more agencies than tier 1.
    by_tier = collections.defaultdict(list)
    for s in world.population:
        by_tier[s.tier].append(len(held.get(s.id_number, ())))
    assert sum(by_tier[2]) / len(by_tier[2]) > 2 * sum(by_tier[1]) / len(by_tier[1])


def test_showcase_subjects_hold_assets_at_two_agency_kinds(world):
    chosen = showcase(world.population, 10)
    assert len(chosen) == 10
    assert all(s.tier == 2 for s in chosen)
    assert [s.index for s in chosen] == sorted(s.index for s in chosen)
    held = world.held()
    for s in chosen:
        assert len(held[s.id_number]) >= 2, (s, held[s.id_number])


def test_accounts_population_size_hits_target(large_population):
    target = 20_000
    produced = sum(1 for _ in bank_accounts(SEED, large_population, "icbc", "中国工商银行", "bank"))
    assert abs(produced - target) / target < 0.10
    for profile in ("payment", "securities"):
        size = accounts_population_size(5_000, profile)
        produced = sum(1 for _ in bank_accounts(SEED, subjects(SEED, size), "p", "p", profile))
        assert abs(produced - 5_000) / 5_000 < 0.10


def test_cli_prints_counts_and_showcase(capsys):
    main(["--seed", "3", "--subjects", "2000", "--show", "2"])
    out = capsys.readouterr().out
    assert "icbc" in out and "hefei-vmo" in out and "hefei-rer" in out
    showcase_lines = out.split("showcase:")[1].strip().splitlines()
    assert len(showcase_lines) == 2
    ids = [line.split()[0] for line in showcase_lines]
    population = {s.id_number: s for s in subjects(3, 2000)}
    assert all(population[i].tier == 2 for i in ids)


def test_records_are_frozen(world):
    with pytest.raises(AttributeError):
        world.population[0].tier = 0  # type: ignore[misc]
    assert isinstance(world.population[0], SubjectRecord)
