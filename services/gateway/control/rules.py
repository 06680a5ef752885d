"""The rules of control actions: request checks before anything is looked up, and pure checks
against the ledger's snapshot of a case (run under the case's lock), which raise GatewayError."""

import re

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from protos.bank.v1 import bank_pb2
from protos.common.v1 import common_pb2
from services.common.identifiers import normal_case_number
from services.common.logs import mask_id
from services.common.periods import BANK_FREEZE_YEARS, REALESTATE_SEAL_YEARS, VEHICLE_SEAL_YEARS, add_years
from services.common.validation import MAX_NAME_CHARS, FieldError, require_text
from services.gateway.agencies.clients import AgencyClients
from services.gateway.control.messages import FREEZE, SEAL, freezable_fen, hold_state_label, kind_label, timestamp_us
from services.gateway.errors import GatewayError
from services.gateway.ledger import PENDING, CaseRecord, HoldRecord, Snapshot

ENDED_STATES = (
    common_pb2.HOLD_STATE_RELEASED, common_pb2.HOLD_STATE_DEDUCTED, common_pb2.HOLD_STATE_TRANSFERRED,
)
STATUTORY_YEARS = {"bank": BANK_FREEZE_YEARS, "vehicle": VEHICLE_SEAL_YEARS, "realestate": REALESTATE_SEAL_YEARS}


# Request checks


def validate_expiry(ts: Timestamp, field: str, now_us: int, years: int | None) -> None:
    if not ts.seconds and not ts.nanos:
        return
    at = timestamp_us(ts)
    if at <= now_us:
        raise FieldError(field, "must be in the future")
    if years is not None and at > add_years(now_us, years):
        raise FieldError(field, f"must be at most {years} year(s) from now (statutory maximum)")


def validate_court_account(account: bank_pb2.CourtAccount) -> None:
    for name in ("bank_name", "account_number", "account_name"):
        require_text(getattr(account, name), f"court_account.{name}", MAX_NAME_CHARS)


def agency_kind_of(clients: AgencyClients, agency_id: str, field: str, kinds: tuple[str, ...]) -> str:
    """The kind of the registered agency `agency_id`, which must be one of `kinds`."""
    if not agency_id:
        raise FieldError(field, "is required")
    client = clients.by_id.get(agency_id)
    if client is None:
        # Not INVALID_ARGUMENT: the request is well formed, the agency unknown here.
        raise GatewayError(grpc.StatusCode.NOT_FOUND, f'{field}: unknown agency "{agency_id}"; see GET /v1/agencies')
    if client.config.kind not in kinds:
        raise FieldError(field, f'"{agency_id}" is a {client.config.kind} agency; expected {" or ".join(kinds)}')
    return client.config.kind


# Checks against the case, under its lock (see Ledger.record_intent): pure, they read the snapshot


def case_for(case_ref: common_pb2.CaseRef, snap: Snapshot) -> CaseRecord:
    """The registered case the request names, handled by the court it names."""
    case = snap.case
    number = normal_case_number(case_ref.case_number)
    if case is None:
        raise GatewayError(
            grpc.StatusCode.NOT_FOUND,
            f"case.case_number: case {number} is not registered; register it with its debtors and the"
            " amount owed first (POST /v1/cases, `chakong case register`)",
        )
    if case.court_code != case_ref.court_code:
        raise GatewayError(
            grpc.StatusCode.PERMISSION_DENIED,
            f"case.court_code: case {number} is handled by court {case.court_code}, not {case_ref.court_code}",
        )
    return case

# Driving: call the agency until it answers, record the outcome once


def debtor_of(snap: Snapshot, subject: common_pb2.Subject, field: str) -> common_pb2.Subject:
    """The subject as one of the case's debtors, with the registered name
    filled in when the request left it out."""
    debtor = next((d for d in snap.debtors if d.id_number == subject.id_number), None)
    if debtor is None:
        raise GatewayError(
            grpc.StatusCode.PERMISSION_DENIED,
            f"{field}.id_number: {mask_id(subject.id_number)} is not a debtor of case {snap.case.case_number};"
            " a court may act only on its case's debtors' assets",
        )
    if debtor.subject_type != subject.type:
        raise GatewayError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"{field}.type: the case registers this debtor as {common_pb2.SubjectType.Name(debtor.subject_type)}",
        )
    if subject.name and debtor.name and subject.name != debtor.name:
        raise GatewayError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"{field}.name: does not match the name registered for this debtor in case {snap.case.case_number}",
        )
    name = subject.name or debtor.name
    if not name:
        raise GatewayError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{field}.name: is required (the case registers no name for this debtor)",
        )
    return common_pb2.Subject(type=subject.type, id_number=subject.id_number, name=name)


_EXECUTOR_ID = re.compile(r"[0-9A-Za-z_.-]{1,32}")
MAX_EXECUTORS = 32


def validate_executor_ids(executor_ids, primary: str) -> list[str]:
    """The executors assigned to a case: as named, or the CaseRef's executor alone."""
    if len(executor_ids) > MAX_EXECUTORS:
        raise FieldError("executor_ids", f"at most {MAX_EXECUTORS} executors")
    ids = list(executor_ids) or ([primary] if primary else [])
    for i, executor_id in enumerate(ids):
        if not _EXECUTOR_ID.fullmatch(executor_id):
            field = f"executor_ids[{i}]" if executor_ids else "case.executor_id"
            raise FieldError(field, "must be 1 to 32 letters, digits, '_', '.' or '-'")
    if len(set(ids)) != len(ids):
        raise FieldError("executor_ids", "an executor is listed twice")
    if not ids:
        raise FieldError("executor_ids", "at least one executor is required (or case.executor_id)")
    return ids


def check_freezable(snap: Snapshot, amount_fen: int, verb: str) -> None:
    case, totals = snap.case, snap.totals
    room = freezable_fen(case, totals)
    if amount_fen > room:
        raise GatewayError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"amount_fen: case {case.case_number} may freeze at most {room} fen more; to {verb} {amount_fen} fen"
            f" would be excessive seizure (owed {case.amount_owed_fen} + costs {case.costs_fen}"
            f" − deducted {totals.deducted_fen} − frozen, queued or pending {totals.frozen_fen}"
            f" = {room} fen)",
        )


def hold_of(snap: Snapshot, hold_id: str, want: str, kind: int) -> HoldRecord:
    hold = snap.hold
    case_number = snap.case.case_number
    verb = kind_label(kind).split("_")[0]
    if hold is None:
        placed = snap.hold_action
        if placed is not None and placed.kind in (FREEZE, SEAL) and placed.case_number == case_number:
            if placed.state == PENDING:
                raise GatewayError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"hold_id: {hold_id} is not confirmed by {placed.agency_id} yet (PENDING); try again when it is",
                )
            raise GatewayError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"hold_id: {hold_id} was refused by {placed.agency_id} ({placed.error_code}) and holds nothing",
            )
        raise GatewayError(grpc.StatusCode.NOT_FOUND, f"hold_id: no freeze or seal {hold_id} in the ledger")
    if hold.case_number != case_number:
        raise GatewayError(
            grpc.StatusCode.PERMISSION_DENIED,
            f"hold_id: {hold_id} was placed for case {hold.case_number}; act on it under that case",
        )
    if hold.hold_kind != want:
        raise GatewayError(
            grpc.StatusCode.FAILED_PRECONDITION, f"hold_id: {hold_id} is a {hold.hold_kind}, not a {want}"
        )
    if hold.state in ENDED_STATES:
        raise GatewayError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"hold_id: {hold_id} has ended ({hold_state_label(hold.state)}); nothing left to {verb}",
        )
    return hold

