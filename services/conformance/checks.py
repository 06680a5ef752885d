"""Rules every answer must keep, checked after every call of every case (the cases check what depends on the story).

The shared checks (services/common/answers.py, which the gateway runs too:
query answers, and control replies against the request they answer) plus
what only a conformance run can afford on every answer: a query's accounts
against their own freezes, queue positions, the shape of an INVALID_ARGUMENT
message.
"""

import re

from google.protobuf.message import Message

from protos.common.v1 import common_pb2
from services.common import answers
from services.common.answers import reply_problem

__all__ = ["query_problem", "refusal_problem", "reply_problem"]

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


def refusal_problem(code_name: str, details: str) -> str | None:
    """Refusals say what to fix; INVALID_ARGUMENT starts with the field and its rule."""
    if not details.strip():
        return f"{code_name} without a message: say what is wrong"
    if code_name == "INVALID_ARGUMENT" and not FIELD_RULE.match(details):
        return f"INVALID_ARGUMENT message {details!r} does not start with 'field: rule'"
    return None
