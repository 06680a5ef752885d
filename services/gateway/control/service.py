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
4. drive it (driver.py): call the agency, record the outcome once, or leave
   it PENDING for the re-driver.

Rule refusals at step 3 write nothing: a retry with the same key after the
situation changed (a release made room) may succeed. What each kind checks
and asks is declared in kinds.py.
"""

import functools
import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from google.protobuf.message import Message

from protos.common.v1 import common_pb2
from protos.gateway.v1 import control_pb2
from services.common import identifiers
from services.common.identifiers import normal_case_number
from services.common.validation import (
    FieldError,
    check_identifier,
    validate_amount_fen,
    validate_case,
    validate_subject,
    validate_token,
)
from services.gateway.agencies.clients import AgencyClients
from services.gateway.config import GatewaySettings
from services.gateway.control import rules
from services.gateway.control.driver import Driver
from services.gateway.control.kinds import KINDS, ActionKind, Plan
from services.gateway.control.messages import case_message, now_us
from services.gateway.access.labels import COURTS, REJECTED
from services.gateway.control.metrics import count_action
from services.gateway.errors import GatewayError
from services.gateway.ledger import (
    PENDING,
    REFUSED,
    ActionRecord,
    CaseConflict,
    CaseRecord,
    DebtorRecord,
    Draft,
    Ledger,
    Planned,
    Snapshot,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submitted:
    """An action as the caller gets it back; `replayed` when the key was known."""

    action: ActionRecord
    replayed: bool


def request_digest(kind: int, request: Message) -> str:
    """What makes two requests "the same action": the kind and every field but the key."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("idempotency_key")
    return hashlib.sha256(bytes([kind]) + copy.SerializeToString(deterministic=True)).hexdigest()


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
        self.driver = Driver(ledger, clients, settings, now_us)

    async def start(self) -> None:
        await self.driver.start()

    async def close(self) -> None:
        await self.driver.close()

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
        executor_ids = rules.validate_executor_ids(request.executor_ids, request.case.executor_id)
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
            raise GatewayError(
                grpc.StatusCode.ALREADY_EXISTS,
                f"case {case_number} is already registered (court {exc.existing.court_code}) with other debtors"
                " or amounts; see GET /v1/cases/{case_number}",
            ) from None
        # Its court's series exist from now on, before its first query or action.
        COURTS.add(record.court_code)
        logger.info(
            "case %s %s: court %s, %d debtor(s), owed %d fen + costs %d fen",
            case_number, "registered" if created else "already registered", record.court_code, len(debtors),
            record.amount_owed_fen, record.costs_fen,
        )
        return await self.get_case(case_number), created

    async def get_case(self, case_number: str) -> control_pb2.Case:
        case_number = normal_case_number(case_number)
        check_identifier(identifiers.check_case_number, case_number, "case_number")
        # One reading of the clock: a hold that lapses between two would read
        # LAPSED and still count against the cap.
        now_us = self.now_us()
        view = await self.ledger.case_view(case_number, now_us)
        if view is None:
            raise GatewayError(grpc.StatusCode.NOT_FOUND, f"case_number: case {case_number} is not registered")
        return case_message(view, now_us)

    # Actions

    async def submit(self, kind_value: int, request: Message) -> Submitted:
        """Run one action exactly once per idempotency key; see the module docstring."""
        kind = KINDS[kind_value]
        label = kind.label
        now_us = self.now_us()
        try:
            self._validate(kind, request, now_us)
        except (FieldError, GatewayError):
            count_action(label, REJECTED, request.case.court_code)
            raise
        key = request.idempotency_key or uuid.uuid4().hex
        digest = request_digest(kind_value, request)
        existing = await self.ledger.action_by_key(key)
        if existing is None:
            action_id = f"{kind.prefix}-{uuid.uuid4().hex[:24]}"
            draft = Draft(
                action_id=action_id,
                idempotency_key=key,
                request_digest=digest,
                kind=kind_value,
                case_number=normal_case_number(request.case.case_number),
                court_code=request.case.court_code,
                executor_id=request.case.executor_id,
                document_number=request.case.document_number,
                hold_id=kind.hold_of(request),
            )
            try:
                record, created = await self.ledger.record_intent(
                    draft, functools.partial(self._plan, kind, request, action_id), now_us=now_us,
                    lease_owner=self.driver.owner, lease_until_us=now_us + self.driver.lease_us,
                )
            except GatewayError as exc:
                count_action(label, REJECTED, request.case.court_code)
                logger.info("%s refused by the gateway (%s): %s", label, exc.code.name, exc.message,
                            extra={"case_number": draft.case_number, "idempotency_key": key})
                raise
            if created:
                logger.info(
                    "action %s (%s) recorded PENDING for case %s at %s; key %s", record.action_id, label,
                    record.case_number, record.agency_id, key,
                    extra={"action_id": record.action_id, "case_number": record.case_number},
                )
                self.driver.crash("after_intent", record.action_id)
                return self._answer(await self.driver.drive(record, leased=True), replayed=False)
            existing = record
        if existing.request_digest != digest:
            raise GatewayError(
                grpc.StatusCode.ALREADY_EXISTS,
                f"idempotency_key: {key} was already used for another request ({KINDS[existing.kind].label}"
                f" action {existing.action_id}); use a new key for a new request",
            )
        if existing.state == PENDING:
            existing = await self.driver.drive(existing, leased=False)
        return self._answer(existing, replayed=True)

    def _answer(self, record: ActionRecord, *, replayed: bool) -> Submitted:
        if record.state == REFUSED:
            raise GatewayError(grpc.StatusCode[record.error_code], record.error_message, action=record)
        return Submitted(record, replayed)

    def _validate(self, kind: ActionKind, request: Message, now_us: int) -> None:
        validate_token(request.idempotency_key, "idempotency_key", required=False)
        validate_case(request.case)
        kind.validate(request, self.clients, now_us)

    def _plan(self, kind: ActionKind, request: Message, action_id: str, snap: Snapshot) -> Planned:
        """The rules, checked under the case's lock (see Ledger.record_intent), and the agency request."""
        case = rules.case_for(request.case, snap)
        case_ref = common_pb2.CaseRef(
            case_number=case.case_number, court_code=case.court_code,
            executor_id=request.case.executor_id, document_number=request.case.document_number,
        )
        return kind.plan(request, snap, Plan(case, case_ref, f"gw.{action_id}", snap.now_us, self.clients))
