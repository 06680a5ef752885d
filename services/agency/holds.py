"""Freezes and seals as agencies serve them: query answers (states, queue
positions), and the seal RPCs and seal feed both registries share."""

import logging
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, TypeVar

import grpc
from google.protobuf.message import Message

from protos.common.v1 import common_pb2
from services.agency import faults, feed, seals
from services.agency.config import AgencySettings
from services.agency.control import check_expiry, exactly_once, timestamp_us
from services.common.clock import Clock, clock_from_env
from services.agency.queries import QueryRequest, QueryServicer, Record
from services.agency.store import SEAL_HOLDS, timestamp
from services.common.logs import mask_id
from services.common.validation import (
    FieldError,
    check_identifier,
    validate_case,
    validate_subject,
    validate_token,
)

logger = logging.getLogger(__name__)

Response = TypeVar("Response", bound=Message)
Checked = TypeVar("Checked")

# Holds a query reports: in force or waiting (轮候). Ended ones are history.
PENDING_STATES = (common_pb2.HOLD_STATE_ACTIVE, common_pb2.HOLD_STATE_QUEUED)


def queue_positions(rows: Iterable[sqlite3.Row], asset_column: str) -> list[tuple[sqlite3.Row, int]]:
    """Pair each hold with its queue position: 1 for the first queued on
    its asset, 0 when not queued. Rows must come in registration order."""
    waiting: dict[str, int] = defaultdict(int)
    paired = []
    for row in rows:
        position = 0
        if row["state"] == common_pb2.HOLD_STATE_QUEUED:
            waiting[row[asset_column]] += 1
            position = waiting[row[asset_column]]
        paired.append((row, position))
    return paired


def seal_message(row: sqlite3.Row, queue_position: int) -> common_pb2.Seal:
    return common_pb2.Seal(
        seal_id=row["seal_id"],
        asset_id=row["asset_id"],
        case_number=row["case_number"],
        court_code=row["court_code"],
        state=row["state"],
        queue_position=queue_position,
        registered_at=timestamp(row["registered_at_us"]),
        effective_at=timestamp(row["effective_at_us"]),
        expires_at=timestamp(row["expires_at_us"]),
        ended_at=timestamp(row["ended_at_us"]),
    )


def pending_seals(conn: sqlite3.Connection, asset_ids: Sequence[str]) -> dict[str, list[common_pb2.Seal]]:
    """Active and queued seals on each asset, in registration order."""
    if not asset_ids:
        return {}
    marks = ",".join("?" * len(asset_ids))
    rows = conn.execute(
        f"SELECT * FROM seals WHERE asset_id IN ({marks}) AND state IN (?, ?)"
        " ORDER BY asset_id, queue_seq",
        (*asset_ids, *PENDING_STATES),
    ).fetchall()
    seals: dict[str, list[common_pb2.Seal]] = defaultdict(list)
    for row, position in queue_positions(rows, "asset_id"):
        seals[row["asset_id"]].append(seal_message(row, position))
    return seals


class SealRegistryServicer(QueryServicer):
    """The query path plus Seal, RenewSeal and ReleaseSeal, and the hold
    changes feed (ListSealChanges, ListCaseSeals), as the vehicle and
    real-estate registries both serve them.

    A registry's servicer subclasses this before its generated base class
    and names its `seal_rules`. Each control RPC validates (INVALID_ARGUMENT
    naming the field, nothing recorded), then runs the ledger operation once
    per idempotency key (`control.exactly_once`) and logs one line.
    """

    seal_rules: ClassVar[seals.SealRules]

    def __init__(self, conn: sqlite3.Connection, settings: AgencySettings, clock: Clock | None = None):
        super().__init__(conn, settings)
        self.clock = clock if clock is not None else clock_from_env()
        seals.prepare(conn)

    async def answer(
        self,
        request: QueryRequest,
        context: grpc.aio.ServicerContext,
        kind: str,
        find: Callable[[sqlite3.Connection, str], Sequence[Record]],
    ) -> Sequence[Record]:
        # Seals that ran out since the last call lapse before anyone sees them.
        def settled_find(conn: sqlite3.Connection, id_number: str) -> Sequence[Record]:
            seals.settle_due(conn, self.seal_rules, self.clock.now_us())
            return find(conn, id_number)

        return await super().answer(request, context, kind, settled_find)

    async def Seal(self, request: Any, context: grpc.aio.ServicerContext) -> common_pb2.Seal:
        rules = self.seal_rules
        asset_id = getattr(request, rules.asset_field)
        now_us = self.clock.now_us()

        def validate() -> None:
            validate_case(request.case)
            validate_subject(request.subject, require_name=True)
            check_identifier(rules.check_asset_id, asset_id, rules.asset_field)

        def apply(conn: sqlite3.Connection, _: None) -> common_pb2.Seal:
            # Checked here, not in validate: a replay after expires_at has
            # passed must still get the stored answer.
            expires_us = check_expiry(request.expires_at, "expires_at", start_us=now_us, max_years=rules.max_years)
            return seal_message(*seals.seal(
                conn, rules, asset_id=asset_id, subject=request.subject, case_number=request.case.case_number,
                court_code=request.case.court_code, expires_us=expires_us, now_us=now_us,
            ))

        return await self.control(
            context, "Seal", request, common_pb2.Seal, now_us=now_us, validate=validate, apply=apply,
            asset_id=asset_id, subject_id=request.subject.id_number,
        )

    async def RenewSeal(self, request: Any, context: grpc.aio.ServicerContext) -> common_pb2.Seal:
        rules = self.seal_rules
        now_us = self.clock.now_us()

        def validate() -> None:
            validate_case(request.case)
            validate_token(request.seal_id, "seal_id", required=True)

        def apply(conn: sqlite3.Connection, _: None) -> common_pb2.Seal:
            expires_us = (
                timestamp_us(request.expires_at) if faults.active("renew_past_period")
                else check_expiry(request.expires_at, "expires_at", start_us=now_us, max_years=rules.max_years)
            )
            return seal_message(*seals.renew(
                conn, rules, seal_id=request.seal_id, case_number=request.case.case_number,
                court_code=request.case.court_code, expires_us=expires_us, now_us=now_us,
            ))

        return await self.control(
            context, "RenewSeal", request, common_pb2.Seal, now_us=now_us, validate=validate, apply=apply,
            seal_id=request.seal_id,
        )

    async def ReleaseSeal(self, request: Any, context: grpc.aio.ServicerContext) -> common_pb2.Seal:
        rules = self.seal_rules
        now_us = self.clock.now_us()

        def validate() -> None:
            validate_case(request.case)
            validate_token(request.seal_id, "seal_id", required=True)

        def apply(conn: sqlite3.Connection, _: None) -> common_pb2.Seal:
            return seal_message(*seals.release(
                conn, rules, seal_id=request.seal_id, case_number=request.case.case_number,
                court_code=request.case.court_code, now_us=now_us,
            ))

        return await self.control(
            context, "ReleaseSeal", request, common_pb2.Seal, now_us=now_us, validate=validate, apply=apply,
            seal_id=request.seal_id,
        )

    async def ListSealChanges(self, request: Any, context: grpc.aio.ServicerContext) -> common_pb2.SealChanges:
        changes, last_cursor = await feed.list_changes(
            request, context, conn=self.conn, agency_id=self.settings.agency_id, holds=SEAL_HOLDS,
            render=_render_seal, settle=self._settle,
        )
        return common_pb2.SealChanges(
            changes=[
                common_pb2.SealChange(cursor=c.cursor, seal=c.hold, changed_at=timestamp(c.changed_at_us))
                for c in changes
            ],
            last_cursor=last_cursor,
        )

    async def ListCaseSeals(self, request: Any, context: grpc.aio.ServicerContext) -> common_pb2.CaseSeals:
        found = await feed.list_case_holds(
            request, context, conn=self.conn, agency_id=self.settings.agency_id, holds=SEAL_HOLDS,
            render=_render_seal, settle=self._settle,
        )
        return common_pb2.CaseSeals(seals=found)

    def _settle(self) -> None:
        seals.settle_due(self.conn, self.seal_rules, self.clock.now_us())

    async def control(
        self,
        context: grpc.aio.ServicerContext,
        method: str,
        request: Any,
        response_type: type[Response],
        *,
        now_us: int,
        validate: Callable[[], Checked],
        apply: Callable[[sqlite3.Connection, Checked], Response],
        seal_id: str = "",
        asset_id: str = "",
        subject_id: str = "",
        describe: Callable[[Any], tuple[str, str, str]] | None = None,
    ) -> Response:
        """Validate, run `apply` with what `validate` returned exactly once
        per idempotency key, and log the outcome in one line.

        `describe(response)` gives the seal ID(s), asset and outcome the
        line reports; by default the response is a Seal.
        """
        case = request.case
        try:
            try:
                checked = validate()
            except FieldError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            response = await exactly_once(
                self.conn, context, method=method, request=request, court_code=case.court_code,
                response_type=response_type, apply=lambda conn: apply(conn, checked), now_us=now_us,
            )
        except grpc.aio.AbortError:
            code = context.code()
            self._log_control(
                method, request, seal_id, asset_id, subject_id,
                f"refused {code.name if code else '?'}: {context.details()}",
            )
            raise
        seal_id, asset_id, outcome = (describe or _describe_seal)(response)
        self._log_control(method, request, seal_id, asset_id, subject_id, outcome)
        return response

    def _log_control(
        self, method: str, request: Any, seal_id: str, asset_id: str, subject_id: str, outcome: str
    ) -> None:
        key = request.idempotency_key
        logger.info(
            "%s key=%s seal=%s %s=%s court=%s subject=%s: %s",
            method, key or "-", seal_id or "-", self.seal_rules.asset_field, asset_id or "-",
            request.case.court_code or "-", mask_id(subject_id) if subject_id else "-", outcome,
            extra={
                "agency": self.settings.agency_id,
                "method": method,
                "idempotency_key": key,
                "seal_id": seal_id,
                "asset_id": asset_id,
                "court_code": request.case.court_code,
                "case_number": request.case.case_number,
            },
        )


def _render_seal(conn: sqlite3.Connection, seal_id: str) -> common_pb2.Seal:
    return seal_message(*seals.view(conn, seal_id))


def _describe_seal(seal: common_pb2.Seal) -> tuple[str, str, str]:
    outcome = common_pb2.HoldState.Name(seal.state).removeprefix("HOLD_STATE_")
    if seal.queue_position:
        outcome += f" (queue position {seal.queue_position})"
    return seal.seal_id, seal.asset_id, outcome
