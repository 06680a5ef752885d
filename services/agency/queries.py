"""The query path every agency shares: validate, match the subject, log."""

import logging
import sqlite3
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import grpc

from protos.common.v1 import common_pb2
from services.agency import faults, store
from services.agency.config import AgencySettings
from services.common.logs import mask_id
from services.common.validation import FieldError, validate_case, validate_subject, validate_token

logger = logging.getLogger(__name__)

Record = TypeVar("Record")

# The most accounts, vehicles or properties one answer carries (the contract's limit).
MAX_ITEMS = 1000


class QueryRequest(Protocol):
    request_id: str
    case: common_pb2.CaseRef
    subject: common_pb2.Subject


async def validate_query(request: QueryRequest, context: grpc.aio.ServicerContext) -> None:
    try:
        validate_token(request.request_id, "request_id", required=False)
        validate_case(request.case)
        validate_subject(request.subject)
    except FieldError as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))


async def answer_query(
    request: QueryRequest,
    context: grpc.aio.ServicerContext,
    *,
    conn: sqlite3.Connection,
    agency_id: str,
    kind: str,
    find: Callable[[str], Sequence[Record]],
) -> Sequence[Record]:
    """Validate the request, check the subject's name against the register,
    and return `find(id_number)`: the subject's records of this `kind`.

    A subject the agency has never registered gets an empty answer, as a
    real agency would give; one registered under another name or document
    type is refused, because agencies match 证件号码 and 姓名 together.
    A query without a name (the executor may know only the ID) is matched
    on the ID alone.
    """
    await validate_query(request, context)
    subject = request.subject
    registered = store.holder(conn, subject.id_number)
    records: Sequence[Record] = ()
    if registered is not None:
        name_differs = bool(subject.name) and registered["name"] != subject.name
        if (name_differs or registered["subject_type"] != subject.type) and not faults.active("name_mismatch_ignored"):
            logger.info(
                "query %s refused: %s at %s is registered under another name or type",
                request.request_id or "-", mask_id(subject.id_number), agency_id,
                extra=_log_fields(request, agency_id, kind),
            )
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "subject: the name or document type does not match what is registered for this ID number"
                " (证件号码与姓名不一致); check the debtor's registered name",
            )
        records = find(subject.id_number)
        if len(records) > MAX_ITEMS and not faults.active("no_item_cap"):
            logger.warning("query %s refused: %s at %s has %d %s, more than an answer may carry",
                           request.request_id or "-", mask_id(subject.id_number), agency_id, len(records), kind)
            await context.abort(
                grpc.StatusCode.OUT_OF_RANGE,
                f"subject: holds {len(records)} {kind} here, more than the {MAX_ITEMS} one answer may carry;"
                " the agency must be asked to report them another way",
            )
    logger.info(
        "query %s: %s at %s has %d %s",
        request.request_id or "-", mask_id(subject.id_number), agency_id, len(records), kind,
        extra={**_log_fields(request, agency_id, kind), "count": len(records)},
    )
    return records


def _log_fields(request: QueryRequest, agency_id: str, kind: str) -> dict[str, str]:
    fields = {"agency": agency_id, "kind": kind, "case_number": request.case.case_number}
    # Unset, the x-request-id from metadata (logged from context) stands.
    if request.request_id:
        fields["request_id"] = request.request_id
    return fields


class QueryServicer:
    """Base of each agency's servicer: the open DB, its settings, the shared query path."""

    def __init__(self, conn: sqlite3.Connection, settings: AgencySettings):
        self.conn = conn
        self.settings = settings

    async def answer(
        self,
        request: QueryRequest,
        context: grpc.aio.ServicerContext,
        kind: str,
        find: Callable[[sqlite3.Connection, str], Sequence[Record]],
    ) -> Sequence[Record]:
        return await answer_query(
            request,
            context,
            conn=self.conn,
            agency_id=self.settings.agency_id,
            kind=kind,
            find=lambda id_number: find(self.conn, id_number),
        )
