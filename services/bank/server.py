"""The mock bank's gRPC service: query accounts; freeze, renew, release and deduct funds; the freeze feed."""

import logging
import sqlite3
from collections.abc import Callable
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from protos.bank.v1 import bank_pb2, bank_pb2_grpc
from protos.common.v1 import common_pb2
from services.agency import faults, feed
from services.agency.control import exactly_once, timestamp_us
from services.common.clock import Clock, clock_from_env
from services.agency.queries import QueryServicer
from services.agency.server import AgencyKind, serve_agency
from services.agency.store import timestamp, transaction
from services.bank import ledger, store
from services.bank.config import Settings
from services.common.logs import mask_id
from services.common.validation import (
    MAX_NAME_CHARS,
    FieldError,
    require_text,
    validate_amount_fen,
    validate_case,
    validate_subject,
    validate_token,
)

logger = logging.getLogger(__name__)

Response = TypeVar("Response", bound=Message)

MAX_ACCOUNT_NUMBER_CHARS = 64
MAX_FREEZE_ID_CHARS = 64


class BankServicer(QueryServicer, bank_pb2_grpc.BankServicer):
    """Validation and logging around services.bank.ledger; the rules live there.

    Each mutating RPC validates the request's shape (INVALID_ARGUMENT naming
    the field, nothing recorded), then runs the ledger operation exactly
    once under the caller's idempotency key at one reading of the clock.
    """

    def __init__(self, conn: sqlite3.Connection, settings: Settings, clock: Clock | None = None):
        super().__init__(conn, settings)
        self.clock = clock or clock_from_env()

    async def QueryAccounts(self, request, context):
        def find(conn: sqlite3.Connection, id_number: str) -> list[bank_pb2.Account]:
            settle_due_lapses(conn, self.clock.now_us())
            return store.accounts_of(conn, id_number)

        accounts = await self.answer(request, context, "accounts", find)
        return bank_pb2.QueryAccountsResponse(institution_id=self.settings.agency_id, accounts=accounts)

    async def Freeze(self, request, context):
        def validate():
            validate_case(request.case)
            validate_subject(request.subject, require_name=True)
            require_text(request.account_number, "account_number", MAX_ACCOUNT_NUMBER_CHARS)
            validate_amount_fen(request.amount_fen, "amount_fen")
            _require_timestamp(request, "expires_at")

        def apply(conn, now_us):
            freeze_id = ledger.freeze(
                conn,
                authority=_authority(request.case),
                holder=_holder(request.subject),
                account_number=request.account_number,
                amount_fen=request.amount_fen,
                expires_at_us=timestamp_us(request.expires_at),
                now_us=now_us,
            )
            answer = store.freeze_message(conn, freeze_id)
            if faults.active("freeze_reply_without_id"):
                answer.freeze_id = ""
            return answer

        return await self._control(
            "Freeze", request, context, bank_pb2.AccountFreeze, validate, apply,
            f"account={request.account_number} subject={mask_id(request.subject.id_number)}"
            f" amount_fen={request.amount_fen}",
        )

    async def RenewFreeze(self, request, context):
        def validate():
            validate_case(request.case)
            require_text(request.freeze_id, "freeze_id", MAX_FREEZE_ID_CHARS)
            _require_timestamp(request, "expires_at")

        def apply(conn, now_us):
            freeze_id = ledger.renew(
                conn,
                authority=_authority(request.case),
                freeze_id=request.freeze_id,
                expires_at_us=timestamp_us(request.expires_at),
                now_us=now_us,
            )
            return store.freeze_message(conn, freeze_id)

        return await self._control(
            "RenewFreeze", request, context, bank_pb2.AccountFreeze, validate, apply,
            f"freeze={request.freeze_id} expires_at={request.expires_at.ToJsonString()}",
        )

    async def ReleaseFreeze(self, request, context):
        def validate():
            validate_case(request.case)
            require_text(request.freeze_id, "freeze_id", MAX_FREEZE_ID_CHARS)
            if request.amount_fen != 0:
                validate_amount_fen(request.amount_fen, "amount_fen")

        def apply(conn, now_us):
            freeze_id = ledger.release(
                conn,
                authority=_authority(request.case),
                freeze_id=request.freeze_id,
                amount_fen=request.amount_fen,
                now_us=now_us,
            )
            return store.freeze_message(conn, freeze_id)

        return await self._control(
            "ReleaseFreeze", request, context, bank_pb2.AccountFreeze, validate, apply,
            f"freeze={request.freeze_id} amount_fen={request.amount_fen or 'all'}",
        )

    async def Deduct(self, request, context):
        source = request.WhichOneof("source")

        def validate():
            validate_case(request.case)
            if source is None:
                raise FieldError("source", "set freeze_id, or account_number to deduct from the available balance")
            if source == "freeze_id":
                require_text(request.freeze_id, "freeze_id", MAX_FREEZE_ID_CHARS)
            else:
                require_text(request.account_number, "account_number", MAX_ACCOUNT_NUMBER_CHARS)
            validate_amount_fen(request.amount_fen, "amount_fen")
            for field in ("bank_name", "account_number", "account_name"):
                require_text(getattr(request.court_account, field), f"court_account.{field}", MAX_NAME_CHARS)
            # The holder is required for a direct deduction; named with a
            # freeze, it is checked against the freeze's account.
            if source == "account_number" and not request.HasField("subject"):
                raise FieldError("subject", "is required to deduct from an account")
            if request.HasField("subject"):
                validate_subject(request.subject, require_name=True)

        def apply(conn, now_us):
            court_account = ledger.CourtAccount(
                request.court_account.bank_name, request.court_account.account_number,
                request.court_account.account_name,
            )
            holder = _holder(request.subject) if request.HasField("subject") else None
            if source == "freeze_id":
                deduction_id = ledger.deduct_from_freeze(
                    conn, authority=_authority(request.case), freeze_id=request.freeze_id,
                    amount_fen=request.amount_fen, court_account=court_account, now_us=now_us, holder=holder,
                )
            else:
                deduction_id = ledger.deduct_direct(
                    conn, authority=_authority(request.case), holder=holder, account_number=request.account_number,
                    amount_fen=request.amount_fen, court_account=court_account, now_us=now_us,
                )
            return store.deduction_message(conn, deduction_id)

        target = f"freeze={request.freeze_id}" if source == "freeze_id" else (
            f"account={request.account_number} subject={mask_id(request.subject.id_number)}"
        )
        return await self._control(
            "Deduct", request, context, bank_pb2.Deduction, validate, apply,
            f"{target} amount_fen={request.amount_fen}",
        )

    async def ListFreezeChanges(self, request, context):
        changes, last_cursor = await feed.list_changes(
            request, context, conn=self.conn, agency_id=self.settings.agency_id, holds=store.FREEZE_HOLDS,
            render=store.freeze_message, settle=self._settle,
        )
        return bank_pb2.FreezeChanges(
            changes=[
                bank_pb2.FreezeChange(cursor=c.cursor, freeze=c.hold, changed_at=timestamp(c.changed_at_us))
                for c in changes
            ],
            last_cursor=last_cursor,
        )

    async def ListCaseFreezes(self, request, context):
        freezes = await feed.list_case_holds(
            request, context, conn=self.conn, agency_id=self.settings.agency_id, holds=store.FREEZE_HOLDS,
            render=store.freeze_message, settle=self._settle,
        )
        return bank_pb2.CaseFreezes(freezes=freezes)

    def _settle(self) -> None:
        settle_due_lapses(self.conn, self.clock.now_us())

    async def _control(
        self,
        method: str,
        request,
        context: grpc.aio.ServicerContext,
        response_type: type[Response],
        validate: Callable[[], None],
        apply: Callable[[sqlite3.Connection, int], Response],
        describe: str,
    ) -> Response:
        """Validate, run exactly once, and log one line with the outcome."""
        outcome = "error"
        response = None
        try:
            try:
                validate_token(request.idempotency_key, "idempotency_key", required=True)
                validate()
            except FieldError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            now_us = self.clock.now_us()
            response = await exactly_once(
                self.conn, context, method=method, request=request, court_code=request.case.court_code,
                response_type=response_type, apply=lambda conn: apply(conn, now_us), now_us=now_us,
            )
            outcome = "OK " + _summary(response)
            return response
        except grpc.aio.AbortError:
            code = context.code()
            outcome = f"{code.name if code else 'ABORTED'}: {context.details()}"
            raise
        finally:
            freeze = response.freeze if isinstance(response, bank_pb2.Deduction) else response
            logger.info(
                "%s key=%s case=%s court=%s %s -> %s",
                method, request.idempotency_key or "-", request.case.case_number or "-",
                request.case.court_code or "-", describe, outcome,
                extra={"method": method, "idempotency_key": request.idempotency_key,
                       "case_number": request.case.case_number, "court_code": request.case.court_code,
                       "freeze_id": freeze.freeze_id if freeze is not None else getattr(request, "freeze_id", "")},
            )


def settle_due_lapses(conn: sqlite3.Connection, now_us: int) -> None:
    """Lapse expired freezes before a read, so queries show current states.

    The common case costs one index probe and no write lock.
    """
    if ledger.lapses_due(conn, now_us):
        with transaction(conn, now_us=now_us):
            ledger.settle(conn, now_us)


def _summary(response: Message) -> str:
    freeze = response.freeze if isinstance(response, bank_pb2.Deduction) else response
    text = (
        f"freeze={freeze.freeze_id} state={ledger.state_name(freeze.state)} frozen_fen={freeze.frozen_fen}"
        f" shortfall_fen={freeze.shortfall_fen} deducted_fen={freeze.deducted_fen}"
    )
    if freeze.queue_position:
        text += f" queue_position={freeze.queue_position}"
    if isinstance(response, bank_pb2.Deduction):
        text = f"deduction={response.deduction_id} amount_fen={response.amount_fen} " + text
    return text


def _require_timestamp(request: Message, field: str) -> None:
    if not request.HasField(field):
        raise FieldError(field, "is required")


def _authority(case: common_pb2.CaseRef) -> ledger.Authority:
    return ledger.Authority(case_number=case.case_number, court_code=case.court_code)


def _holder(subject: common_pb2.Subject) -> ledger.Holder:
    return ledger.Holder(id_number=subject.id_number, subject_type=subject.type, name=subject.name)


BANK = AgencyKind(
    kind="bank",
    service_name=bank_pb2.DESCRIPTOR.services_by_name["Bank"].full_name,
    records="accounts",
    schema=store.SCHEMA,
    populate=store.populate,
    fixtures=store.FIXTURES,
    servicer=BankServicer,
    add_servicer=bank_pb2_grpc.add_BankServicer_to_server,
)


async def serve(settings: Settings) -> None:
    await serve_agency(settings, BANK)
