"""Control actions exactly once: the one place freezes, renewals, releases,
deductions, seals and transfers go through, whichever API asked.

For each action:

1. validate the request (FieldError naming the field; nothing recorded);
2. look up its idempotency key (the caller's, else a new one): the same key
   with the same request is the same action, returned as recorded (driven
   first if still PENDING); the same key with another request is refused
   ALREADY_EXISTS;
3. check the rules against the ledger under the case's lock (the case is
   registered and handled by this court; the subject is one of its debtors;
   the hold belongs to the case; no excessive seizure) and record the
   intent, PENDING, with the agency request and the agency idempotency key
   derived from the action ID, committed before any agency is called;
4. call the agency, retrying only UNAVAILABLE and DEADLINE_EXCEEDED (a call
   that timed out may have taken effect; the same key makes the retry safe)
   within the control deadline;
5. record the outcome once: SUCCEEDED with the agency's answer and the holds
   it changed, or REFUSED with the agency's code and message. When no answer
   came, the action stays PENDING and says why; the re-driver takes it up
   again with the same key, at start-up and periodically, under a lease so
   that two gateways sharing a ledger rarely drive the same action at once
   (and, when they do, the agency's key makes it harmless).

Rule refusals at step 3 write nothing: a retry with the same key after the
situation changed (a release made room) may succeed.
"""

import asyncio
import dataclasses
import functools
import hashlib
import logging
import os
import re
import signal
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential

from protos.bank.v1 import bank_pb2
from protos.common.v1 import common_pb2
from protos.gateway.v1 import control_pb2
from protos.realestate.v1 import realestate_pb2
from protos.vehicle.v1 import vehicle_pb2
from services.common.periods import (
    BANK_FREEZE_YEARS,
    REALESTATE_SEAL_YEARS,
    VEHICLE_SEAL_YEARS,
    add_years,
)
from services.common import identifiers
from services.common.logs import mask_id
from services.common.validation import (
    MAX_DOCUMENT_NUMBER_CHARS,
    MAX_NAME_CHARS,
    FieldError,
    check_identifier,
    require_text,
    validate_amount_fen,
    validate_case,
    validate_subject,
    validate_token,
)
from services.gateway import metrics
from services.gateway.agencies import AgencyClients
from services.gateway.config import GatewaySettings
from services.gateway.ledger import (
    PENDING,
    REFUSED,
    SUCCEEDED,
    ActionRecord,
    CaseConflict,
    CaseRecord,
    CaseView,
    DebtorRecord,
    Draft,
    HoldChange,
    HoldRecord,
    HoldUpdate,
    Ledger,
    Planned,
    Snapshot,
)
from services.gateway.retry import NoTimeLeft, StopNearDeadline

logger = logging.getLogger(__name__)

K = control_pb2
FREEZE, RENEW_FREEZE, RELEASE_FREEZE, DEDUCT = (
    K.ACTION_KIND_FREEZE, K.ACTION_KIND_RENEW_FREEZE, K.ACTION_KIND_RELEASE_FREEZE, K.ACTION_KIND_DEDUCT,
)
SEAL, RENEW_SEAL, RELEASE_SEAL, TRANSFER = (
    K.ACTION_KIND_SEAL, K.ACTION_KIND_RENEW_SEAL, K.ACTION_KIND_RELEASE_SEAL, K.ACTION_KIND_TRANSFER,
)
# Action ID prefixes: an ID says what it is in a log line or a table.
_PREFIX = {
    FREEZE: "fz", RENEW_FREEZE: "rf", RELEASE_FREEZE: "uf", DEDUCT: "dd",
    SEAL: "sl", RENEW_SEAL: "rs", RELEASE_SEAL: "us", TRANSFER: "tr",
}
REQUEST_TYPES: dict[int, type[Message]] = {
    FREEZE: control_pb2.FreezeFundsRequest,
    RENEW_FREEZE: control_pb2.RenewHoldRequest,
    RELEASE_FREEZE: control_pb2.ReleaseFreezeRequest,
    DEDUCT: control_pb2.DeductFundsRequest,
    SEAL: control_pb2.SealAssetRequest,
    RENEW_SEAL: control_pb2.RenewHoldRequest,
    RELEASE_SEAL: control_pb2.ReleaseSealRequest,
    TRANSFER: control_pb2.TransferPropertyRequest,
}

ACTIVE = common_pb2.HOLD_STATE_ACTIVE
QUEUED = common_pb2.HOLD_STATE_QUEUED
LAPSED = common_pb2.HOLD_STATE_LAPSED
ENDED_STATES = (
    common_pb2.HOLD_STATE_RELEASED, common_pb2.HOLD_STATE_DEDUCTED, common_pb2.HOLD_STATE_TRANSFERRED,
)
STATUTORY_YEARS = {"bank": BANK_FREEZE_YEARS, "vehicle": VEHICLE_SEAL_YEARS, "realestate": REALESTATE_SEAL_YEARS}

# Codes by which an agency refuses: a rule, not a fault; retrying cannot help.
REFUSAL_CODES = frozenset({
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.UNIMPLEMENTED,
})
# Codes retried at once with the same key. DEADLINE_EXCEEDED may have taken
# effect: only the key makes its retry safe. Every other code (INTERNAL,
# UNKNOWN, RESOURCE_EXHAUSTED, ...) leaves the action for the re-driver.
RETRY_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
MAX_ATTEMPTS = 5
MIN_ATTEMPT_SECONDS = 0.05
RETRY_BACKOFF = wait_random_exponential(multiplier=0.05, max=1.0)
# The re-driver waits longer after each drive that got no answer, up to this.
MAX_REDRIVE_BACKOFF_S = 300.0
REDRIVE_BATCH = 100


class ControlError(Exception):
    """A request refused with a gRPC code: by the gateway's rules, a key
    conflict, or the agency (then `action` is the recorded REFUSED action)."""

    def __init__(self, code: grpc.StatusCode, message: str, *, action: ActionRecord | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.action = action


@dataclass(frozen=True)
class AgencyMethod:
    path: str
    request_type: type[Message]
    response_type: type[Message]


_SERVICES = {
    "bank": "chakong.bank.v1.Bank",
    "vehicle": "chakong.vehicle.v1.VehicleRegistry",
    "realestate": "chakong.realestate.v1.RealEstateRegistry",
}


def _methods() -> dict[str, AgencyMethod]:
    table = {
        "bank.Freeze": (bank_pb2.FreezeRequest, bank_pb2.AccountFreeze),
        "bank.RenewFreeze": (bank_pb2.RenewFreezeRequest, bank_pb2.AccountFreeze),
        "bank.ReleaseFreeze": (bank_pb2.ReleaseFreezeRequest, bank_pb2.AccountFreeze),
        "bank.Deduct": (bank_pb2.DeductRequest, bank_pb2.Deduction),
        "vehicle.Seal": (vehicle_pb2.SealRequest, common_pb2.Seal),
        "vehicle.RenewSeal": (vehicle_pb2.RenewSealRequest, common_pb2.Seal),
        "vehicle.ReleaseSeal": (vehicle_pb2.ReleaseSealRequest, common_pb2.Seal),
        "realestate.Seal": (realestate_pb2.SealRequest, common_pb2.Seal),
        "realestate.RenewSeal": (realestate_pb2.RenewSealRequest, common_pb2.Seal),
        "realestate.ReleaseSeal": (realestate_pb2.ReleaseSealRequest, common_pb2.Seal),
        "realestate.Transfer": (realestate_pb2.TransferRequest, realestate_pb2.PropertyTransfer),
    }
    return {
        name: AgencyMethod(f"/{_SERVICES[name.split('.')[0]]}/{name.split('.')[1]}", request, response)
        for name, (request, response) in table.items()
    }


AGENCY_METHODS = _methods()
# Where each agency answer goes in Action.result.
_RESULT_FIELD = {
    bank_pb2.AccountFreeze: "freeze",
    bank_pb2.Deduction: "deduction",
    common_pb2.Seal: "seal",
    realestate_pb2.PropertyTransfer: "transfer",
}


# Helpers


def kind_label(kind: int) -> str:
    return control_pb2.ActionKind.Name(kind).removeprefix("ACTION_KIND_").lower()


def state_label(state: int) -> str:
    return control_pb2.ActionState.Name(state).removeprefix("ACTION_STATE_")


def hold_state_label(state: int) -> str:
    return common_pb2.HoldState.Name(state).removeprefix("HOLD_STATE_")


def normal_case_number(value: str) -> str:
    """Courts write case numbers with ASCII or full-width brackets: one case."""
    return value.strip().replace("（", "(").replace("）", ")")


def timestamp(us: int) -> Timestamp:
    return Timestamp(seconds=us // 1_000_000, nanos=(us % 1_000_000) * 1000)


def timestamp_us(ts: Timestamp) -> int:
    return ts.seconds * 1_000_000 + ts.nanos // 1000


def to_json(message: Message) -> str:
    return json_format.MessageToJson(
        message, preserving_proto_field_name=True, indent=None, ensure_ascii=False
    )


def request_digest(kind: int, request: Message) -> str:
    """What makes two requests "the same action": the kind and every field but the key."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("idempotency_key")
    return hashlib.sha256(bytes([kind]) + copy.SerializeToString(deterministic=True)).hexdigest()


def now_us() -> int:
    """Microseconds since the epoch: the ledger's clock."""
    return time.time_ns() // 1000


class CrashPoint:
    """CHAKONG_CRASH_AT, for tests only: SIGKILL this process the first time
    it reaches the named point, to prove that a crash between intent and
    outcome loses and doubles nothing. Never set it in production."""

    def __init__(self, point: str):
        self.point = point
        if point:
            logger.critical(
                "TEST ONLY: CHAKONG_CRASH_AT=%s: this gateway will kill itself (SIGKILL) at %s of its first"
                " action. Never set this outside tests.", point, point,
            )

    def __call__(self, name: str, action_id: str) -> None:
        if name == self.point:
            logger.critical("TEST ONLY: CHAKONG_CRASH_AT=%s reached for action %s: SIGKILL now", name, action_id)
            for handler in logging.getLogger().handlers:
                handler.flush()
            os.kill(os.getpid(), signal.SIGKILL)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in RETRY_CODES


@dataclass(frozen=True)
class Submitted:
    """An action as the caller gets it back; `replayed` when the key was known."""

    action: ActionRecord
    replayed: bool


# Validation: the request's shape, before anything is looked up.


def _validate_expiry(ts: Timestamp, field: str, now_us: int, years: int | None) -> None:
    if not ts.seconds and not ts.nanos:
        return
    at = timestamp_us(ts)
    if at <= now_us:
        raise FieldError(field, "must be in the future")
    if years is not None and at > add_years(now_us, years):
        raise FieldError(field, f"must be at most {years} year(s) from now (statutory maximum)")


def _validate_court_account(account: bank_pb2.CourtAccount) -> None:
    for name in ("bank_name", "account_number", "account_name"):
        require_text(getattr(account, name), f"court_account.{name}", MAX_NAME_CHARS)


class ControlService:
    """Runs control actions against the ledger and the agencies; shared by
    the gRPC and HTTP APIs. `start()` begins re-driving, `close()` stops it."""

    def __init__(
        self,
        ledger: Ledger,
        clients: AgencyClients,
        settings: GatewaySettings,
        *,
        now_us: Callable[[], int] = now_us,
    ):
        self.ledger = ledger
        self.clients = clients
        self.settings = settings
        self.now_us = now_us
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_us = int(settings.lease_seconds * 1_000_000)
        self.deadline_s = settings.control_deadline_ms / 1000
        self.attempt_timeout_s = settings.control_attempt_timeout_ms / 1000
        self.crash = CrashPoint(settings.crash_at)
        # One drive per action in this process; callers of the same action share it.
        self._driving: dict[str, asyncio.Task] = {}
        self._redriver: asyncio.Task | None = None
        self._calls: dict[tuple[str, str], tuple[grpc.aio.Channel, Callable]] = {}

    # Life cycle

    async def start(self) -> None:
        self._redriver = asyncio.create_task(self._redrive_loop(), name="ledger re-driver")

    async def close(self) -> None:
        if self._redriver is not None:
            self._redriver.cancel()
            await asyncio.gather(self._redriver, return_exceptions=True)
            self._redriver = None
        drives = list(self._driving.values())
        if drives:
            # Whatever has not finished stays PENDING; another gateway (or
            # this one, restarted) drives it again with the same key.
            _, unfinished = await asyncio.wait(drives, timeout=self.settings.grace_seconds)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        try:
            released = await self.ledger.release_leases(self.owner)
            if released:
                logger.info("handed %d pending action(s) back for re-driving", released)
        except Exception:
            logger.warning("could not release this gateway's leases; they run out by themselves", exc_info=True)

    # Cases

    async def register_case(self, request: control_pb2.RegisterCaseRequest) -> tuple[control_pb2.Case, bool]:
        validate_case(request.case)
        if not request.debtors:
            raise FieldError("debtors", "at least one debtor is required")
        seen: set[str] = set()
        for i, debtor in enumerate(request.debtors):
            validate_subject(debtor, f"debtors[{i}]")
            if debtor.id_number in seen:
                raise FieldError(f"debtors[{i}].id_number", "is listed twice")
            seen.add(debtor.id_number)
        validate_amount_fen(request.amount_owed_fen, "amount_owed_fen")
        if request.costs_fen:
            validate_amount_fen(request.costs_fen, "costs_fen")
        executor_ids = validate_executor_ids(request.executor_ids, request.case.executor_id)
        case_number = normal_case_number(request.case.case_number)
        debtors = [
            DebtorRecord(i, d.type, d.id_number, d.name) for i, d in enumerate(request.debtors)
        ]
        content = "\n".join([
            request.case.court_code, str(request.amount_owed_fen), str(request.costs_fen),
            *sorted(f"{d.subject_type}:{d.id_number}:{d.name}" for d in debtors),
            # Only when named, so cases registered before executor_ids keep their digest.
            *([f"executors:{','.join(sorted(executor_ids))}"] if request.executor_ids else []),
        ])
        record = CaseRecord(
            case_number=case_number,
            court_code=request.case.court_code,
            executor_id=request.case.executor_id,
            document_number=request.case.document_number,
            amount_owed_fen=request.amount_owed_fen,
            costs_fen=request.costs_fen,
            content_digest=hashlib.sha256(content.encode()).hexdigest(),
            registered_at_us=self.now_us(),
            executor_ids=",".join(executor_ids),
        )
        try:
            _, created = await self.ledger.register_case(record, debtors)
        except CaseConflict as exc:
            raise ControlError(
                grpc.StatusCode.ALREADY_EXISTS,
                f"case {case_number} is already registered (court {exc.existing.court_code}) with other debtors"
                " or amounts; see GET /v1/cases/{case_number}",
            ) from None
        logger.info(
            "case %s %s: court %s, %d debtor(s), owed %d fen + costs %d fen",
            case_number, "registered" if created else "already registered", record.court_code, len(debtors),
            record.amount_owed_fen, record.costs_fen,
        )
        return await self.get_case(case_number), created

    async def get_case(self, case_number: str) -> control_pb2.Case:
        case_number = normal_case_number(case_number)
        check_identifier(identifiers.check_case_number, case_number, "case_number")
        view = await self.ledger.case_view(case_number, self.now_us())
        if view is None:
            raise ControlError(grpc.StatusCode.NOT_FOUND, f"case_number: case {case_number} is not registered")
        return case_message(view, self.now_us())

    # Actions

    async def submit(self, kind: int, request: Message) -> Submitted:
        """Run one action exactly once per idempotency key; see the module docstring."""
        label = kind_label(kind)
        now_us = self.now_us()
        try:
            self._validate(kind, request, now_us)
        except (FieldError, ControlError):
            metrics.ACTIONS.labels(label, "rejected").inc()
            raise
        key = request.idempotency_key or uuid.uuid4().hex
        digest = request_digest(kind, request)
        existing = await self.ledger.action_by_key(key)
        if existing is None:
            action_id = f"{_PREFIX[kind]}-{uuid.uuid4().hex[:24]}"
            draft = Draft(
                action_id=action_id,
                idempotency_key=key,
                request_digest=digest,
                kind=kind,
                case_number=normal_case_number(request.case.case_number),
                court_code=request.case.court_code,
                executor_id=request.case.executor_id,
                document_number=request.case.document_number,
                hold_id=self._hold_id(kind, request),
            )
            try:
                record, created = await self.ledger.record_intent(
                    draft, functools.partial(self._plan, kind, request, action_id), now_us=now_us,
                    lease_owner=self.owner, lease_until_us=now_us + self.lease_us,
                )
            except ControlError as exc:
                metrics.ACTIONS.labels(label, "rejected").inc()
                logger.info("%s refused by the gateway (%s): %s", label, exc.code.name, exc.message,
                            extra={"case_number": draft.case_number, "idempotency_key": key})
                raise
            if created:
                logger.info(
                    "action %s (%s) recorded PENDING for case %s at %s; key %s", record.action_id, label,
                    record.case_number, record.agency_id, key,
                    extra={"action_id": record.action_id, "case_number": record.case_number},
                )
                self.crash("after_intent", record.action_id)
                return self._answer(await self.drive(record, leased=True), replayed=False)
            existing = record
        if existing.request_digest != digest:
            raise ControlError(
                grpc.StatusCode.ALREADY_EXISTS,
                f"idempotency_key: {key} was already used for another request ({kind_label(existing.kind)}"
                f" action {existing.action_id}); use a new key for a new request",
            )
        if existing.state == PENDING:
            existing = await self.drive(existing, leased=False)
        return self._answer(existing, replayed=True)

    def _answer(self, record: ActionRecord, *, replayed: bool) -> Submitted:
        if record.state == REFUSED:
            raise ControlError(grpc.StatusCode[record.error_code], record.error_message, action=record)
        return Submitted(record, replayed)

    def _hold_id(self, kind: int, request: Message) -> str:
        if kind == DEDUCT:
            return request.hold_id if request.WhichOneof("source") == "hold_id" else ""
        return getattr(request, "hold_id", "")

    def _validate(self, kind: int, request: Message, now_us: int) -> None:
        validate_token(request.idempotency_key, "idempotency_key", required=False)
        validate_case(request.case)
        if kind == FREEZE:
            self._agency_of(request.agency_id, "agency_id", ("bank",))
            validate_subject(request.subject)
            require_text(request.account_number, "account_number", 64)
            validate_amount_fen(request.amount_fen, "amount_fen")
            _validate_expiry(request.expires_at, "expires_at", now_us, BANK_FREEZE_YEARS)
        elif kind in (RENEW_FREEZE, RENEW_SEAL):
            validate_token(request.hold_id, "hold_id", required=True)
            _validate_expiry(request.expires_at, "expires_at", now_us, None)
        elif kind == RELEASE_FREEZE:
            validate_token(request.hold_id, "hold_id", required=True)
            if request.amount_fen:
                validate_amount_fen(request.amount_fen, "amount_fen")
        elif kind == DEDUCT:
            source = request.WhichOneof("source")
            if source is None:
                raise FieldError("source", "set hold_id (deduct from a freeze) or account (deduct directly)")
            if source == "hold_id":
                validate_token(request.hold_id, "hold_id", required=True)
            else:
                self._agency_of(request.account.agency_id, "account.agency_id", ("bank",))
                validate_subject(request.account.subject, "account.subject")
                require_text(request.account.account_number, "account.account_number", 64)
            validate_amount_fen(request.amount_fen, "amount_fen")
            _validate_court_account(request.court_account)
        elif kind == SEAL:
            agency_kind = self._agency_of(request.agency_id, "agency_id", ("vehicle", "realestate"))
            validate_subject(request.subject)
            require_text(request.asset_id, "asset_id", 128)
            _validate_expiry(request.expires_at, "expires_at", now_us, STATUTORY_YEARS[agency_kind])
        elif kind == RELEASE_SEAL:
            validate_token(request.hold_id, "hold_id", required=True)
        elif kind == TRANSFER:
            validate_token(request.hold_id, "hold_id", required=True)
            validate_subject(request.buyer, "buyer", require_name=True)
            require_text(request.ruling_number, "ruling_number", MAX_DOCUMENT_NUMBER_CHARS)
            validate_amount_fen(request.price_fen, "price_fen")

    def _agency_of(self, agency_id: str, field: str, kinds: tuple[str, ...]) -> str:
        if not agency_id:
            raise FieldError(field, "is required")
        client = self.clients.by_id.get(agency_id)
        if client is None:
            # Not INVALID_ARGUMENT: the request is well formed, the agency unknown here.
            raise ControlError(grpc.StatusCode.NOT_FOUND, f'{field}: unknown agency "{agency_id}"; see GET /v1/agencies')
        if client.config.kind not in kinds:
            raise FieldError(field, f'"{agency_id}" is a {client.config.kind} agency; expected {" or ".join(kinds)}')
        return client.config.kind

    # Rules, checked under the case's lock (see Ledger.record_intent)

    def _plan(self, kind: int, request: Message, action_id: str, snap: Snapshot) -> Planned:
        case = self._case_for(request.case, snap)
        key = f"gw.{action_id}"
        case_ref = common_pb2.CaseRef(
            case_number=case.case_number, court_code=case.court_code,
            executor_id=request.case.executor_id, document_number=request.case.document_number,
        )
        now_us = snap.now_us

        def planned(agency_id, method, agency_request, *, amount=0, claim=0, asset="", subject=None):
            agency_request.idempotency_key = key
            subject = subject or common_pb2.Subject()
            return Planned(
                agency_id=agency_id, amount_fen=amount, claim_fen=claim, asset_id=asset,
                subject_type=subject.type, subject_id=subject.id_number, subject_name=subject.name,
                agency_method=method, agency_request=to_json(agency_request), agency_key=key,
            )

        def expiry(ts: Timestamp, agency_kind: str) -> Timestamp:
            if ts.seconds or ts.nanos:
                return ts
            return timestamp(add_years(now_us, STATUTORY_YEARS[agency_kind]))

        if kind == FREEZE:
            subject = _debtor(snap, request.subject, "subject")
            _check_freezable(snap, request.amount_fen, "freeze")
            return planned(
                request.agency_id, "bank.Freeze",
                bank_pb2.FreezeRequest(
                    case=case_ref, subject=subject, account_number=request.account_number,
                    amount_fen=request.amount_fen, expires_at=expiry(request.expires_at, "bank"),
                ),
                amount=request.amount_fen, claim=request.amount_fen, asset=request.account_number, subject=subject,
            )
        if kind == DEDUCT and request.WhichOneof("source") == "account":
            source = request.account
            subject = _debtor(snap, source.subject, "account.subject")
            _check_freezable(snap, request.amount_fen, "deduct")
            return planned(
                source.agency_id, "bank.Deduct",
                bank_pb2.DeductRequest(
                    case=case_ref, account_number=source.account_number, amount_fen=request.amount_fen,
                    court_account=request.court_account, subject=subject,
                ),
                amount=request.amount_fen, claim=request.amount_fen, asset=source.account_number, subject=subject,
            )
        if kind == SEAL:
            agency_kind = self.clients.by_id[request.agency_id].config.kind
            subject = _debtor(snap, request.subject, "subject")
            cls = vehicle_pb2.SealRequest if agency_kind == "vehicle" else realestate_pb2.SealRequest
            agency_request = cls(case=case_ref, subject=subject, expires_at=expiry(request.expires_at, agency_kind))
            setattr(agency_request, "plate" if agency_kind == "vehicle" else "certificate_number", request.asset_id)
            return planned(
                request.agency_id, f"{agency_kind}.Seal", agency_request, asset=request.asset_id, subject=subject
            )

        # The rest act on a hold this case placed.
        want = "freeze" if kind in (RENEW_FREEZE, RELEASE_FREEZE, DEDUCT) else "seal"
        hold = _hold_of(snap, request.hold_id, want, kind)
        holder = common_pb2.Subject(type=hold.subject_type, id_number=hold.subject_id, name=hold.subject_name)

        def on_hold(method, agency_request, **extra):
            return planned(hold.agency_id, f"{hold.agency_kind}.{method}", agency_request, asset=hold.asset_id,
                           **{"subject": holder, **extra})

        if kind == RENEW_FREEZE:
            return on_hold("RenewFreeze", bank_pb2.RenewFreezeRequest(
                case=case_ref, freeze_id=hold.agency_hold_id, expires_at=expiry(request.expires_at, "bank")))
        if kind == RELEASE_FREEZE:
            return on_hold("ReleaseFreeze", bank_pb2.ReleaseFreezeRequest(
                case=case_ref, freeze_id=hold.agency_hold_id, amount_fen=request.amount_fen),
                amount=request.amount_fen)
        if kind == DEDUCT:
            return on_hold("Deduct", bank_pb2.DeductRequest(
                case=case_ref, freeze_id=hold.agency_hold_id, amount_fen=request.amount_fen,
                court_account=request.court_account, subject=holder), amount=request.amount_fen)
        registry = vehicle_pb2 if hold.agency_kind == "vehicle" else realestate_pb2
        if kind == RENEW_SEAL:
            return on_hold("RenewSeal", registry.RenewSealRequest(
                case=case_ref, seal_id=hold.agency_hold_id, expires_at=expiry(request.expires_at, hold.agency_kind)))
        if kind == RELEASE_SEAL:
            return on_hold("ReleaseSeal", registry.ReleaseSealRequest(case=case_ref, seal_id=hold.agency_hold_id))
        # TRANSFER
        if hold.agency_kind != "realestate":
            raise ControlError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"hold_id: {hold.hold_id} seals a vehicle; only a sealed property is transferred (过户)",
            )
        return planned(
            hold.agency_id, "realestate.Transfer",
            realestate_pb2.TransferRequest(
                case=case_ref, certificate_number=hold.asset_id, buyer=request.buyer,
                ruling_number=request.ruling_number, price_fen=request.price_fen,
            ),
            amount=request.price_fen, asset=hold.asset_id, subject=request.buyer,
        )

    def _case_for(self, case_ref: common_pb2.CaseRef, snap: Snapshot) -> CaseRecord:
        case = snap.case
        number = normal_case_number(case_ref.case_number)
        if case is None:
            raise ControlError(
                grpc.StatusCode.NOT_FOUND,
                f"case.case_number: case {number} is not registered; register it with its debtors and the"
                " amount owed first (POST /v1/cases, `chakong case register`)",
            )
        if case.court_code != case_ref.court_code:
            raise ControlError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"case.court_code: case {number} is handled by court {case.court_code}, not {case_ref.court_code}",
            )
        return case

    # Driving: call the agency until it answers, record the outcome once

    async def drive(self, record: ActionRecord, *, leased: bool) -> ActionRecord:
        """Drive a PENDING action, join the drive of it already running here,
        or wait for whoever holds its lease; the drive survives the caller
        going away. `leased`: this gateway holds the lease already.

        Only a lease holder registers a drive, so a caller that is merely
        waiting is never mistaken for the driver."""
        task = self._driving.get(record.action_id)
        if task is None and not leased:
            now_us = self.now_us()
            claimed = await self.ledger.claim(
                record.action_id, owner=self.owner, now_us=now_us, lease_until_us=now_us + self.lease_us,
                unowned_ok=True,
            )
            task = self._driving.get(record.action_id)
            if task is None:
                if claimed is None:
                    return await self._wait_for_outcome(record)
                record = claimed
        if task is None:
            task = asyncio.create_task(self._drive(record), name=f"drive {record.action_id}")
            self._driving[record.action_id] = task
            task.add_done_callback(lambda _, action_id=record.action_id: self._driving.pop(action_id, None))
        return await asyncio.shield(task)

    async def _drive(self, record: ActionRecord) -> ActionRecord:
        """Call the agency until it answers; record the outcome. Holds the lease."""
        label = kind_label(record.kind)
        method = AGENCY_METHODS[record.agency_method]
        client = self.clients.by_id.get(record.agency_id)
        if client is None:
            return await self._still_pending(
                record, 0, "UNAVAILABLE", f"agency {record.agency_id} is not in the agency registry"
            )
        if client.health.ejected:
            # PENDING, not REFUSED: the agency has not seen the call; the re-driver makes it later.
            return await self._still_pending(record, 0, "UNAVAILABLE", client.health.refusal())
        request = json_format.Parse(record.agency_request, method.request_type())
        call = self._call(record.agency_id, method, client.channel)
        call_metrics = metrics.agency_call_metrics(record.agency_id, record.agency_method.split(".")[1])
        deadline = time.monotonic() + self.deadline_s
        attempts = 0

        async def attempt():
            nonlocal attempts
            timeout = min(self.attempt_timeout_s, deadline - time.monotonic())
            if timeout < MIN_ATTEMPT_SECONDS:
                raise NoTimeLeft
            attempts += 1
            outcome = "UNKNOWN"
            call_metrics.in_flight.inc()
            start = time.perf_counter()
            try:
                # wait_for_ready: a channel reconnecting after a reset waits
                # (within the timeout) instead of failing the attempt at once.
                response = await call(
                    request, timeout=timeout, metadata=(("x-request-id", record.action_id),), wait_for_ready=True
                )
                outcome = "OK"
                return response
            except grpc.aio.AioRpcError as exc:
                outcome = exc.code().name
                if exc.code() in RETRY_CODES:
                    logger.info("action %s: %s attempt %d: %s %s; retrying with the same key",
                                record.action_id, record.agency_id, record.attempts + attempts,
                                exc.code().name, exc.details())
                raise
            finally:
                call_metrics.in_flight.dec()
                call_metrics.seconds.observe(time.perf_counter() - start)
                call_metrics.outcome(outcome).inc()
                client.health.record(outcome)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(MAX_ATTEMPTS) | StopNearDeadline(deadline, MIN_ATTEMPT_SECONDS),
            wait=RETRY_BACKOFF,
            retry=retry_if_exception(_retryable),
            reraise=True,
        )
        try:
            response = await retrying(attempt)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code not in REFUSAL_CODES:
                return await self._still_pending(record, attempts, code.name, exc.details() or "")
            self.crash("after_agency_call", record.action_id)
            done = await self.ledger.record_outcome(
                record, state=REFUSED, result="", error_code=code.name, error_message=exc.details() or "",
                attempts=attempts, now_us=self.now_us(),
            )
            if done is not None:
                metrics.ACTIONS.labels(label, "refused").inc()
                logger.info("action %s (%s) REFUSED by %s: %s %s", record.action_id, label, record.agency_id,
                            code.name, exc.details(), extra={"action_id": record.action_id})
        except NoTimeLeft:
            return await self._still_pending(
                record, attempts, "DEADLINE_EXCEEDED", f"no answer within the control deadline of {self.deadline_s:g} s"
            )
        else:
            self.crash("after_agency_call", record.action_id)
            done = await self.ledger.record_outcome(
                record, state=SUCCEEDED, result=to_json(response), error_code="", error_message="",
                attempts=attempts, now_us=self.now_us(), change=hold_change(record, response, self.clients),
            )
            if done is not None:
                metrics.ACTIONS.labels(label, "succeeded").inc()
                _count_money(record, response)
                logger.info("action %s (%s) SUCCEEDED at %s after %d attempt(s)", record.action_id, label,
                            record.agency_id, record.attempts + attempts, extra={"action_id": record.action_id})
        self.crash("after_outcome", record.action_id)
        # None: another driver recorded it first; the ledger has the one outcome.
        return done if done is not None else await self.ledger.action(record.action_id)

    def _call(self, agency_id: str, method: AgencyMethod, channel: grpc.aio.Channel):
        key = (agency_id, method.path)
        cached = self._calls.get(key)
        # A registry reload may have given the agency a new channel.
        if cached is not None and cached[0] is channel:
            return cached[1]
        call = channel.unary_unary(
            method.path,
            request_serializer=method.request_type.SerializeToString,
            response_deserializer=method.response_type.FromString,
            _registered_method=True,
        )
        self._calls[key] = (channel, call)
        return call

    async def _still_pending(self, record: ActionRecord, attempts: int, code: str, message: str) -> ActionRecord:
        total = record.attempts + attempts
        backoff_s = min(MAX_REDRIVE_BACKOFF_S, self.settings.redrive_interval_seconds * 2 ** min(total, 16))
        now_us = self.now_us()
        await self.ledger.record_failure(
            record, owner=self.owner, error_code=code, error_message=message, attempts=attempts,
            retry_at_us=now_us + int(backoff_s * 1_000_000), now_us=now_us,
        )
        metrics.ACTIONS.labels(kind_label(record.kind), "pending").inc()
        logger.warning(
            "action %s (%s) still PENDING after %d attempt(s): %s %s; re-driven in %.1f s with the same key",
            record.action_id, kind_label(record.kind), total, code, message, backoff_s,
            extra={"action_id": record.action_id},
        )
        return await self.ledger.action(record.action_id) or record

    async def _wait_for_outcome(self, record: ActionRecord) -> ActionRecord:
        """Another gateway is driving it: wait for its outcome, within the control deadline."""
        deadline = time.monotonic() + self.deadline_s
        while True:
            current = await self.ledger.action(record.action_id)
            if current is None or current.state != PENDING or time.monotonic() > deadline:
                return current or record
            await asyncio.sleep(0.05)

    # Re-driving what a crash or an outage left PENDING

    async def _redrive_loop(self) -> None:
        while True:
            try:
                await self.redrive_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("re-driver: sweep failed; trying again in %.1f s",
                               self.settings.redrive_interval_seconds, exc_info=True)
            await asyncio.sleep(self.settings.redrive_interval_seconds)

    async def redrive_once(self) -> int:
        """Drive every PENDING action whose lease or retry wait is over; returns how many."""
        now_us = self.now_us()
        due = await self.ledger.due_actions(now_us, REDRIVE_BATCH)
        tasks = []
        for record in due:
            if record.action_id in self._driving:
                continue
            claimed = await self.ledger.claim(
                record.action_id, owner=self.owner, now_us=now_us, lease_until_us=now_us + self.lease_us,
                unowned_ok=False,
            )
            if claimed is None:
                continue
            logger.info(
                "re-driving action %s (%s, case %s, %d attempt(s) so far) with key %s",
                claimed.action_id, kind_label(claimed.kind), claimed.case_number, claimed.attempts,
                claimed.agency_key, extra={"action_id": claimed.action_id},
            )
            # Started now, not at the gather: registered as driving at once.
            tasks.append(asyncio.ensure_future(self.drive(claimed, leased=True)))
        if tasks:
            for result in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(result, BaseException):
                    logger.warning("re-driver: a drive failed: %r", result)
        metrics.ACTIONS_PENDING.set(await self.ledger.pending_count())
        return len(tasks)


# Rule checks (pure: they read the snapshot and raise ControlError)


def _debtor(snap: Snapshot, subject: common_pb2.Subject, field: str) -> common_pb2.Subject:
    """The subject as one of the case's debtors, with the registered name
    filled in when the request left it out."""
    debtor = next((d for d in snap.debtors if d.id_number == subject.id_number), None)
    if debtor is None:
        raise ControlError(
            grpc.StatusCode.PERMISSION_DENIED,
            f"{field}.id_number: {mask_id(subject.id_number)} is not a debtor of case {snap.case.case_number};"
            " a court may act only on its case's debtors' assets",
        )
    if debtor.subject_type != subject.type:
        raise ControlError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"{field}.type: the case registers this debtor as {common_pb2.SubjectType.Name(debtor.subject_type)}",
        )
    if subject.name and debtor.name and subject.name != debtor.name:
        raise ControlError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"{field}.name: does not match the name registered for this debtor in case {snap.case.case_number}",
        )
    name = subject.name or debtor.name
    if not name:
        raise ControlError(
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


def freezable_fen(case: CaseRecord, totals) -> int:
    """What the case may still freeze: owed + costs − deducted − frozen
    (active, queued and pending), never below 0."""
    return max(0, case.amount_owed_fen + case.costs_fen - totals.deducted_fen - totals.frozen_fen)


def _check_freezable(snap: Snapshot, amount_fen: int, verb: str) -> None:
    case, totals = snap.case, snap.totals
    room = freezable_fen(case, totals)
    if amount_fen > room:
        raise ControlError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"amount_fen: case {case.case_number} may freeze at most {room} fen more; to {verb} {amount_fen} fen"
            f" would be excessive seizure (owed {case.amount_owed_fen} + costs {case.costs_fen}"
            f" − deducted {totals.deducted_fen} − frozen, queued or pending {totals.frozen_fen}"
            f" = {room} fen)",
        )


def _hold_of(snap: Snapshot, hold_id: str, want: str, kind: int) -> HoldRecord:
    hold = snap.hold
    case_number = snap.case.case_number
    verb = kind_label(kind).split("_")[0]
    if hold is None:
        placed = snap.hold_action
        if placed is not None and placed.kind in (FREEZE, SEAL) and placed.case_number == case_number:
            if placed.state == PENDING:
                raise ControlError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"hold_id: {hold_id} is not confirmed by {placed.agency_id} yet (PENDING); try again when it is",
                )
            raise ControlError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"hold_id: {hold_id} was refused by {placed.agency_id} ({placed.error_code}) and holds nothing",
            )
        raise ControlError(grpc.StatusCode.NOT_FOUND, f"hold_id: no freeze or seal {hold_id} in the ledger")
    if hold.case_number != case_number:
        raise ControlError(
            grpc.StatusCode.PERMISSION_DENIED,
            f"hold_id: {hold_id} was placed for case {hold.case_number}; act on it under that case",
        )
    if hold.hold_kind != want:
        raise ControlError(
            grpc.StatusCode.FAILED_PRECONDITION, f"hold_id: {hold_id} is a {hold.hold_kind}, not a {want}"
        )
    if hold.state in ENDED_STATES:
        raise ControlError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"hold_id: {hold_id} has ended ({hold_state_label(hold.state)}); nothing left to {verb}",
        )
    return hold


# Outcomes: how an agency's answer changes the holds


def hold_change(record: ActionRecord, response: Message, clients: AgencyClients) -> HoldChange | None:
    if isinstance(response, bank_pb2.Deduction):
        # A direct deduction's freeze ended at once; it is no hold of ours.
        return HoldChange(update=_freeze_update(record.hold_id, response.freeze)) if record.hold_id else None
    if isinstance(response, realestate_pb2.PropertyTransfer):
        return HoldChange(transferred=(record.agency_id, tuple(response.ended_seal_ids)))
    if record.kind in (FREEZE, SEAL):
        client = clients.by_id.get(record.agency_id)
        agency_kind = client.config.kind if client else record.agency_method.split(".")[0]
        update = (
            _freeze_update(record.action_id, response) if record.kind == FREEZE
            else _seal_update(record.action_id, response)
        )
        return HoldChange(insert=HoldRecord(
            hold_id=record.action_id, case_number=record.case_number,
            hold_kind="freeze" if record.kind == FREEZE else "seal", agency_id=record.agency_id,
            agency_kind=agency_kind,
            agency_hold_id=response.freeze_id if record.kind == FREEZE else response.seal_id,
            asset_id=record.asset_id, subject_type=record.subject_type, subject_id=record.subject_id,
            subject_name=record.subject_name, created_at_us=record.created_at_us,
            updated_at_us=record.created_at_us,
            **{f.name: getattr(update, f.name) for f in dataclasses.fields(HoldUpdate) if f.name != "hold_id"},
        ))
    if isinstance(response, bank_pb2.AccountFreeze):
        return HoldChange(update=_freeze_update(record.hold_id, response))
    return HoldChange(update=_seal_update(record.hold_id, response))


def _freeze_update(hold_id: str, freeze: bank_pb2.AccountFreeze) -> HoldUpdate:
    return HoldUpdate(
        hold_id=hold_id, state=freeze.state, requested_fen=freeze.requested_fen, frozen_fen=freeze.frozen_fen,
        deducted_fen=freeze.deducted_fen, shortfall_fen=freeze.shortfall_fen,
        expires_at_us=timestamp_us(freeze.expires_at), detail=to_json(freeze),
    )


def _seal_update(hold_id: str, seal: common_pb2.Seal) -> HoldUpdate:
    return HoldUpdate(
        hold_id=hold_id, state=seal.state, requested_fen=0, frozen_fen=0, deducted_fen=0, shortfall_fen=0,
        expires_at_us=timestamp_us(seal.expires_at), detail=to_json(seal),
    )


def _count_money(record: ActionRecord, response: Message) -> None:
    if record.kind == FREEZE:
        metrics.FROZEN_FEN.inc(response.frozen_fen)
    elif record.kind == DEDUCT:
        metrics.DEDUCTED_FEN.inc(response.amount_fen)


# Messages for the APIs


def action_message(record: ActionRecord) -> control_pb2.Action:
    action = control_pb2.Action(
        action_id=record.action_id,
        idempotency_key=record.idempotency_key,
        kind=record.kind,
        state=record.state,
        case_number=record.case_number,
        court_code=record.court_code,
        executor_id=record.executor_id,
        agency_id=record.agency_id,
        # A freeze or seal is the hold it placed.
        hold_id=record.hold_id or (record.action_id if record.kind in (FREEZE, SEAL) and record.state == SUCCEEDED
                                   else ""),
        amount_fen=record.amount_fen,
        attempts=record.attempts,
        error_code=record.error_code,
        error_message=record.error_message,
        created_at=timestamp(record.created_at_us),
        updated_at=timestamp(record.updated_at_us),
    )
    if record.result:
        method = AGENCY_METHODS[record.agency_method]
        result = json_format.Parse(record.result, method.response_type())
        getattr(action, _RESULT_FIELD[method.response_type]).CopyFrom(result)
    return action


def hold_message(hold: HoldRecord, now_us: int) -> control_pb2.Hold:
    message = control_pb2.Hold(
        hold_id=hold.hold_id, agency_id=hold.agency_id, asset_id=hold.asset_id,
        subject=common_pb2.Subject(type=hold.subject_type, id_number=hold.subject_id, name=hold.subject_name),
    )
    detail = message.freeze if hold.hold_kind == "freeze" else message.seal
    json_format.Parse(hold.detail, detail)
    # The ledger's state wins over the stored answer (a transfer ends other
    # seals); an active hold past its expiry has lapsed at the agency.
    detail.state = hold.state
    if hold.state == ACTIVE and hold.expires_at_us and hold.expires_at_us <= now_us:
        detail.state = LAPSED
        detail.ended_at.CopyFrom(timestamp(hold.expires_at_us))
        if hold.hold_kind == "freeze":
            detail.frozen_fen = 0
    return message


def case_message(view: CaseView, now_us: int) -> control_pb2.Case:
    case = view.case
    return control_pb2.Case(
        case=common_pb2.CaseRef(
            case_number=case.case_number, court_code=case.court_code, executor_id=case.executor_id,
            document_number=case.document_number,
        ),
        debtors=[common_pb2.Subject(type=d.subject_type, id_number=d.id_number, name=d.name) for d in view.debtors],
        amount_owed_fen=case.amount_owed_fen,
        costs_fen=case.costs_fen,
        frozen_fen=view.totals.frozen_fen,
        deducted_fen=view.totals.deducted_fen,
        freezable_fen=freezable_fen(case, view.totals),
        holds=[hold_message(h, now_us) for h in view.holds],
        actions=[action_message(a) for a in view.actions],
        registered_at=timestamp(case.registered_at_us),
        executor_ids=case.assigned_executors,
    )
