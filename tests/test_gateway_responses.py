"""What agencies answer is checked before it reaches a user: each rule caught, a valid answer passes."""

import math

import pytest

from protos.bank.v1 import bank_pb2
from protos.gateway.v1 import gateway_pb2
from protos.realestate.v1 import realestate_pb2
from protos.vehicle.v1 import vehicle_pb2
from services.gateway.query import answers as responses


def account(**changes) -> bank_pb2.Account:
    fields = dict(account_number="6222021234567890123", currency="CNY", balance_fen=100_000,
                  frozen_fen=30_000, available_balance_fen=70_000)
    fields.update(changes)
    return bank_pb2.Account(**fields)


def vehicle(**changes) -> vehicle_pb2.Vehicle:
    fields = dict(plate="皖A12345", vin="LSVAU2180N2123456")
    fields.update(changes)
    return vehicle_pb2.Vehicle(**fields)


def prop(shares=(10_000,), **changes) -> realestate_pb2.Property:
    fields = dict(certificate_number="皖(2019)合肥市不动产权第0123456号", area_m2=89.5)
    fields.update(changes)
    p = realestate_pb2.Property(**fields)
    for share in shares:
        p.owners.add(share_bp=share)
    return p


def result(accounts=(), vehicles=(), properties=()) -> gateway_pb2.AgencyResult:
    r = gateway_pb2.AgencyResult(agency_id="bank-x", status=gateway_pb2.AGENCY_STATUS_OK)
    r.accounts.extend(accounts)
    r.vehicles.extend(vehicles)
    r.properties.extend(properties)
    return r


def test_a_valid_answer_passes_untouched():
    r = result([account(), account(frozen_fen=0, available_balance_fen=100_000), account(
        balance_fen=0, frozen_fen=0, available_balance_fen=0)],
        [vehicle(), vehicle(plate="皖AD12345"), vehicle(plate="皖A12345F")],
        [prop(), prop(shares=(5000, 5000), area_m2=0.0), prop(shares=(0,))])
    before = r.SerializeToString()
    assert responses.problem(r) is None
    assert responses.check(r) is True
    assert r.SerializeToString() == before
    assert responses.problem(result()) is None


BAD = [
    (result([account(account_number="")]), "accounts[0].account_number"),
    (result([account(), account(account_number="9" * 65)]), "accounts[1].account_number"),
    (result([account(balance_fen=-1, frozen_fen=0, available_balance_fen=-1)]), "accounts[0].balance_fen"),
    (result([account(frozen_fen=-5, available_balance_fen=100_005)]), "accounts[0].frozen_fen"),
    (result([account(frozen_fen=100_001, available_balance_fen=-1)]), "accounts[0].frozen_fen"),
    (result([account(available_balance_fen=70_001)]), "accounts[0].available_balance_fen"),
    (result([account(available_balance_fen=100_000)]), "accounts[0].available_balance_fen"),
    (result([account(currency="")]), "accounts[0].currency"),
    (result([account(currency="cny")]), "accounts[0].currency"),
    (result([account(currency="CNYY")]), "accounts[0].currency"),
    (result([account(currency="C1Y")]), "accounts[0].currency"),
    (result([account(currency="ＣＮＹ")]), "accounts[0].currency"),
    (result(vehicles=[vehicle(plate="")]), "vehicles[0].plate"),
    (result(vehicles=[vehicle(), vehicle(plate="京A12345")]), "vehicles[1].plate"),
    (result(vehicles=[vehicle(plate="皖AI2345")]), "vehicles[0].plate"),
    (result(vehicles=[vehicle(vin="LSVAU2180N212345")]), "vehicles[0].vin"),
    (result(vehicles=[vehicle(vin="")]), "vehicles[0].vin"),
    (result(properties=[prop(certificate_number="")]), "properties[0].certificate_number"),
    (result(properties=[prop(certificate_number="x" * 65)]), "properties[0].certificate_number"),
    (result(properties=[prop(area_m2=-0.01)]), "properties[0].area_m2"),
    (result(properties=[prop(area_m2=math.nan)]), "properties[0].area_m2"),
    (result(properties=[prop(area_m2=math.inf)]), "properties[0].area_m2"),
    (result(properties=[prop(shares=(10_000, 10_001))]), "properties[0].owners[1].share_bp"),
    (result(properties=[prop(), prop(shares=(-1,))]), "properties[1].owners[0].share_bp"),
    (result([account()] * (responses.MAX_ITEMS + 1)), "accounts"),
    (result(vehicles=[vehicle()] * (responses.MAX_ITEMS + 1)), "vehicles"),
    (result(properties=[prop()] * (responses.MAX_ITEMS + 1)), "properties"),
]


@pytest.mark.parametrize("bad, path", BAD, ids=[f"{i}-{path}" for i, (_, path) in enumerate(BAD)])
def test_each_rule_is_caught_and_the_assets_are_dropped(bad, path):
    found = responses.problem(bad)
    assert found is not None and found.split(": ", 1)[0] == path, found
    # Mixed with valid assets of the other kinds: all of them go.
    bad.vehicles.append(vehicle()) if path.startswith("accounts") else bad.accounts.append(account())
    assert responses.check(bad) is False
    assert bad.status == gateway_pb2.AGENCY_STATUS_ERROR
    assert bad.error_message.startswith(f"invalid response from agency: {path}: ")
    assert not bad.accounts and not bad.vehicles and not bad.properties


def test_exactly_the_bound_is_allowed():
    assert responses.problem(result([account()] * responses.MAX_ITEMS)) is None
