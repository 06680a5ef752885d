"""What an agency's answer must satisfy (protos/ comments), as plain checks: the gateway's and the conformance kit's.

An agency is trusted to be honest, not to be bug-free: a negative balance, a
freeze larger than the balance or a malformed plate would otherwise be shown
to an executor and summed into the totals an enforcement decision rests on,
and a freeze reply without freeze_id would leave a hold nobody can act on.

Each check returns "<field path>: <rule>" for the first violation, or None.
`problem` runs on the gateway's hot path after every query answer: plain
loops and comparisons, no exceptions unless something is wrong. The control
reply checks (`freeze_problem` ...) hold for any reply; the gateway and the
kit add what depends on the request (control/answers.py, services/conformance).
"""

import math

from protos.common.v1 import common_pb2
from services.common.identifiers import InvalidIdentifier, check_plate

MAX_ITEMS = 1000
MAX_ACCOUNT_NUMBER_CHARS = 64
MAX_CERTIFICATE_CHARS = 64
MAX_ID_CHARS = 64
VIN_CHARS = 17
FULL_SHARE_BP = 10_000

ACTIVE, QUEUED = common_pb2.HOLD_STATE_ACTIVE, common_pb2.HOLD_STATE_QUEUED
# The outcome label of an agency call answered with a reply that breaks the contract.
INVALID_RESPONSE = "INVALID_RESPONSE"
ENDED = frozenset({
    common_pb2.HOLD_STATE_RELEASED, common_pb2.HOLD_STATE_LAPSED, common_pb2.HOLD_STATE_DEDUCTED,
    common_pb2.HOLD_STATE_TRANSFERRED,
})
FREEZE_STATES = frozenset({ACTIVE, QUEUED, common_pb2.HOLD_STATE_RELEASED, common_pb2.HOLD_STATE_LAPSED,
                           common_pb2.HOLD_STATE_DEDUCTED})
SEAL_STATES = frozenset({ACTIVE, QUEUED, common_pb2.HOLD_STATE_RELEASED, common_pb2.HOLD_STATE_LAPSED,
                         common_pb2.HOLD_STATE_TRANSFERRED})


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


_NONE = ()


def problem(answer) -> str | None:
    """The first rule a query answer breaks, or None.

    `answer` is an agency's QueryAccountsResponse, QueryVehiclesResponse or
    QueryPropertiesResponse, or the gateway's AgencyResult filled from one.
    """
    accounts = getattr(answer, "accounts", _NONE)
    if accounts:
        if len(accounts) > MAX_ITEMS:
            return f"accounts: must be at most {MAX_ITEMS} items"
        for i, account in enumerate(accounts):
            found = _account_problem(i, account)
            if found is not None:
                return found
    vehicles = getattr(answer, "vehicles", _NONE)
    if vehicles:
        if len(vehicles) > MAX_ITEMS:
            return f"vehicles: must be at most {MAX_ITEMS} items"
        for i, vehicle in enumerate(vehicles):
            found = _vehicle_problem(i, vehicle)
            if found is not None:
                return found
    properties = getattr(answer, "properties", _NONE)
    if properties:
        if len(properties) > MAX_ITEMS:
            return f"properties: must be at most {MAX_ITEMS} items"
        for i, prop in enumerate(properties):
            found = _property_problem(i, prop)
            if found is not None:
                return found
    return None


# Control replies


def _id_problem(value: str, path: str) -> str | None:
    if not value:
        return f"{path}: is required"
    if len(value) > MAX_ID_CHARS:
        return f"{path}: must be at most {MAX_ID_CHARS} characters"
    return None


def _hold_times_problem(hold, path: str) -> str | None:
    if not hold.HasField("registered_at"):
        return f"{path}registered_at: is required"
    if not hold.HasField("expires_at"):
        return f"{path}expires_at: is required"
    if hold.state == QUEUED:
        if hold.queue_position < 1:
            return f"{path}queue_position: must be 1 or more while QUEUED"
        if hold.HasField("effective_at"):
            return f"{path}effective_at: must be unset while QUEUED"
    elif hold.queue_position:
        return f"{path}queue_position: must be 0 unless QUEUED"
    # A hold released or transferred while still queued never took effect.
    never_effective = (common_pb2.HOLD_STATE_RELEASED, common_pb2.HOLD_STATE_TRANSFERRED)
    if hold.state != QUEUED and hold.state not in never_effective and not hold.HasField("effective_at"):
        return f"{path}effective_at: is required once it took effect"
    if hold.state in ENDED and not hold.HasField("ended_at"):
        return f"{path}ended_at: is required once it ended"
    if hold.state in (ACTIVE, QUEUED) and hold.HasField("ended_at"):
        return f"{path}ended_at: must be unset while ACTIVE or QUEUED"
    return None


def freeze_problem(freeze, path: str = "") -> str | None:
    """The first rule an AccountFreeze breaks, whatever the request was."""
    found = _id_problem(freeze.freeze_id, f"{path}freeze_id") or _id_problem(
        freeze.account_number, f"{path}account_number")
    if found:
        return found
    if freeze.state not in FREEZE_STATES:
        return f"{path}state: must be ACTIVE, QUEUED, RELEASED, LAPSED or DEDUCTED"
    for name in ("requested_fen", "frozen_fen", "shortfall_fen", "deducted_fen"):
        if getattr(freeze, name) < 0:
            return f"{path}{name}: must not be negative"
    if freeze.requested_fen <= 0:
        return f"{path}requested_fen: must be positive"
    if freeze.frozen_fen + freeze.deducted_fen + freeze.shortfall_fen > freeze.requested_fen:
        return f"{path}frozen_fen: frozen + deducted + shortfall must not exceed requested_fen"
    if freeze.state != ACTIVE and freeze.frozen_fen:
        return f"{path}frozen_fen: must be 0 unless ACTIVE"
    if freeze.state == common_pb2.HOLD_STATE_DEDUCTED and not freeze.deducted_fen:
        return f"{path}deducted_fen: a DEDUCTED freeze has deducted something"
    return _hold_times_problem(freeze, path)


def seal_problem(seal, path: str = "") -> str | None:
    """The first rule a Seal breaks, whatever the request was."""
    found = _id_problem(seal.seal_id, f"{path}seal_id") or _id_problem(seal.asset_id, f"{path}asset_id")
    if found:
        return found
    if seal.state not in SEAL_STATES:
        return f"{path}state: must be ACTIVE, QUEUED, RELEASED, LAPSED or TRANSFERRED"
    return _hold_times_problem(seal, path)


def deduction_problem(deduction) -> str | None:
    found = _id_problem(deduction.deduction_id, "deduction_id") or _id_problem(deduction.freeze_id, "freeze_id")
    if found:
        return found
    if deduction.amount_fen <= 0:
        return "amount_fen: must be positive"
    if not deduction.HasField("freeze"):
        return "freeze: is required (the freeze after the deduction)"
    if deduction.freeze.freeze_id != deduction.freeze_id:
        return "freeze.freeze_id: must equal freeze_id"
    if not deduction.HasField("deducted_at"):
        return "deducted_at: is required"
    return freeze_problem(deduction.freeze, "freeze.")


def transfer_problem(transfer) -> str | None:
    found = _id_problem(transfer.transfer_id, "transfer_id") or _id_problem(
        transfer.new_certificate_number, "new_certificate_number")
    if found:
        return found
    if transfer.new_certificate_number == transfer.certificate_number:
        return "new_certificate_number: must differ from the cancelled certificate"
    if not transfer.HasField("transferred_at"):
        return "transferred_at: is required"
    return None


def _same_case(reply, request) -> str | None:
    if reply.case_number != request.case.case_number:
        return f"case_number: {reply.case_number!r}, the request's case is {request.case.case_number!r}"
    if reply.court_code != request.case.court_code:
        return f"court_code: {reply.court_code!r}, the request's court is {request.case.court_code!r}"
    return None


def reply_problem(method: str, request, reply) -> str | None:
    """The first rule a control reply breaks, given the request it answers; None for other methods.

    `method` is the agency RPC's name ("Freeze", "Seal", ...). A reply that
    fails here confirms nothing: the gateway leaves its action PENDING.
    """
    if method in ("Freeze", "RenewFreeze", "ReleaseFreeze"):
        found = freeze_problem(reply)
        if found:
            return found
        if method == "Freeze":
            if reply.account_number != request.account_number:
                return f"account_number: {reply.account_number!r}, the request froze {request.account_number!r}"
            if reply.requested_fen != request.amount_fen:
                return f"requested_fen: {reply.requested_fen}, the request asked for {request.amount_fen}"
            if reply.state not in (ACTIVE, QUEUED):
                return "state: a new freeze is ACTIVE or QUEUED"
        elif reply.freeze_id != request.freeze_id:
            return f"freeze_id: {reply.freeze_id!r}, the request named {request.freeze_id!r}"
        return _same_case(reply, request)
    if method == "Deduct":
        found = deduction_problem(reply)
        if found:
            return found
        if reply.amount_fen != request.amount_fen:
            return f"amount_fen: {reply.amount_fen}, the request deducted {request.amount_fen}"
        if request.WhichOneof("source") == "freeze_id" and reply.freeze_id != request.freeze_id:
            return f"freeze_id: {reply.freeze_id!r}, the request named {request.freeze_id!r}"
        if request.WhichOneof("source") == "account_number" and reply.account_number != request.account_number:
            return f"account_number: {reply.account_number!r}, the request named {request.account_number!r}"
        return _same_case(reply, request)
    if method in ("Seal", "RenewSeal", "ReleaseSeal"):
        found = seal_problem(reply)
        if found:
            return found
        if method == "Seal":
            asset = getattr(request, "plate", "") or getattr(request, "certificate_number", "")
            if reply.asset_id != asset:
                return f"asset_id: {reply.asset_id!r}, the request sealed {asset!r}"
            if reply.state not in (ACTIVE, QUEUED):
                return "state: a new seal is ACTIVE or QUEUED"
        elif reply.seal_id != request.seal_id:
            return f"seal_id: {reply.seal_id!r}, the request named {request.seal_id!r}"
        return _same_case(reply, request)
    if method == "Transfer":
        found = transfer_problem(reply)
        if found:
            return found
        if reply.certificate_number != request.certificate_number:
            return f"certificate_number: {reply.certificate_number!r}, the request named {request.certificate_number!r}"
        return _same_case(reply, request)
    return None
