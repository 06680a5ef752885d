"""The HTTP/JSON face of the control actions: cases, freezes, deductions, seals, transfers.

Statuses: 200 done (or the same request replayed), 201 a case registered
now, 202 accepted but PENDING (the agency has not answered; the gateway
keeps driving it with the same key: ask again with the same
Idempotency-Key, or GET the case), 400 invalid, 403 not allowed, 404 not
found, 409 a conflict with what is recorded (ALREADY_EXISTS: key reused for
another request, duplicate; FAILED_PRECONDITION: a rule refuses it now, for
example excessive seizure; the body's error.code says which), 503 the
ledger is unreachable. 409 rather than 412 for FAILED_PRECONDITION: 412 is
defined for conditional request headers, which this API does not use.
"""

import logging
import re
from collections.abc import AsyncIterator

import grpc
from aiohttp import web
from google.protobuf.message import Message

from protos.gateway.v1 import control_pb2
from services.common.validation import FieldError
from services.gateway import control as ctl
from services.gateway.control import ControlError, ControlService, action_message
from services.gateway.http_api import FANOUT, SETTINGS, _dumps, parse_json_message
from services.gateway.jsonmap import message_to_dict
from services.gateway.ledger import PENDING, Ledger, LedgerUnavailable, redact

logger = logging.getLogger(__name__)

CONTROL = web.AppKey("control", ControlService)
IDEMPOTENCY_HEADER = "Idempotency-Key"

HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
}
_FIELD_PREFIX = re.compile(r"^([a-z_][a-z0-9_.\[\]]*): ")


async def control_ledger(app: web.Application) -> AsyncIterator[None]:
    """Open the ledger (migrating it), start re-driving; stop and close at cleanup."""
    settings = app[SETTINGS]
    ledger = await Ledger.open(settings.ledger_url, settings.ledger_path, ctl.now_us())
    logger.info("ledger: %s", redact(settings.ledger_url) or f"sqlite {settings.ledger_path}")
    service = ControlService(ledger, app[FANOUT].clients, settings)
    app[CONTROL] = service
    await service.start()
    try:
        yield
    finally:
        await service.close()
        await ledger.close()


def add_control_routes(app: web.Application) -> None:
    router = app.router
    router.add_post("/v1/cases", post_case)
    router.add_get("/v1/cases/{case_number}", get_case)
    router.add_post("/v1/freezes", action_handler(ctl.FREEZE))
    router.add_post("/v1/freezes/{hold_id}/renew", action_handler(ctl.RENEW_FREEZE))
    router.add_post("/v1/freezes/{hold_id}/release", action_handler(ctl.RELEASE_FREEZE))
    router.add_post("/v1/freezes/{hold_id}/deduct", action_handler(ctl.DEDUCT))
    router.add_post("/v1/deductions", action_handler(ctl.DEDUCT))
    router.add_post("/v1/seals", action_handler(ctl.SEAL))
    router.add_post("/v1/seals/{hold_id}/renew", action_handler(ctl.RENEW_SEAL))
    router.add_post("/v1/seals/{hold_id}/release", action_handler(ctl.RELEASE_SEAL))
    router.add_post("/v1/transfers", action_handler(ctl.TRANSFER))


def control_error(exc: ControlError | LedgerUnavailable, headers=None) -> web.Response:
    if isinstance(exc, LedgerUnavailable):
        logger.error("ledger unavailable: %s", exc)
        code, message = grpc.StatusCode.UNAVAILABLE, "the gateway's ledger is unavailable; retry with the same key"
    else:
        code, message = exc.code, exc.message
    error: dict[str, str] = {"code": code.name}
    match = _FIELD_PREFIX.match(message)
    if match:
        error["field"] = match.group(1)
    error["message"] = message
    body: dict = {"error": error}
    action = getattr(exc, "action", None)
    if action is not None:
        body["action"] = message_to_dict(action_message(action))
    return web.json_response(body, status=HTTP_STATUS.get(code, 502), headers=headers, dumps=_dumps)


async def post_case(request: web.Request) -> web.Response:
    message = parse_json_message(await request.read(), control_pb2.RegisterCaseRequest)
    try:
        case, created = await request.app[CONTROL].register_case(message)
    except (ControlError, LedgerUnavailable) as exc:
        return control_error(exc)
    return web.json_response(message_to_dict(case), status=201 if created else 200, dumps=_dumps)


async def get_case(request: web.Request) -> web.Response:
    try:
        case = await request.app[CONTROL].get_case(request.match_info["case_number"])
    except (ControlError, LedgerUnavailable) as exc:
        return control_error(exc)
    return web.json_response(message_to_dict(case), dumps=_dumps)


def action_handler(kind: int):
    request_type = ctl.REQUEST_TYPES[kind]

    async def handle(request: web.Request) -> web.Response:
        message = parse_json_message(await request.read(), request_type)
        _merge_path_and_header(request, message, kind)
        try:
            submitted = await request.app[CONTROL].submit(kind, message)
        except ControlError as exc:
            key = exc.action.idempotency_key if exc.action else message.idempotency_key
            return control_error(exc, {IDEMPOTENCY_HEADER: key} if key else None)
        except LedgerUnavailable as exc:
            return control_error(exc)
        action = submitted.action
        return web.json_response(
            message_to_dict(action_message(action)),
            status=202 if action.state == PENDING else 200,
            headers={IDEMPOTENCY_HEADER: action.idempotency_key},
            dumps=_dumps,
        )

    handle.__name__ = f"post_{ctl.kind_label(kind)}"
    return handle


def _merge_path_and_header(request: web.Request, message: Message, kind: int) -> None:
    """The hold in the path and the key in the header fill the message; a
    body that says otherwise is refused rather than guessed at."""
    hold_id = request.match_info.get("hold_id")
    if hold_id is not None:
        if message.hold_id and message.hold_id != hold_id:
            raise FieldError("hold_id", f"the body names {message.hold_id} but the path {hold_id}")
        if kind == ctl.DEDUCT and message.HasField("account"):
            raise FieldError("account", "deducting from a freeze: leave account out (or POST /v1/deductions)")
        message.hold_id = hold_id
    header_key = request.headers.get(IDEMPOTENCY_HEADER, "")
    if header_key:
        if message.idempotency_key and message.idempotency_key != header_key:
            raise FieldError("idempotency_key", f"differs from the {IDEMPOTENCY_HEADER} header")
        message.idempotency_key = header_key
