"""HTTP routes behind the door: each declares its operation, and the door runs before its handler.

A route's handler gets the `Admitted` request (parsed once, by the route's
`parse`); it never parses the body again. What the core refuses it with
(GatewayError, the ledger down) is answered here, as the documented error body. Routes without an operation are
the probes and documents (/healthz, /readyz, /metrics, /openapi.json),
registered apart in app.py.
"""

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from google.protobuf.message import Message

from services.gateway.access.door import Admitted, Operation
from services.gateway.config import GatewaySettings
from services.gateway.control.messages import action_message
from services.gateway.errors import GatewayError, field_of, http_status, ledger_unavailable
from services.gateway.http_api.json_io import check_media_type, error_response, parse_json_message
from services.gateway.http_api.jsonmap import message_to_dict
from services.gateway.ledger import LedgerUnavailable
from services.gateway.root import GatewayCore
from services.security.tokens import bearer_token

logger = logging.getLogger(__name__)

# From the end of the headers to the end of the body (the headers' own timeout: limits.py).
BODY_TIMEOUT_S = 10.0
CORE = web.AppKey("core", GatewayCore)
IDEMPOTENCY_HEADER = "Idempotency-Key"

Handler = Callable[[web.Request, Admitted], Awaitable[web.StreamResponse]]
Parse = Callable[[web.Request, bytes], Message]


@dataclass(frozen=True)
class Answer:
    """One status a route answers, as the OpenAPI document states it.

    `body` is a protobuf message type (its proto3 JSON), the name of a schema
    of the document's own (openapi.py), or None for the Error body.
    """

    status: int
    description: str
    body: type[Message] | str | None = None
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Route:
    """A route behind the door, and what the OpenAPI document says of it (openapi.py reads these)."""

    method: str
    path: str
    operation: Operation
    handler: Handler
    operation_id: str
    summary: str
    # What it answers besides the door's refusals (openapi.DOOR_ANSWERS).
    answers: tuple[Answer, ...]
    # The request message; by default the JSON body as the operation's request type.
    parse: Parse | None = None
    # The query metrics' api label, for what the door refuses.
    api: str = "http"
    # Request headers it reads besides Authorization (openapi.HEADERS).
    headers: tuple[str, ...] = ()
    # Query parameters it reads (openapi._QUERY_PARAMETERS).
    query: tuple[str, ...] = ()
    # A JSON body its own `parse` reads: the name of the document's schema for it (openapi.py).
    body_schema: str | None = None
    # A body larger than the app's 64 KiB (a batch's case list): its own limit from the settings, 413 beyond.
    body_limit: Callable[[GatewaySettings], int] | None = None

    @property
    def has_body(self) -> bool:
        return self.parse is None or self.body_schema is not None

    def read(self, request: web.Request, body: bytes) -> Message:
        if self.parse is not None:
            return self.parse(request, body)
        check_media_type(request.content_type if "Content-Type" in request.headers else "")
        return parse_json_message(body, self.operation.request_type)


@dataclass(frozen=True)
class OpenRoute:
    """A probe or document: no token, no door, no audit record."""

    method: str
    path: str
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    operation_id: str
    summary: str
    answers: tuple[Answer, ...]


def error_body(error: GatewayError, headers: dict | None = None) -> web.Response:
    """A GatewayError as the documented error body, with the recorded action when an agency refused it."""
    status = http_status(error.code)
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="chakong", error="invalid_token"'
    if error.retry_after:
        headers["Retry-After"] = error.retry_after
    extra = {"action": message_to_dict(action_message(error.action))} if error.action is not None else {}
    return error_response(status, error.message, field_of(error.message), headers=headers or None,
                          code=error.code.name, **extra)


def _ledger_error(exc: LedgerUnavailable) -> GatewayError:
    logger.error("ledger unavailable: %s", exc)
    return ledger_unavailable()


def _guarded(route: Route):
    async def handle(request: web.Request) -> web.StreamResponse:
        door = request.app[CORE].door
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):
                if route.body_limit is not None and request.body_exists:
                    body = await _read_up_to(request, route.body_limit(request.app[CORE].settings))
                else:
                    body = await request.read() if request.body_exists else b""
        except BodyTooLarge as exc:
            return error_response(413, f"body: must be at most {exc.limit} bytes", "body",
                                  headers={"Connection": "close"})
        except TimeoutError:
            return error_response(408, f"body: must arrive within {BODY_TIMEOUT_S:g} s", "body",
                                  headers={"Connection": "close"})
        try:
            admitted = await door.admit(
                lambda: bearer_token(request.headers.get("Authorization")), route.operation,
                lambda: route.read(request, body), api=route.api,
            )
        except GatewayError as denied:
            return error_body(denied)
        status = "aborted"
        try:
            try:
                response = await route.handler(request, admitted)
            except GatewayError as refused:
                response = error_body(refused)
            except LedgerUnavailable as exc:
                response = error_body(_ledger_error(exc))
            status = str(response.status)
            return response
        finally:
            door.answered(admitted, f"HTTP {status}")

    handle.__name__ = f"{route.method.lower()}_{route.operation.action}"
    return handle


class BodyTooLarge(Exception):
    def __init__(self, limit: int):
        self.limit = limit


async def _read_up_to(request: web.Request, limit: int) -> bytes:
    """The body, refused as soon as it passes `limit` (or says it will)."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(limit)
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def add_routes(app: web.Application, routes: list[Route], open_routes: list[OpenRoute]) -> None:
    for route in routes:
        app.router.add_route(route.method, route.path, _guarded(route))
    for probe in open_routes:
        # add_get: the probes answer HEAD too, as they always have.
        add = app.router.add_get if probe.method == "GET" else functools.partial(app.router.add_route, probe.method)
        add(probe.path, probe.handler)
