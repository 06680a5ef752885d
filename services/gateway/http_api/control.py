"""The HTTP/JSON face of the control actions: cases, and one route per declared action kind route.

Statuses: 200 done (or the same request replayed), 201 a case registered
now, 202 accepted but PENDING (the agency has not answered; the gateway
keeps driving it with the same key: ask again with the same
Idempotency-Key, or GET the case), 400 invalid, 403 not allowed, 404 not
found, 409 a conflict with what is recorded (ALREADY_EXISTS: key reused for
another request, duplicate; FAILED_PRECONDITION: a rule refuses it now, for
example excessive seizure; the body's error.code says which), 503 the
ledger is unreachable. The table is errors.HTTP_STATUS.
"""

from aiohttp import web
from google.protobuf.message import Message

from protos.gateway.v1 import control_pb2
from services.common.validation import FieldError
from services.gateway.access.door import Admitted
from services.gateway.control.kinds import KINDS, ActionKind
from services.gateway.control.messages import action_message
from services.gateway.control.operations import GET_CASE, REGISTER_CASE
from services.gateway.errors import GatewayError
from services.gateway.http_api.json_io import dumps
from services.gateway.http_api.jsonmap import message_to_dict
from services.gateway.http_api.routes import CORE, IDEMPOTENCY_HEADER, Answer, Route, error_body
from services.gateway.ledger import PENDING


async def post_case(request: web.Request, admitted: Admitted) -> web.Response:
    case, created = await request.app[CORE].control.register_case(admitted.request())
    return web.json_response(message_to_dict(case), status=201 if created else 200, dumps=dumps)


async def get_case(request: web.Request, admitted: Admitted) -> web.Response:
    case = await request.app[CORE].control.get_case(admitted.request().case_number)
    return web.json_response(message_to_dict(case), dumps=dumps)


def _case_in_path(request: web.Request, body: bytes) -> control_pb2.GetCaseRequest:
    return control_pb2.GetCaseRequest(case_number=request.match_info["case_number"])


def action_handler(kind: ActionKind):
    async def handle(request: web.Request, admitted: Admitted) -> web.Response:
        message = admitted.request()
        _merge_path_and_header(request, message, kind)
        try:
            submitted = await request.app[CORE].control.submit(kind.kind, message)
        except GatewayError as exc:
            # The key goes back with a refusal too: the caller retries with it.
            key = exc.action.idempotency_key if exc.action else message.idempotency_key
            return error_body(exc, {IDEMPOTENCY_HEADER: key} if key else None)
        action = submitted.action
        return web.json_response(
            message_to_dict(action_message(action)),
            status=202 if action.state == PENDING else 200,
            headers={IDEMPOTENCY_HEADER: action.idempotency_key},
            dumps=dumps,
        )

    return handle


def _merge_path_and_header(request: web.Request, message: Message, kind: ActionKind) -> None:
    """The hold in the path and the key in the header fill the message; a
    body that says otherwise is refused rather than guessed at."""
    hold_id = request.match_info.get("hold_id")
    if hold_id is not None:
        if message.hold_id and message.hold_id != hold_id:
            raise FieldError("hold_id", f"the body names {message.hold_id} but the path {hold_id}")
        if kind.kind == control_pb2.ACTION_KIND_DEDUCT and message.HasField("account"):
            raise FieldError("account", "deducting from a freeze: leave account out (or POST /v1/deductions)")
        message.hold_id = hold_id
    header_key = request.headers.get(IDEMPOTENCY_HEADER, "")
    if header_key:
        if message.idempotency_key and message.idempotency_key != header_key:
            raise FieldError("idempotency_key", f"differs from the {IDEMPOTENCY_HEADER} header")
        message.idempotency_key = header_key


_KEY = (IDEMPOTENCY_HEADER,)
# What every action route answers besides the door's refusals; the error bodies carry the action and the key.
ACTION_ANSWERS = (
    Answer(200, "Done (SUCCEEDED), or the same request replayed.", control_pb2.Action, _KEY),
    Answer(202, "Recorded but PENDING: the agency has not answered yet. The gateway keeps driving it with the"
                " same agency key; ask again with the same Idempotency-Key, or GET the case.", control_pb2.Action, _KEY),
    Answer(403, "Not allowed: the subject is not a debtor of the case, another court's case or another case's"
                " hold.", "ActionError", _KEY),
    Answer(404, "Unknown case, agency, hold or asset.", "ActionError", _KEY),
    Answer(409, "Conflict: ALREADY_EXISTS (the key was used for another request, or a duplicate the agency"
                " refused) or FAILED_PRECONDITION (a rule refuses it now, e.g. excessive seizure); see error.code.",
           "ActionError", _KEY),
    Answer(502, "The agency answered with an error the gateway does not expect (error.code is its gRPC code);"
                " the action is recorded FAILED.", "ActionError", _KEY),
)


def control_routes() -> list[Route]:
    routes = [
        Route("POST", "/v1/cases", REGISTER_CASE, post_case, "registerCase",
              "Register a case with its debtors, the amount owed and the enforcement costs (admin).",
              (Answer(201, "Registered now.", control_pb2.Case),
               Answer(200, "Already registered with the same content.", control_pb2.Case),
               Answer(409, "ALREADY_EXISTS: registered with other debtors or amounts."))),
        Route("GET", "/v1/cases/{case_number}", GET_CASE, get_case, "getCase",
              "The case, its holds as last reported by the agencies, and every action with its state.",
              (Answer(200, "The case.", control_pb2.Case),), parse=_case_in_path),
    ]
    for kind in KINDS.values():
        handler = action_handler(kind)
        routes.extend(
            Route("POST", http.path, kind.operation, handler, http.operation_id, http.summary, ACTION_ANSWERS,
                  headers=_KEY)
            for http in kind.http
        )
    return routes
