"""Every control action kind, declared once: what it takes, how it is checked, what it asks which agency.

An `ActionKind` names its request type, action ID prefix, EnforcementControl
method, HTTP routes, how the door describes it (its subject and agency, for
authorization and the audit trail), its validator (the request's shape,
before anything is looked up) and its planner (the rules against the case's
snapshot, under the case's lock, and the agency request). The gRPC servicer,
the HTTP routes, the door's policies and the OpenAPI document are derived
from `KINDS`; the agency methods live in agencies/methods.py.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import grpc
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from protos.bank.v1 import bank_pb2
from protos.common.v1 import common_pb2
from protos.gateway.v1 import control_pb2
from protos.realestate.v1 import realestate_pb2
from protos.vehicle.v1 import vehicle_pb2
from services.common.periods import BANK_FREEZE_YEARS, add_years
from services.common.validation import (
    MAX_DOCUMENT_NUMBER_CHARS,
    FieldError,
    require_text,
    validate_amount_fen,
    validate_subject,
    validate_token,
)
from services.gateway.access.door import Call, Operation, agency_ids, case_call
from services.gateway.agencies import methods
from services.gateway.agencies.clients import AgencyClients
from services.gateway.agencies.methods import AgencyMethod
from services.gateway.control import rules
from services.gateway.control.messages import kind_label, timestamp, to_json
from services.gateway.control.metrics import door_counter
from services.gateway.errors import GatewayError
from services.gateway.ledger import CaseRecord, HoldRecord, Planned, Snapshot
from services.security.ratelimit import CONTROL

K = control_pb2


@dataclass(frozen=True)
class HttpRoute:
    """POST `path` runs the kind; a `{hold_id}` in it names the hold acted on."""

    path: str
    operation_id: str
    summary: str


@dataclass(frozen=True)
class Plan:
    """What a planner needs besides the request and the snapshot."""

    case: CaseRecord
    case_ref: common_pb2.CaseRef  # as sent to the agency
    agency_key: str
    now_us: int
    clients: AgencyClients

    def planned(self, agency_id: str, method: AgencyMethod, agency_request: Message, *, amount: int = 0,
                claim: int = 0, asset: str = "", subject: common_pb2.Subject | None = None) -> Planned:
        agency_request.idempotency_key = self.agency_key
        subject = subject or common_pb2.Subject()
        return Planned(
            agency_id=agency_id, amount_fen=amount, claim_fen=claim, asset_id=asset,
            subject_type=subject.type, subject_id=subject.id_number, subject_name=subject.name,
            agency_method=method.name, agency_request=to_json(agency_request), agency_key=self.agency_key,
        )

    def expiry(self, ts: Timestamp, agency_kind: str) -> Timestamp:
        """The requested expiry, or the statutory maximum from now."""
        if ts.seconds or ts.nanos:
            return ts
        return timestamp(add_years(self.now_us, rules.STATUTORY_YEARS[agency_kind]))


Validate = Callable[[Message, AgencyClients, int], None]
Planner = Callable[[Message, Snapshot, Plan], Planned]


@dataclass(frozen=True)
class ActionKind:
    kind: int  # control_pb2.ActionKind
    # Action IDs start with it: an ID says what it is in a log line or a table.
    prefix: str
    request_type: type[Message]
    grpc_method: str
    http: tuple[HttpRoute, ...]
    validate: Validate
    plan: Planner
    # The debtor whose assets a new freeze, seal or direct deduction takes,
    # with its field path; None for an action on a hold.
    subject_of: Callable[[Message], tuple[common_pb2.Subject, str] | None] = lambda request: None
    agency_of: Callable[[Message], str] = lambda request: ""
    hold_of: Callable[[Message], str] = lambda request: request.hold_id

    @property
    def label(self) -> str:
        return kind_label(self.kind)

    def describe(self, request: Message) -> Call:
        """The request as the door authorizes and records it."""
        found = self.subject_of(request)
        subject = None
        if found is not None:
            subject, field = found
            validate_subject(subject, field)
        agency_id = self.agency_of(request)
        return case_call(self.label, request.case, subject=subject,
                         agency_ids=agency_ids([agency_id] if agency_id else []))

    @cached_property
    def operation(self) -> Operation:
        # Every action reaches an agency and may move money or a hold: the control limits.
        return Operation(
            self.label, self.request_type, self.describe, rate_limit=CONTROL, count=door_counter(self.label)
        )


def _subject(request: Message) -> tuple[common_pb2.Subject, str]:
    return request.subject, "subject"


def _on_hold(snap: Snapshot, request: Message, want: str, kind: int) -> tuple[HoldRecord, common_pb2.Subject]:
    hold = rules.hold_of(snap, request.hold_id, want, kind)
    return hold, common_pb2.Subject(type=hold.subject_type, id_number=hold.subject_id, name=hold.subject_name)


# Freeze (冻结)


def _validate_freeze(request: control_pb2.FreezeFundsRequest, clients: AgencyClients, now_us: int) -> None:
    rules.agency_kind_of(clients, request.agency_id, "agency_id", ("bank",))
    validate_subject(request.subject)
    require_text(request.account_number, "account_number", 64)
    validate_amount_fen(request.amount_fen, "amount_fen")
    rules.validate_expiry(request.expires_at, "expires_at", now_us, BANK_FREEZE_YEARS)


def _plan_freeze(request: control_pb2.FreezeFundsRequest, snap: Snapshot, plan: Plan) -> Planned:
    subject = rules.debtor_of(snap, request.subject, "subject")
    rules.check_freezable(snap, request.amount_fen, "freeze")
    return plan.planned(
        request.agency_id, methods.BANK_FREEZE,
        bank_pb2.FreezeRequest(
            case=plan.case_ref, subject=subject, account_number=request.account_number,
            amount_fen=request.amount_fen, expires_at=plan.expiry(request.expires_at, "bank"),
        ),
        amount=request.amount_fen, claim=request.amount_fen, asset=request.account_number, subject=subject,
    )


# Renew (续冻, 续封)


def _validate_renew(request: control_pb2.RenewHoldRequest, clients: AgencyClients, now_us: int) -> None:
    validate_token(request.hold_id, "hold_id", required=True)
    rules.validate_expiry(request.expires_at, "expires_at", now_us, None)


def _plan_renew_freeze(request: control_pb2.RenewHoldRequest, snap: Snapshot, plan: Plan) -> Planned:
    hold, holder = _on_hold(snap, request, "freeze", K.ACTION_KIND_RENEW_FREEZE)
    return plan.planned(
        hold.agency_id, methods.BANK_RENEW_FREEZE,
        bank_pb2.RenewFreezeRequest(
            case=plan.case_ref, freeze_id=hold.agency_hold_id, expires_at=plan.expiry(request.expires_at, "bank"),
        ),
        asset=hold.asset_id, subject=holder,
    )


def _plan_renew_seal(request: control_pb2.RenewHoldRequest, snap: Snapshot, plan: Plan) -> Planned:
    hold, holder = _on_hold(snap, request, "seal", K.ACTION_KIND_RENEW_SEAL)
    registry = vehicle_pb2 if hold.agency_kind == "vehicle" else realestate_pb2
    return plan.planned(
        hold.agency_id, methods.RENEW_SEAL[hold.agency_kind],
        registry.RenewSealRequest(
            case=plan.case_ref, seal_id=hold.agency_hold_id, expires_at=plan.expiry(request.expires_at, hold.agency_kind),
        ),
        asset=hold.asset_id, subject=holder,
    )


# Release (解冻, 解封)


def _validate_release_freeze(request: control_pb2.ReleaseFreezeRequest, clients: AgencyClients, now_us: int) -> None:
    validate_token(request.hold_id, "hold_id", required=True)
    if request.amount_fen:
        validate_amount_fen(request.amount_fen, "amount_fen")


def _plan_release_freeze(request: control_pb2.ReleaseFreezeRequest, snap: Snapshot, plan: Plan) -> Planned:
    hold, holder = _on_hold(snap, request, "freeze", K.ACTION_KIND_RELEASE_FREEZE)
    return plan.planned(
        hold.agency_id, methods.BANK_RELEASE_FREEZE,
        bank_pb2.ReleaseFreezeRequest(case=plan.case_ref, freeze_id=hold.agency_hold_id, amount_fen=request.amount_fen),
        amount=request.amount_fen, asset=hold.asset_id, subject=holder,
    )


def _validate_release_seal(request: control_pb2.ReleaseSealRequest, clients: AgencyClients, now_us: int) -> None:
    validate_token(request.hold_id, "hold_id", required=True)


def _plan_release_seal(request: control_pb2.ReleaseSealRequest, snap: Snapshot, plan: Plan) -> Planned:
    hold, holder = _on_hold(snap, request, "seal", K.ACTION_KIND_RELEASE_SEAL)
    registry = vehicle_pb2 if hold.agency_kind == "vehicle" else realestate_pb2
    return plan.planned(
        hold.agency_id, methods.RELEASE_SEAL[hold.agency_kind],
        registry.ReleaseSealRequest(case=plan.case_ref, seal_id=hold.agency_hold_id),
        asset=hold.asset_id, subject=holder,
    )


# Deduct (扣划): from a freeze, or directly from the available balance


def _deduct_subject(request: control_pb2.DeductFundsRequest) -> tuple[common_pb2.Subject, str] | None:
    return (request.account.subject, "account.subject") if request.HasField("account") else None


def _validate_deduct(request: control_pb2.DeductFundsRequest, clients: AgencyClients, now_us: int) -> None:
    source = request.WhichOneof("source")
    if source is None:
        raise FieldError("source", "set hold_id (deduct from a freeze) or account (deduct directly)")
    if source == "hold_id":
        validate_token(request.hold_id, "hold_id", required=True)
    else:
        rules.agency_kind_of(clients, request.account.agency_id, "account.agency_id", ("bank",))
        validate_subject(request.account.subject, "account.subject")
        require_text(request.account.account_number, "account.account_number", 64)
    validate_amount_fen(request.amount_fen, "amount_fen")
    rules.validate_court_account(request.court_account)


def _plan_deduct(request: control_pb2.DeductFundsRequest, snap: Snapshot, plan: Plan) -> Planned:
    if request.WhichOneof("source") == "account":
        source = request.account
        subject = rules.debtor_of(snap, source.subject, "account.subject")
        rules.check_freezable(snap, request.amount_fen, "deduct")
        return plan.planned(
            source.agency_id, methods.BANK_DEDUCT,
            bank_pb2.DeductRequest(
                case=plan.case_ref, account_number=source.account_number, amount_fen=request.amount_fen,
                court_account=request.court_account, subject=subject,
            ),
            amount=request.amount_fen, claim=request.amount_fen, asset=source.account_number, subject=subject,
        )
    hold, holder = _on_hold(snap, request, "freeze", K.ACTION_KIND_DEDUCT)
    return plan.planned(
        hold.agency_id, methods.BANK_DEDUCT,
        bank_pb2.DeductRequest(
            case=plan.case_ref, freeze_id=hold.agency_hold_id, amount_fen=request.amount_fen,
            court_account=request.court_account, subject=holder,
        ),
        amount=request.amount_fen, asset=hold.asset_id, subject=holder,
    )


# Seal (查封)


def _validate_seal(request: control_pb2.SealAssetRequest, clients: AgencyClients, now_us: int) -> None:
    agency_kind = rules.agency_kind_of(clients, request.agency_id, "agency_id", ("vehicle", "realestate"))
    validate_subject(request.subject)
    require_text(request.asset_id, "asset_id", 128)
    rules.validate_expiry(request.expires_at, "expires_at", now_us, rules.STATUTORY_YEARS[agency_kind])


def _plan_seal(request: control_pb2.SealAssetRequest, snap: Snapshot, plan: Plan) -> Planned:
    agency_kind = plan.clients.by_id[request.agency_id].config.kind
    subject = rules.debtor_of(snap, request.subject, "subject")
    expires_at = plan.expiry(request.expires_at, agency_kind)
    if agency_kind == "vehicle":
        agency_request = vehicle_pb2.SealRequest(
            case=plan.case_ref, subject=subject, expires_at=expires_at, plate=request.asset_id)
    else:
        agency_request = realestate_pb2.SealRequest(
            case=plan.case_ref, subject=subject, expires_at=expires_at, certificate_number=request.asset_id)
    return plan.planned(request.agency_id, methods.SEAL[agency_kind], agency_request, asset=request.asset_id,
                        subject=subject)


# Transfer (过户) after a court sale


def _validate_transfer(request: control_pb2.TransferPropertyRequest, clients: AgencyClients, now_us: int) -> None:
    validate_token(request.hold_id, "hold_id", required=True)
    validate_subject(request.buyer, "buyer", require_name=True)
    require_text(request.ruling_number, "ruling_number", MAX_DOCUMENT_NUMBER_CHARS)
    validate_amount_fen(request.price_fen, "price_fen")


def _plan_transfer(request: control_pb2.TransferPropertyRequest, snap: Snapshot, plan: Plan) -> Planned:
    hold = rules.hold_of(snap, request.hold_id, "seal", K.ACTION_KIND_TRANSFER)
    if hold.agency_kind != "realestate":
        raise GatewayError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"hold_id: {hold.hold_id} seals a vehicle; only a sealed property is transferred (过户)",
        )
    return plan.planned(
        hold.agency_id, methods.REALESTATE_TRANSFER,
        realestate_pb2.TransferRequest(
            case=plan.case_ref, certificate_number=hold.asset_id, buyer=request.buyer,
            ruling_number=request.ruling_number, price_fen=request.price_fen,
        ),
        amount=request.price_fen, asset=hold.asset_id, subject=request.buyer,
    )


KINDS: dict[int, ActionKind] = {kind.kind: kind for kind in (
    ActionKind(
        K.ACTION_KIND_FREEZE, "fz", control_pb2.FreezeFundsRequest, "Freeze",
        (HttpRoute("/v1/freezes", "freeze", "Freeze an amount on a debtor's account (冻结)."),),
        _validate_freeze, _plan_freeze,
        subject_of=_subject, agency_of=lambda request: request.agency_id, hold_of=lambda request: "",
    ),
    ActionKind(
        K.ACTION_KIND_RENEW_FREEZE, "rf", control_pb2.RenewHoldRequest, "RenewFreeze",
        (HttpRoute("/v1/freezes/{hold_id}/renew", "renewFreeze", "Renew a freeze before it expires (续冻)."),),
        _validate_renew, _plan_renew_freeze,
    ),
    ActionKind(
        K.ACTION_KIND_RELEASE_FREEZE, "uf", control_pb2.ReleaseFreezeRequest, "ReleaseFreeze",
        (HttpRoute("/v1/freezes/{hold_id}/release", "releaseFreeze",
                   "Release a freeze, whole (amount_fen 0 or absent) or in part (解冻)."),),
        _validate_release_freeze, _plan_release_freeze,
    ),
    ActionKind(
        K.ACTION_KIND_DEDUCT, "dd", control_pb2.DeductFundsRequest, "Deduct",
        (
            HttpRoute("/v1/freezes/{hold_id}/deduct", "deductFromFreeze",
                      "Deduct from this freeze to the court's account (扣划); the rest stays frozen."),
            HttpRoute("/v1/deductions", "deduct",
                      "Deduct directly from an account's available balance (set `account`), or from a freeze"
                      " (set `hold_id`)."),
        ),
        _validate_deduct, _plan_deduct,
        subject_of=_deduct_subject,
        agency_of=lambda request: request.account.agency_id if request.HasField("account") else "",
        hold_of=lambda request: request.hold_id if request.WhichOneof("source") == "hold_id" else "",
    ),
    ActionKind(
        K.ACTION_KIND_SEAL, "sl", control_pb2.SealAssetRequest, "Seal",
        (HttpRoute("/v1/seals", "seal", "Seal a vehicle or a property (查封)."),),
        _validate_seal, _plan_seal,
        subject_of=_subject, agency_of=lambda request: request.agency_id, hold_of=lambda request: "",
    ),
    ActionKind(
        K.ACTION_KIND_RENEW_SEAL, "rs", control_pb2.RenewHoldRequest, "RenewSeal",
        (HttpRoute("/v1/seals/{hold_id}/renew", "renewSeal", "Renew a seal before it expires (续封)."),),
        _validate_renew, _plan_renew_seal,
    ),
    ActionKind(
        K.ACTION_KIND_RELEASE_SEAL, "us", control_pb2.ReleaseSealRequest, "ReleaseSeal",
        (HttpRoute("/v1/seals/{hold_id}/release", "releaseSeal", "Release a seal (解封)."),),
        _validate_release_seal, _plan_release_seal,
    ),
    ActionKind(
        K.ACTION_KIND_TRANSFER, "tr", control_pb2.TransferPropertyRequest, "Transfer",
        (HttpRoute("/v1/transfers", "transfer",
                   "Transfer a property sealed by this case to the buyer at a court sale (过户); ends every seal"
                   " on it."),),
        _validate_transfer, _plan_transfer,
    ),
)}
