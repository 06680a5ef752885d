"""The HTTP face of the agency admin API: POST /v1/agencies, PUT and DELETE /v1/agencies/{agency_id}.

Bodies are shaped like the items of GET /v1/agencies (id, kind as "bank",
"vehicle" or "realestate", name, address, timeout_ms), so what an
administrator reads is what they send. Answers: 201 registered, 200 updated
or removed, 400 a field breaks a rule, 403 not an admin, 404 no such agency
registered at run time, 409 the ID is taken or belongs to the registry file.
"""

import json

from aiohttp import web

from protos.gateway.v1 import admin_pb2
from services.common.validation import MAX_NAME_CHARS, FieldError, require_text
from services.gateway.access.door import Admitted
from services.gateway.admin.operations import REGISTER_AGENCY, REMOVE_AGENCY, UPDATE_AGENCY
from services.gateway.agencies.registry import KINDS, AgencyConfig
from services.gateway.http_api.json_io import dumps
from services.gateway.http_api.routes import CORE, Answer, Route

_FIELDS = {"id": "agency_id", "kind": "kind", "name": "display_name", "address": "address", "timeout_ms": "timeout_ms"}


def agency_json(config: AgencyConfig) -> dict:
    return {"id": config.id, "kind": config.kind, "name": config.name, "address": config.address,
            "timeout_ms": config.timeout_ms, "source": config.source, "external": True}


def _entry(request: web.Request, body: bytes) -> admin_pb2.AgencyEntry:
    try:
        document = json.loads(body or b"{}")
    except ValueError as exc:
        raise FieldError("body", f"is not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise FieldError("body", "must be a JSON object: id, kind, name, address, timeout_ms")
    for key in document:
        if key not in _FIELDS:
            raise FieldError(key, f"is not a field of an agency ({', '.join(_FIELDS)})")
    path_id = request.match_info.get("agency_id")
    if path_id is not None:
        if document.setdefault("id", path_id) != path_id:
            raise FieldError("id", f"the body names {document['id']} but the path {path_id}")
    kind = document.get("kind", "")
    if kind not in KINDS:
        raise FieldError("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    timeout = document.get("timeout_ms", 0)
    if isinstance(timeout, float) and timeout.is_integer():
        timeout = int(timeout)  # JSON has one number type: 1500.0 is the whole number 1500
    if isinstance(timeout, bool) or not isinstance(timeout, int):
        raise FieldError("timeout_ms", f"{timeout!r} is not a whole number")
    for key in ("id", "name", "address"):
        if not isinstance(document.get(key, ""), str):
            raise FieldError(key, "must be a string")
    require_text(document.get("name", ""), "name", MAX_NAME_CHARS)
    return admin_pb2.AgencyEntry(agency_id=document.get("id", ""), kind=KINDS[kind], display_name=document.get(
        "name", ""), address=document.get("address", ""), timeout_ms=timeout)


async def _answer(call, status: int, render) -> web.Response:
    # GatewayError and the ledger being down are answered by the route (routes.py).
    return web.json_response(render(await call), status=status, dumps=dumps)


async def post_agency(request: web.Request, admitted: Admitted) -> web.Response:
    return await _answer(request.app[CORE].admin.register(admitted.request()), 201, agency_json)


async def put_agency(request: web.Request, admitted: Admitted) -> web.Response:
    return await _answer(request.app[CORE].admin.update(admitted.request()), 200, agency_json)


async def delete_agency(request: web.Request, admitted: Admitted) -> web.Response:
    return await _answer(request.app[CORE].admin.remove(admitted.request()), 200,
                         lambda config: {"removed": agency_json(config)})


def admin_routes() -> list[Route]:
    errors = (
        Answer(400, "A field breaks a registry rule; error.field names it."),
        Answer(409, "ALREADY_EXISTS: the ID is taken; FAILED_PRECONDITION: it comes from the registry file."),
    )
    return [
        Route("POST", "/v1/agencies", REGISTER_AGENCY, post_agency, "registerAgency",
              "Register an agency at run time (admin role): kept in the ledger, asked at once by every gateway"
              " sharing it, in the audit trail. Always external.",
              (Answer(201, "Registered; the gateway dials it now.", "AgencyEntry"), *errors),
              parse=lambda request, body: admin_pb2.RegisterAgencyRequest(agency=_entry(request, body)),
              body_schema="AgencyEntry"),
        Route("PUT", "/v1/agencies/{agency_id}", UPDATE_AGENCY, put_agency, "updateAgency",
              "Change an agency registered at run time (admin role).",
              (Answer(200, "Changed; the gateway dials the new address now.", "AgencyEntry"), *errors),
              parse=lambda request, body: admin_pb2.UpdateAgencyRequest(agency=_entry(request, body)),
              body_schema="AgencyUpdate"),
        Route("DELETE", "/v1/agencies/{agency_id}", REMOVE_AGENCY, delete_agency, "removeAgency",
              "Remove an agency registered at run time (admin role).",
              (Answer(200, "Removed; calls in flight finish first.", "RemovedAgency"), *errors),
              parse=lambda request, body: admin_pb2.RemoveAgencyRequest(agency_id=request.match_info["agency_id"])),
    ]
