"""The gateway's door: executor tokens, per-case authorization, rate limits and the audit trail.

Both APIs go through `Guard.admit` (the gRPC interceptor and the aiohttp
middleware below only adapt it): authenticate (UNAUTHENTICATED / 401),
describe the call (a request that fails validation is recorded as denied
and left to its handler for the field-naming 400), rate-limit queries
(RESOURCE_EXHAUSTED / 429 with retry-after), decide (authz.decide:
PERMISSION_DENIED / 403, or NOT_FOUND for an unregistered case) and append
one audit record, allowed or denied, before the handler runs and so before
any reply or agency call. If that append fails the request fails
(UNAVAILABLE / 503): nothing happens that the audit trail does not show.

Exempt: gRPC health and reflection; HTTP /healthz, /readyz, /metrics,
/openapi.json. Any gateway method not listed here needs the admin role.
"""

import asyncio
import contextvars
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc
from aiohttp import web
from google.protobuf.message import Message

from protos.common.v1 import common_pb2
from protos.gateway.v1 import control_pb2, gateway_pb2
from services.common import identifiers
from services.common.interceptors import drain_server_stream
from services.common.validation import FieldError, check_identifier, validate_case, validate_subject
from services.gateway import authz
from services.gateway import control as ctl
from services.gateway.config import GatewaySettings
from services.gateway.ledger import Ledger, LedgerUnavailable
from services.security.audit import MAX_AGENCIES, AuditEntry, AuditError, open_audit_store
from services.security.ratelimit import QueryRateLimiter, RateLimits
from services.security.tokens import (
    Principal,
    TokenError,
    TokenVerifier,
    bearer_token,
    token_from_metadata,
)

logger = logging.getLogger(__name__)

# The caller of the request being handled, for handlers that want it.
principal_var: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("principal", default=None)

MAX_AGENCY_ID_CHARS = 64
EXEMPT_GRPC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
EXEMPT_HTTP_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})


class Denied(Exception):
    """Refused at the door; `code` says how (and so which HTTP status)."""

    def __init__(self, code: grpc.StatusCode, reason: str, retry_after: str = ""):
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.retry_after = retry_after


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


def _case_call(action: str, case: common_pb2.CaseRef, **extra) -> Call:
    validate_case(case)
    return Call(
        action,
        case_number=ctl.normal_case_number(case.case_number),
        court_code=case.court_code,
        executor_id=case.executor_id,
        document_number=case.document_number,
        **extra,
    )


def _agency_ids(values) -> tuple[str, ...]:
    if len(values) > MAX_AGENCIES:
        raise FieldError("agency_ids", f"at most {MAX_AGENCIES} agencies")
    for value in values:
        if len(value) > MAX_AGENCY_ID_CHARS:
            raise FieldError("agency_ids", f"an agency ID has at most {MAX_AGENCY_ID_CHARS} characters")
    return tuple(values)


def describe_query(request: gateway_pb2.AssetQueryRequest) -> Call:
    validate_subject(request.subject)
    return _case_call(
        authz.QUERY,
        request.case,
        subject=request.subject,
        agency_ids=_agency_ids(request.agency_ids),
        request_id=request.request_id[:128],
    )


def describe_register(request: control_pb2.RegisterCaseRequest) -> Call:
    return _case_call(authz.REGISTER_CASE, request.case)


def describe_get_case(case_number: str) -> Call:
    case_number = ctl.normal_case_number(case_number)
    check_identifier(identifiers.check_case_number, case_number, "case_number")
    return Call(authz.GET_CASE, case_number=case_number)


def _action_subject(request: Message) -> common_pb2.Subject | None:
    """The debtor whose assets a new freeze, seal or direct deduction takes; None for one on a hold."""
    if "subject" in request.DESCRIPTOR.fields_by_name:
        return request.subject
    if isinstance(request, control_pb2.DeductFundsRequest) and request.HasField("account"):
        return request.account.subject
    return None


def describe_action(kind: int):
    def describe(request: Message) -> Call:
        subject = _action_subject(request)
        if subject is not None:
            validate_subject(subject, "subject" if "subject" in request.DESCRIPTOR.fields_by_name else "account.subject")
        agency_id = getattr(request, "agency_id", "") or (
            request.account.agency_id if isinstance(request, control_pb2.DeductFundsRequest) else ""
        )
        return _case_call(
            ctl.kind_label(kind), request.case, subject=subject, agency_ids=_agency_ids([agency_id] if agency_id else [])
        )

    return describe


def describe_admin(_request=None) -> Call:
    return Call(authz.ADMINISTER)


def describe_list_agencies(_request=None) -> Call:
    return Call(authz.LIST_AGENCIES)


CASE_CACHE_SIZE = 10_000


class Guard:
    """Everything the door needs; one per gateway process."""

    def __init__(self, verifier: TokenVerifier, limiter: QueryRateLimiter, audit, ledger: Ledger):
        self.verifier = verifier
        self.limiter = limiter
        self.audit = audit
        self.ledger = ledger
        # A registered case never changes (re-registering with other content
        # is refused), so what was found stays true: cache found answers
        # only, keyed by case and subject, most recent last.
        self._parties: OrderedDict[tuple[str, str], authz.CaseParties] = OrderedDict()

    def authenticate(self, read_token: Callable[[], str | None]) -> Principal:
        try:
            return self.verifier.verify(read_token())
        except TokenError as exc:
            raise Denied(grpc.StatusCode.UNAUTHENTICATED, str(exc)) from None

    async def admit(
        self,
        read_token: Callable[[], str | None],
        describe: Callable[[], Call],
        action: str,
        *,
        pending_record: list | None = None,
    ) -> Principal:
        """The shared door; raises Denied, or FieldError after recording it (the handler then answers 400).

        With `pending_record` (unary queries only), an allowed query's audit
        record is written while the handler runs: the task is appended there
        and the caller must await `settle_record` before sending the reply.
        A query changes nothing, so overlapping its record with the agency
        calls keeps the rule (recorded before any reply) at no latency cost.
        """
        try:
            principal = self.authenticate(read_token)
        except Denied as denied:
            await self.record(None, Call(action), denied.reason)
            raise
        try:
            call = describe()
        except FieldError as error:
            await self.record(principal, Call(action), f"invalid request: {error}")
            raise
        if call.action == authz.QUERY:
            limit = self.limiter.check(principal.executor_id, principal.court_code)
            if not limit.allowed:
                reason = (
                    f"too many queries for this {limit.limited_by}; retry after {limit.retry_after_header} s"
                )
                await self.record(principal, call, reason)
                raise Denied(grpc.StatusCode.RESOURCE_EXHAUSTED, reason, limit.retry_after_header)
        decision = authz.decide(
            principal,
            call.action,
            case_number=call.case_number,
            court_code=call.court_code,
            executor_id=call.executor_id,
            case=await self._case(call),
            subject_id=call.subject.id_number if call.subject is not None else "",
        )
        if decision.allowed and pending_record is not None and call.action == authz.QUERY:
            pending_record.append(asyncio.ensure_future(self._record_behind_handler(principal, call)))
            return principal
        await self.record(principal, call, "" if decision.allowed else decision.reason)
        if not decision.allowed:
            raise Denied(decision.code, decision.reason)
        return principal

    async def _record_behind_handler(self, principal: Principal, call: Call) -> None:
        # One loop turn first: the tasks the handler starts meanwhile (the
        # agency calls) are queued ahead, so the calls go out before the
        # record is built and handed to the audit store.
        await asyncio.sleep(0)
        await self.record(principal, call, "")

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
            raise Denied(grpc.StatusCode.UNAVAILABLE, "the gateway's ledger is unavailable; retry later") from None
        if found is None:
            return None
        case, is_debtor = found
        parties = authz.CaseParties(
            case.case_number, case.court_code, case.assigned_executors, frozenset({subject_id} if is_debtor else ())
        )
        self._parties[key] = parties
        if len(self._parties) > CASE_CACHE_SIZE:
            self._parties.popitem(last=False)
        return parties

    async def record(self, principal: Principal | None, call: Call, denial: str) -> None:
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
                outcome="denied" if denial else "allowed",
                reason=denial[:1000],
                request_id=call.request_id,
                subject_type=common_pb2.SubjectType.Name(subject.type) if subject is not None and
                subject.type in common_pb2.SubjectType.values() else "",
            )
            await self.audit.append(entry)
        except (AuditError, ValueError, OSError) as exc:
            logger.error("audit append failed, refusing the request: %s", exc)
            raise Denied(
                grpc.StatusCode.UNAVAILABLE, "the audit trail is unavailable; the request was refused (retry later)"
            ) from None


async def settle_record(pending_record: list) -> None:
    """Wait for a deferred audit record; raises Denied (UNAVAILABLE) if it failed."""
    for task in pending_record:
        await asyncio.shield(task)


GUARD = web.AppKey("guard", Guard)
PRINCIPAL = web.RequestKey("principal", Principal)


async def security_guard(app: web.Application) -> AsyncIterator[None]:
    """Open the audit store and build the guard for both APIs; close the store at cleanup."""
    from services.gateway.control_http import CONTROL

    settings = _settings(app)
    audit = await open_audit_store(settings.audit_store_url)
    app[GUARD] = Guard(TokenVerifier.from_env(), QueryRateLimiter(RateLimits.from_env()), audit, app[CONTROL].ledger)
    try:
        yield
    finally:
        await audit.close()


def _settings(app: web.Application) -> GatewaySettings:
    from services.gateway.http_api import SETTINGS

    return app[SETTINGS]


# gRPC


def _grpc_policies() -> dict[str, tuple[str, Callable[[Message], Call]]]:
    gateway = "/chakong.gateway.v1.AssetGateway/"
    control = "/chakong.gateway.v1.EnforcementControl/"
    policies = {
        gateway + "QueryAssets": (authz.QUERY, describe_query),
        gateway + "StreamAssets": (authz.QUERY, describe_query),
        gateway + "ListAgencies": (authz.LIST_AGENCIES, describe_list_agencies),
        control + "RegisterCase": (authz.REGISTER_CASE, describe_register),
        control + "GetCase": (authz.GET_CASE, lambda request: describe_get_case(request.case_number)),
    }
    for method, kind in (
        ("Freeze", ctl.FREEZE), ("RenewFreeze", ctl.RENEW_FREEZE), ("ReleaseFreeze", ctl.RELEASE_FREEZE),
        ("Deduct", ctl.DEDUCT), ("Seal", ctl.SEAL), ("RenewSeal", ctl.RENEW_SEAL),
        ("ReleaseSeal", ctl.RELEASE_SEAL), ("Transfer", ctl.TRANSFER),
    ):
        policies[control + method] = (ctl.kind_label(kind), describe_action(kind))
    return policies


GRPC_POLICIES = _grpc_policies()


class Undecodable:
    """Request bytes that do not parse as the method's message.

    grpc would answer UNKNOWN for a deserializer error; the guard answers
    INVALID_ARGUMENT (and audits it) instead.
    """

    __slots__ = ("error",)

    def __init__(self, error: Exception):
        self.error = error


def _tolerant(deserialize: Callable[[bytes], Message] | None):
    if deserialize is None:
        return None

    def parse(data: bytes):
        try:
            return deserialize(data)
        except Exception as exc:  # protobuf's DecodeError and its relatives
            return Undecodable(exc)

    return parse


def _describe_decoded(describe: Callable[[Message], Call]) -> Callable[[object], Call]:
    def describe_request(request) -> Call:
        if isinstance(request, Undecodable):
            raise FieldError("request", "not a valid protobuf message for this method")
        return describe(request)

    return describe_request


class GuardInterceptor(grpc.aio.ServerInterceptor):
    """Guard.admit before every gateway RPC; `guard()` is read per call (the app builds it at start-up)."""

    def __init__(self, guard: Callable[[], Guard]):
        self._guard = guard

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(EXEMPT_GRPC_PREFIXES):
            return handler
        action, describe = GRPC_POLICIES.get(method, (authz.ADMINISTER, describe_admin))
        describe = _describe_decoded(describe)
        metadata = handler_call_details.invocation_metadata

        async def admit(request, context, pending_record=None) -> bool:
            """True when the handler may run (allowed, or invalid: the handler answers that)."""
            try:
                principal = await self._guard().admit(
                    lambda: token_from_metadata(metadata), lambda: describe(request), action,
                    pending_record=pending_record,
                )
            except FieldError:
                return True
            except Denied as denied:
                if denied.retry_after:
                    context.set_trailing_metadata((("retry-after", denied.retry_after),))
                await context.abort(denied.code, denied.reason)
            principal_var.set(principal)
            return True

        kwargs = {
            "request_deserializer": _tolerant(handler.request_deserializer),
            "response_serializer": handler.response_serializer,
        }

        async def refuse_undecodable(request, context) -> None:
            if isinstance(request, Undecodable):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "request: not a valid protobuf message")
        if handler.unary_unary:
            inner_uu = handler.unary_unary

            async def unary_unary(request, context):
                pending_record: list = []
                await admit(request, context, pending_record)
                await refuse_undecodable(request, context)
                try:
                    return await inner_uu(request, context)
                finally:
                    try:
                        await settle_record(pending_record)
                    except Denied as denied:
                        await context.abort(denied.code, denied.reason)

            return grpc.unary_unary_rpc_method_handler(unary_unary, **kwargs)
        if handler.unary_stream:
            inner_us = handler.unary_stream

            async def unary_stream(request, context):
                await admit(request, context)
                await refuse_undecodable(request, context)
                await drain_server_stream(inner_us, request, context)

            return grpc.unary_stream_rpc_method_handler(unary_stream, **kwargs)
        # No streaming-request methods on the gateway: refuse rather than pass unchecked.
        async def refuse(request_or_iterator, context):
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not served")

        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(refuse, **kwargs)
        return grpc.stream_stream_rpc_method_handler(refuse, **kwargs)


def grpc_interceptors(app: web.Application) -> list[grpc.aio.ServerInterceptor]:
    return [GuardInterceptor(lambda: app[GUARD])]


# HTTP

HTTP_STATUS = {
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
}


def _http_policy(request: web.Request) -> tuple[str, Callable[[bytes], Call] | None]:
    """(action, describe(body)) for a matched route."""
    from services.gateway.http_api import parse_json_message

    def body_of(message_type, describe):
        return lambda body: describe(parse_json_message(body, message_type))

    path = request.match_info.route.resource.canonical if request.match_info.route.resource else ""
    method = request.method
    if method == "POST" and path in ("/v1/queries", "/v1/queries/stream"):
        return authz.QUERY, body_of(gateway_pb2.AssetQueryRequest, describe_query)
    if method == "GET" and path == "/v1/agencies":
        return authz.LIST_AGENCIES, lambda body: describe_list_agencies()
    if method == "POST" and path == "/v1/cases":
        return authz.REGISTER_CASE, body_of(control_pb2.RegisterCaseRequest, describe_register)
    if method == "GET" and path == "/v1/cases/{case_number}":
        return authz.GET_CASE, lambda body: describe_get_case(request.match_info["case_number"])
    kind = HTTP_ACTIONS.get(path) if method == "POST" else None
    if kind is not None:
        return ctl.kind_label(kind), body_of(ctl.REQUEST_TYPES[kind], describe_action(kind))
    return authz.ADMINISTER, lambda body: describe_admin()


HTTP_ACTIONS = {
    "/v1/freezes": ctl.FREEZE,
    "/v1/freezes/{hold_id}/renew": ctl.RENEW_FREEZE,
    "/v1/freezes/{hold_id}/release": ctl.RELEASE_FREEZE,
    "/v1/freezes/{hold_id}/deduct": ctl.DEDUCT,
    "/v1/deductions": ctl.DEDUCT,
    "/v1/seals": ctl.SEAL,
    "/v1/seals/{hold_id}/renew": ctl.RENEW_SEAL,
    "/v1/seals/{hold_id}/release": ctl.RELEASE_SEAL,
    "/v1/transfers": ctl.TRANSFER,
}


def denied_response(denied: Denied) -> web.Response:
    from services.gateway.control_http import _FIELD_PREFIX
    from services.gateway.http_api import error_response

    status = HTTP_STATUS.get(denied.code, 403)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="chakong", error="invalid_token"'
    if denied.retry_after:
        headers["Retry-After"] = denied.retry_after
    match = _FIELD_PREFIX.match(denied.reason)
    return error_response(status, denied.reason, match.group(1) if match else None, headers=headers or None)


@web.middleware
async def guard_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Guard.admit before every HTTP route but the exempt ones and unmatched paths (their 404/405)."""
    if request.match_info.http_exception is not None or request.path in EXEMPT_HTTP_PATHS:
        return await handler(request)
    action, describe = _http_policy(request)
    body = await request.read() if request.body_exists else b""
    # A streamed answer is sent by the handler itself: its record must be
    # written before the handler starts.
    pending_record: list | None = None if request.path.endswith("/stream") else []
    try:
        principal = await request.app[GUARD].admit(
            lambda: bearer_token(request.headers.get("Authorization")), lambda: describe(body), action,
            pending_record=pending_record,
        )
    except FieldError:
        return await handler(request)
    except Denied as denied:
        return denied_response(denied)
    request[PRINCIPAL] = principal
    principal_var.set(principal)
    try:
        response = await handler(request)
    finally:
        if pending_record:
            try:
                await settle_record(pending_record)
            except Denied as denied:
                return denied_response(denied)
    return response
