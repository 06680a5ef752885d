"""Request IDs at the gateway's edge: taken from the client (header, metadata or body) or made here, and returned."""

import uuid

import grpc
from aiohttp import web

from services.common.logs import REQUEST_ID_METADATA_KEY, request_id_var
from services.common.validation import FieldError, validate_token

HEADER = "X-Request-Id"
REQUEST_ID = web.RequestKey("request_id", str)


def usable(value: str | None) -> str:
    """The client's ID if it is a valid token; a malformed header is ignored, not an error."""
    if not value:
        return ""
    try:
        validate_token(value, "request_id", required=False)
    except FieldError:
        return ""
    return value


def from_metadata(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_METADATA_KEY:
            return usable(value)
    return ""


@web.middleware
async def request_ids(request: web.Request, handler) -> web.StreamResponse:
    """Every HTTP request runs (and logs) under one ID, echoed in X-Request-Id.

    A query whose body names its own request_id answers with that one (the
    handler sets the header itself)."""
    request_id = usable(request.headers.get(HEADER)) or uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    request_id_var.set(request_id)
    response = await handler(request)
    if HEADER not in response.headers and not response.prepared:
        response.headers[HEADER] = request_id
    return response
