"""Rules every answer must keep, checked after every call of every case (the cases check what depends on the story).

The shared checks (services/common/answers.py, which the gateway runs too)
plus what only a conformance run can afford on every answer: a query's
accounts against their own freezes, queue positions, the reply against the
request it answers, the shape of an INVALID_ARGUMENT message.
"""

import re

from google.protobuf.message import Message

from protos.common.v1 import common_pb2
from services.common import answers

ACTIVE, QUEUED = common_pb2.HOLD_STATE_ACTIVE, common_pb2.HOLD_STATE_QUEUED
# "field: rule", the field a proto field path.
FIELD_RULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])?(?:\.[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])?)*: \S")
ANSWER_FIELD = {"bank": "institution_id", "vehicle": "registry_id", "realestate": "registry_id"}


def _queue_problem(holds, path: str) -> str | None:
    """Holds of one asset in registration order: ACTIVE or QUEUED only, queue positions 1, 2, ..."""
    position = 0
    for j, hold in enumerate(holds):
        if hold.state not in (ACTIVE, QUEUED):
            return f"{path}[{j}].state: a query lists only ACTIVE and QUEUED holds"
        if hold.state == QUEUED:
            position += 1
            if hold.queue_position != position:
                return f"{path}[{j}].queue_position: {hold.queue_position}, expected {position} (registration order)"
    return None


def query_problem(kind: str, agency_id: str, response: Message) -> str | None:
    found = answers.problem(response)
    if found:
        return found
    answering = getattr(response, ANSWER_FIELD[kind])
    if answering != agency_id:
        return f"{ANSWER_FIELD[kind]}: {answering!r}, expected the agency ID {agency_id!r}"
    for i, account in enumerate(getattr(response, "accounts", ())):
        held = 0
        for j, freeze in enumerate(account.freezes):
            found = answers.freeze_problem(freeze, f"accounts[{i}].freezes[{j}].")
            if found:
                return found
            if freeze.account_number != account.account_number:
                return f"accounts[{i}].freezes[{j}].account_number: names another account"
            if freeze.state == ACTIVE:
                held += freeze.frozen_fen
        if held != account.frozen_fen:
            return f"accounts[{i}].frozen_fen: {account.frozen_fen}, but its ACTIVE freezes hold {held}"
        found = _queue_problem(account.freezes, f"accounts[{i}].freezes")
        if found:
            return found
    for name, records, asset in (("vehicles", getattr(response, "vehicles", ()), "plate"),
                                 ("properties", getattr(response, "properties", ()), "certificate_number")):
        for i, record in enumerate(records):
            active = 0
            for j, seal in enumerate(record.seals):
                found = answers.seal_problem(seal, f"{name}[{i}].seals[{j}].")
                if found:
                    return found
                if seal.asset_id != getattr(record, asset):
                    return f"{name}[{i}].seals[{j}].asset_id: names another {asset}"
                active += seal.state == ACTIVE
            if active > 1:
                return f"{name}[{i}].seals: {active} ACTIVE seals; at most one is in force"
            found = _queue_problem(record.seals, f"{name}[{i}].seals")
            if found:
                return found
    return None


def _same_case(reply, request) -> str | None:
    if reply.case_number != request.case.case_number:
        return f"case_number: {reply.case_number!r}, the request's case is {request.case.case_number!r}"
    if reply.court_code != request.case.court_code:
        return f"court_code: {reply.court_code!r}, the request's court is {request.case.court_code!r}"
    return None


def reply_problem(method: str, request: Message, reply: Message) -> str | None:
    """The first rule a control reply breaks, given the request it answers; None for other methods."""
    if method in ("Freeze", "RenewFreeze", "ReleaseFreeze"):
        found = answers.freeze_problem(reply)
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
        found = answers.deduction_problem(reply)
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
        found = answers.seal_problem(reply)
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
        found = answers.transfer_problem(reply)
        if found:
            return found
        if reply.certificate_number != request.certificate_number:
            return f"certificate_number: {reply.certificate_number!r}, the request named {request.certificate_number!r}"
        return _same_case(reply, request)
    return None


def refusal_problem(code_name: str, details: str) -> str | None:
    """Refusals say what to fix; INVALID_ARGUMENT starts with the field and its rule."""
    if not details.strip():
        return f"{code_name} without a message: say what is wrong"
    if code_name == "INVALID_ARGUMENT" and not FIELD_RULE.match(details):
        return f"INVALID_ARGUMENT message {details!r} does not start with 'field: rule'"
    return None
