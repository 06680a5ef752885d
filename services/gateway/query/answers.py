"""Checks on what an agency answered, before any of it reaches a user or a summary.

An agency is trusted to be honest, not to be bug-free: a negative balance, a
freeze larger than the balance or a malformed plate would otherwise be shown
to an executor and summed into the totals an enforcement decision rests on.

`problem(answer)` runs on the hot path after every agency answer, on the
agency's own response (before any of it is copied into a result) or on an
AgencyResult: plain loops and comparisons, no exceptions unless something is
wrong. It returns "<field path>: <rule>" for the first violation, or None.
A broken answer counts as the agency call's INVALID_ANSWER outcome.
"""

import math

from protos.gateway.v1 import gateway_pb2
from services.common.identifiers import InvalidIdentifier, check_plate

MAX_ITEMS = 1000
MAX_ACCOUNT_NUMBER_CHARS = 64
MAX_CERTIFICATE_CHARS = 64
VIN_CHARS = 17
FULL_SHARE_BP = 10_000
INVALID_PREFIX = "invalid response from agency: "


def _account_problem(i: int, account) -> str | None:
    number = account.account_number
    if not number:
        return f"accounts[{i}].account_number: is required"
    if len(number) > MAX_ACCOUNT_NUMBER_CHARS:
        return f"accounts[{i}].account_number: must be at most {MAX_ACCOUNT_NUMBER_CHARS} characters"
    balance = account.balance_fen
    if balance < 0:
        return f"accounts[{i}].balance_fen: must not be negative"
    frozen = account.frozen_fen
    if frozen < 0:
        return f"accounts[{i}].frozen_fen: must not be negative"
    if frozen > balance:
        return f"accounts[{i}].frozen_fen: must not exceed balance_fen"
    if account.available_balance_fen != balance - frozen:
        return f"accounts[{i}].available_balance_fen: must equal balance_fen - frozen_fen"
    currency = account.currency
    if len(currency) != 3 or not (currency.isascii() and currency.isalpha() and currency.isupper()):
        return f"accounts[{i}].currency: must be 3 upper-case letters (ISO 4217)"
    return None


def _vehicle_problem(i: int, vehicle) -> str | None:
    try:
        check_plate(vehicle.plate)
    except InvalidIdentifier as exc:
        return f"vehicles[{i}].plate: {exc}"
    if len(vehicle.vin) != VIN_CHARS:
        return f"vehicles[{i}].vin: must be {VIN_CHARS} characters"
    return None


def _property_problem(i: int, prop) -> str | None:
    certificate = prop.certificate_number
    if not certificate:
        return f"properties[{i}].certificate_number: is required"
    if len(certificate) > MAX_CERTIFICATE_CHARS:
        return f"properties[{i}].certificate_number: must be at most {MAX_CERTIFICATE_CHARS} characters"
    area = prop.area_m2
    if not math.isfinite(area) or area < 0:
        return f"properties[{i}].area_m2: must be a finite number not below 0"
    for j, owner in enumerate(prop.owners):
        if not 0 <= owner.share_bp <= FULL_SHARE_BP:
            return f"properties[{i}].owners[{j}].share_bp: must be 0 to {FULL_SHARE_BP}"
    return None


def problem(result) -> str | None:
    """The first rule the agency's answer breaks, as "<field path>: <rule>", or None.

    `result`: an AgencyResult, or a query response of any agency kind (each
    has the one list of its kind).
    """
    accounts = getattr(result, "accounts", None)
    if accounts:
        if len(accounts) > MAX_ITEMS:
            return f"accounts: must be at most {MAX_ITEMS} items"
        for i, account in enumerate(accounts):
            found = _account_problem(i, account)
            if found is not None:
                return found
    vehicles = getattr(result, "vehicles", None)
    if vehicles:
        if len(vehicles) > MAX_ITEMS:
            return f"vehicles: must be at most {MAX_ITEMS} items"
        for i, vehicle in enumerate(vehicles):
            found = _vehicle_problem(i, vehicle)
            if found is not None:
                return found
    properties = getattr(result, "properties", None)
    if properties:
        if len(properties) > MAX_ITEMS:
            return f"properties: must be at most {MAX_ITEMS} items"
        for i, prop in enumerate(properties):
            found = _property_problem(i, prop)
            if found is not None:
                return found
    return None


def reject(result: gateway_pb2.AgencyResult, found: str) -> None:
    """Mark the result an agency error and drop every asset it carried."""
    result.ClearField("accounts")
    result.ClearField("vehicles")
    result.ClearField("properties")
    result.status = gateway_pb2.AGENCY_STATUS_ERROR
    result.error_message = INVALID_PREFIX + found


def check(result: gateway_pb2.AgencyResult) -> bool:
    """Validate a freshly filled result; on a violation reject it. True when it may be shown."""
    found = problem(result)
    if found is None:
        return True
    reject(result, found)
    return False
