"""The gateway's door: executor tokens, per-case authorization, rate limits and the audit trail.

Both APIs go through `Door.admit` (the gRPC interceptor and the HTTP
middleware only read the token and the request and render the answer):
authenticate (UNAUTHENTICATED), parse the request once, describe it
(an invalid request is recorded as denied and left to its handler, whose
validation answers the field-naming INVALID_ARGUMENT), rate-limit queries
and control actions (RESOURCE_EXHAUSTED with retry-after, recorded as denied), decide (authz.decide:
PERMISSION_DENIED, or NOT_FOUND for an unregistered case) and append one
audit record, allowed or denied, durable before the handler runs and so
before any agency is asked (write-ahead). If that append fails the request
fails (UNAVAILABLE, retry later): nothing happens that the audit trail does
not show. What came of an allowed request is appended after it (answered).

Every refusal is counted: the adapters' own metrics (gRPC, HTTP) see its
code, and an operation that counts its requests (queries, actions) gets
`Operation.count(api, outcome, court)` with the outcome access/labels.py
names and the caller's court label. Each audit append is timed.

What each operation is, for the door, is an `Operation`, declared once
beside what it does (query/operations.py, control/kinds.py,
control/cases.py); the adapters derive their routes and methods from those
declarations. A gateway method with no Operation needs the admin role.
"""

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from google.protobuf.message import Message

from protos.common.v1 import common_pb2
from services.common.identifiers import normal_case_number
from services.common.validation import FieldError, check_printable, validate_case
from services.gateway.access import authz
from services.gateway.access.labels import COURTS, REJECTED, UNKNOWN, refusal_outcome
from services.gateway.errors import RETRY_AFTER_S, GatewayError
from services.gateway.ledger import Ledger, LedgerUnavailable
from services.gateway.ledger.metrics import AUDIT, STORE_SECONDS, STORE_UP
from services.security.audit import MAX_AGENCIES, AuditEntry, AuditError
from services.security.ratelimit import QUERY, RateLimiter
from services.security.tokens import Principal, TokenError, TokenVerifier

logger = logging.getLogger(__name__)

MAX_AGENCY_ID_CHARS = 64
CASE_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Call:
    """What one request asks for, as authorization and the audit trail see it."""

    action: str
    case_number: str = ""
    court_code: str = ""
    executor_id: str = ""
    document_number: str = ""
    subject: common_pb2.Subject | None = None
    agency_ids: tuple[str, ...] = ()
    request_id: str = ""


@dataclass(frozen=True)
class Operation:
    """One thing a caller can ask the gateway for, as the door sees it.

    `action` is the authorization rule's name and the audit record's action;
    `describe` reads a parsed `request_type` (FieldError for what it cannot
    record). `rate_limit`: the family of limits (ratelimit.QUERY or CONTROL)
    the request counts against, per executor and per court; "" for none.
    `count(api, outcome, court)`: counts a request the door refused or could
    not parse, in the metric the operation's requests are counted in.
    """

    action: str
    request_type: type[Message]
    describe: Callable[[Message], Call]
    rate_limit: str = ""
    count: Callable[[str, str, str], None] | None = None


def case_call(action: str, case: common_pb2.CaseRef, **extra) -> Call:
    validate_case(case)
    return Call(
        action,
        case_number=normal_case_number(case.case_number),
        court_code=case.court_code,
        executor_id=case.executor_id,
        document_number=case.document_number,
        **extra,
    )


def agency_ids(values) -> tuple[str, ...]:
    if len(values) > MAX_AGENCIES:
        raise FieldError("agency_ids", f"at most {MAX_AGENCIES} agencies")
    for value in values:
        if len(value) > MAX_AGENCY_ID_CHARS:
            raise FieldError("agency_ids", f"an agency ID has at most {MAX_AGENCY_ID_CHARS} characters")
        check_printable(value, "agency_ids")
    return tuple(values)


def _administer(_request: Message) -> Call:
    return Call(authz.ADMINISTER)


def _not_counted(_api: str, _outcome: str, _court: str) -> None:
    pass


# Any gateway method not declared otherwise: the admin role.
ADMINISTER = Operation(authz.ADMINISTER, Message, _administer)


@dataclass(slots=True)
class Admitted:
    """A request let in: who asked and what they asked (parsed once)."""

    principal: Principal
    message: Message | None
    # The request could not be parsed: the handler answers with this.
    parse_error: FieldError | None = None
    # What was recorded as allowed; None for a request its handler refuses as invalid.
    call: Call | None = None
    # What came of it, for the record appended after (the handler may say more than the status).
    result: str = ""

    def request(self) -> Message:
        if self.parse_error is not None:
            raise self.parse_error
        return self.message


class Door:
    """Everything the door needs; one per gateway process."""

    def __init__(self, verifier: TokenVerifier, limiter: RateLimiter, audit, ledger: Ledger):
        self.verifier = verifier
        self.limiter = limiter
        self.audit = audit
        self.ledger = ledger
        # A registered case never changes (re-registering with other content
        # is refused), so what was found stays true: cache found answers
        # only, keyed by case and subject, most recent last.
        self._parties: OrderedDict[tuple[str, str], authz.CaseParties] = OrderedDict()
        self._answering: set[asyncio.Task] = set()
        self._append_seconds = STORE_SECONDS.labels(AUDIT, "append")
        self._audit_up = STORE_UP.labels(AUDIT)

    def authenticate(self, read_token: Callable[[], str | None]) -> Principal:
        """The caller named by the token `read_token()` reads from the request."""
        try:
            return self.verifier.verify(read_token())
        except TokenError as exc:
            raise GatewayError(grpc.StatusCode.UNAUTHENTICATED, str(exc)) from None

    async def admit(
        self,
        read_token: Callable[[], str | None],
        operation: Operation,
        parse: Callable[[], Message],
        *,
        api: str = "",
    ) -> Admitted:
        """The shared door; raises GatewayError when denied. `api` names the adapter for the counts.

        Write-ahead: the record, allowed or denied, is built (which checks
        that the store can hold every field) and durable before this returns,
        so before the handler asks any agency. `answered` appends what came
        of an allowed request afterwards.
        """
        count = operation.count or _not_counted
        try:
            try:
                principal = self.authenticate(read_token)
            except GatewayError as denied:
                await self.record(None, Call(operation.action), denied.message)
                raise
        except GatewayError as refused:
            count(api, refusal_outcome(refused.code), UNKNOWN)
            raise
        # The caller's court, as far as its label goes: who is being refused.
        court = COURTS.label(principal.court_code)
        try:
            admitted = await self._admit(principal, operation, parse)
        except GatewayError as refused:
            count(api, refusal_outcome(refused.code), court)
            raise
        if admitted.parse_error is not None:
            count(api, REJECTED, court)
        return admitted

    async def _admit(self, principal: Principal, operation: Operation, parse) -> Admitted:
        action = operation.action
        try:
            message = parse()
        except FieldError as error:
            await self.record(principal, Call(action), f"invalid request: {error}")
            return Admitted(principal, None, parse_error=error)
        try:
            call = operation.describe(message)
        except FieldError as error:
            await self.record(principal, Call(action), f"invalid request: {error}")
            return Admitted(principal, message)
        if operation.rate_limit:
            limit = await self.limiter.check(operation.rate_limit, principal.executor_id, principal.court_code)
            if not limit.allowed:
                what = "queries" if operation.rate_limit == QUERY else "control actions"
                reason = f"too many {what} for this {limit.limited_by}; retry after {limit.retry_after_header} s"
                await self.record(principal, call, reason)
                raise GatewayError(grpc.StatusCode.RESOURCE_EXHAUSTED, reason, retry_after=limit.retry_after_header)
        decision = await self.authorize(principal, call)
        if not decision.allowed:
            raise GatewayError(decision.code, decision.reason)
        return Admitted(principal, message, call=call)

    async def authorize(self, principal: Principal, call: Call) -> authz.Decision:
        """Decide `call` and append its audit record, allowed or denied; for the door and for each row of a
        batch (which is admitted as a whole, then each of its queries decided and recorded as its own)."""
        decision = authz.decide(
            principal,
            call.action,
            case_number=call.case_number,
            court_code=call.court_code,
            executor_id=call.executor_id,
            case=await self._case(call),
            subject_id=call.subject.id_number if call.subject is not None else "",
        )
        await self.record(principal, call, "" if decision.allowed else decision.reason)
        return decision

    def answered(self, admitted: Admitted, result: str) -> None:
        """Append what came of an allowed request, in the background: the reply does not wait for it."""
        if admitted.call is None:
            return
        task = asyncio.ensure_future(self._record_answer(admitted, admitted.result or result))
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def _record_answer(self, admitted: Admitted, result: str) -> None:
        try:
            await self.record(admitted.principal, admitted.call, "", outcome="answered", result=result)
        except GatewayError:
            pass  # logged by record; the request itself was recorded before it ran

    async def close(self) -> None:
        """Wait for the answers still being recorded."""
        if self._answering:
            await asyncio.wait(list(self._answering), timeout=5.0)

    async def _case(self, call: Call) -> authz.CaseParties | None:
        if not call.case_number or call.action == authz.REGISTER_CASE:
            return None
        subject_id = call.subject.id_number if call.subject is not None else ""
        key = (call.case_number, subject_id)
        cached = self._parties.get(key)
        if cached is not None:
            self._parties.move_to_end(key)
            return cached
        try:
            found = await self.ledger.case_parties(call.case_number, subject_id)
        except LedgerUnavailable as exc:
            logger.error("ledger unavailable for authorization: %s", exc)
            raise GatewayError(
                grpc.StatusCode.UNAVAILABLE, "the gateway's ledger is unavailable; retry later", retry_after=RETRY_AFTER_S
            ) from None
        if found is None:
            return None
        case, is_debtor = found
        # A case registered through another gateway on the same ledger: its court is known from now on.
        COURTS.add(case.court_code)
        parties = authz.CaseParties(
            case.case_number, case.court_code, case.assigned_executors, frozenset({subject_id} if is_debtor else ())
        )
        self._parties[key] = parties
        if len(self._parties) > CASE_CACHE_SIZE:
            self._parties.popitem(last=False)
        return parties

    async def record(
        self, principal: Principal | None, call: Call, denial: str, *, outcome: str = "", result: str = ""
    ) -> None:
        """Append the audit record; fail closed."""
        subject = call.subject
        try:
            entry = AuditEntry(
                executor_id=principal.executor_id if principal else "",
                court_code=principal.court_code if principal else "",
                case_number=call.case_number,
                document_number=call.document_number[:1000],
                subject_id=subject.id_number[:1000] if subject is not None else "",
                action=call.action,
                agency_ids=call.agency_ids,
                outcome=outcome or ("denied" if denial else "allowed"),
                # A refusal may quote what the caller sent (a field name with a lone surrogate or a
                # NUL): written escaped, so no request can make the trail refuse its own record.
                reason=denial[:1000].encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00"),
                result=result[:1000],
                request_id=call.request_id,
                subject_type=common_pb2.SubjectType.Name(subject.type) if subject is not None and
                subject.type in common_pb2.SubjectType.values() else "",
            )
            start = time.perf_counter()
            try:
                await self.audit.append(entry)
            finally:
                self._append_seconds.observe(time.perf_counter() - start)
            self._audit_up.set(1)
        except (AuditError, ValueError, OSError) as exc:
            if not isinstance(exc, ValueError):  # a record the store refused to build is no store failure
                self._audit_up.set(0)
            logger.error("audit append failed, refusing the request: %s", exc)
            raise GatewayError(
                grpc.StatusCode.UNAVAILABLE, "the audit trail is unavailable; the request was refused (retry later)",
                retry_after=RETRY_AFTER_S,
            ) from None
