"""HTTP request IDs: taken from the client's X-Request-Id (or the query body) or made here, and returned."""

import uuid

from aiohttp import web

from services.common.logs import request_id_var
from services.common.validation import usable_request_id

HEADER = "X-Request-Id"
REQUEST_ID = web.RequestKey("request_id", str)


@web.middleware
async def request_ids(request: web.Request, handler) -> web.StreamResponse:
    """Every HTTP request runs (and logs) under one ID, echoed in X-Request-Id.

    A query whose body names its own request_id answers with that one (the
    handler sets the header itself)."""
    request_id = usable_request_id(request.headers.get(HEADER)) or uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    request_id_var.set(request_id)
    response = await handler(request)
    if HEADER not in response.headers and not response.prepared:
        response.headers[HEADER] = request_id
    return response
