"""The HTTP/JSON face of the gateway: an aiohttp app factory."""

import contextlib
import functools
import json
import logging
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from prometheus_client.exposition import choose_encoder

from protos.gateway.v1 import gateway_pb2
from services.common.validation import FieldError
from services.gateway.agencies import AgencyClients
from services.gateway.agency_tls import agency_credentials
from services.gateway.config import GatewaySettings
from services.gateway import request_ids
from services.gateway.fanout import FanOut, PreparedQuery
from services.gateway.health import ejection_policy
from services.gateway.lifecycle import DRAIN, Drain, ledger_unready, refuse_when_stopping
from services.gateway.jsonmap import message_to_dict
from services.gateway.metrics import QueryMetrics, query_metrics
from services.gateway.openapi import HTTP_ERROR_CODES, openapi_document
from services.gateway.registry import AgencyConfig
from services.gateway.workers import scrape_registry

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


@dataclass
class GatewayState:
    """What /readyz reports; server.py flips grpc_serving once the gRPC server runs."""

    grpc_serving: bool = False


SETTINGS = web.AppKey("settings", GatewaySettings)
REGISTRY_ENTRIES = web.AppKey("registry", tuple)
STATE = web.AppKey("state", GatewayState)
FANOUT = web.AppKey("fanout", FanOut)
OPENAPI = web.AppKey("openapi", dict)

_dumps = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


def error_response(status: int, message: str, field: str | None = None, headers=None) -> web.Response:
    error: dict[str, str] = {"code": HTTP_ERROR_CODES.get(status, "UNKNOWN")}
    if field is not None:
        error["field"] = field
    error["message"] = message
    return web.json_response({"error": error}, status=status, headers=headers, dumps=_dumps)


@web.middleware
async def json_errors(request: web.Request, handler) -> web.StreamResponse:
    """Every error, ours or aiohttp's, as the documented JSON error body."""
    try:
        return await handler(request)
    except FieldError as exc:
        return error_response(400, str(exc), exc.field)
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, f"body: must be at most {MAX_BODY_BYTES} bytes", "body")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(exc.status, exc.reason, headers=headers)
    except Exception:
        logger.exception("%s %s failed", request.method, request.path)
        return error_response(500, "internal error; see the gateway log")


def create_app(
    settings: GatewaySettings, registry: tuple[AgencyConfig, ...], state: GatewayState | None = None
) -> web.Application:
    """The HTTP API over the agencies in `registry`; `state` is shared with server.py for /readyz."""
    # Here, not at the top: auth builds on this module's helpers.
    from services.gateway.auth import guard_middleware, security_guard

    # request_ids outermost, so error answers carry X-Request-Id too.
    app = web.Application(
        client_max_size=MAX_BODY_BYTES, middlewares=[request_ids.request_ids, refuse_when_stopping, json_errors, guard_middleware]
    )
    app[SETTINGS] = settings
    app[REGISTRY_ENTRIES] = registry
    app[STATE] = state or GatewayState()
    app[DRAIN] = Drain()
    app[OPENAPI] = openapi_document(settings.query_deadline_ms)
    app.cleanup_ctx.append(agency_channels)
    from services.gateway.reload import registry_reloader

    # Right after the channels: a reload edits the set they are in.
    app.cleanup_ctx.append(registry_reloader)
    # Here, not at the top: control_http builds on this module's helpers.
    from services.gateway.control_http import add_control_routes, control_ledger

    # After the channels: it uses them, and is cleaned up before they close.
    app.cleanup_ctx.append(control_ledger)
    # After the ledger: authorization reads cases from it; opens the audit store.
    app.cleanup_ctx.append(security_guard)
    add_control_routes(app)
    app.router.add_post("/v1/queries", post_query)
    app.router.add_post("/v1/queries/stream", post_query_stream)
    app.router.add_get("/v1/agencies", get_agencies)
    app.router.add_get("/healthz", get_healthz)
    app.router.add_get("/readyz", get_readyz)
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/openapi.json", get_openapi)
    return app


async def agency_channels(app: web.Application) -> AsyncIterator[None]:
    """One channel per agency for the app's lifetime; the gRPC API shares them through app[FANOUT]."""
    clients = AgencyClients(
        app[REGISTRY_ENTRIES], ejection_policy(app[SETTINGS]), credentials=agency_credentials(app[SETTINGS])
    )
    fanout = FanOut(clients, app[SETTINGS].query_deadline_ms)
    app[FANOUT] = fanout
    try:
        yield
    finally:
        await fanout.aclose()
        await clients.close()


async def post_query(request: web.Request) -> web.Response:
    metrics = query_metrics("http")
    query = await _prepare(request, metrics)
    response = await request.app[FANOUT].query(query, "http")
    # proto3 JSON, proto field names, every field printed (defaults too): a
    # client should see `complete: false`, not infer it from absence.
    return web.json_response(message_to_dict(response), headers={"X-Request-Id": query.request_id}, dumps=_dumps)


async def post_query_stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: `result` per agency as it arrives, then `final`."""
    metrics = query_metrics("http_stream")
    query = await _prepare(request, metrics)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
            "X-Request-Id": query.request_id,
        }
    )
    await response.prepare(request)
    try:
        async with contextlib.aclosing(request.app[FANOUT].stream(query, "http_stream")) as events:
            number = 0
            async for event in events:
                number += 1
                if event.HasField("result"):
                    name, data = "result", message_to_dict(event.result)
                else:
                    name, data = "final", message_to_dict(event.final)
                await response.write(f"id: {number}\nevent: {name}\ndata: {_dumps(data)}\n\n".encode())
    except ConnectionResetError:
        # The client went away; aclosing has cancelled the outstanding calls.
        logger.debug("query %s: stream client disconnected", query.request_id)
        return response
    await response.write_eof()
    return response


async def _prepare(request: web.Request, metrics: QueryMetrics) -> PreparedQuery:
    try:
        message = parse_query_request(await request.read())
        if not message.request_id:
            message.request_id = request[request_ids.REQUEST_ID]
        return request.app[FANOUT].prepare(message)
    except (FieldError, web.HTTPRequestEntityTooLarge):
        metrics.rejected.inc()
        raise


def parse_query_request(body: bytes) -> gateway_pb2.AssetQueryRequest:
    """proto3 JSON (lowerCamel or snake_case names) to an AssetQueryRequest; FieldError names the field."""
    return parse_json_message(body, gateway_pb2.AssetQueryRequest)


def parse_json_message(body: bytes, message_type: type[Message]) -> Message:
    """proto3 JSON (lowerCamel or snake_case names) to a `message_type`; FieldError names the field."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise FieldError("body", f"is not valid JSON ({exc})") from None
    descriptor = message_type.DESCRIPTOR
    if not isinstance(document, dict):
        raise FieldError("body", f"must be a JSON object (a {descriptor.name})")
    _reject_unknown_fields(document, descriptor, "")
    try:
        return json_format.ParseDict(document, message_type())
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise _parse_error_field(str(exc), descriptor) from None


@functools.cache
def _field_names(descriptor: Descriptor) -> Mapping[str, FieldDescriptor]:
    names: dict[str, FieldDescriptor] = {}
    for field in descriptor.fields:
        names[field.name] = field
        names[field.json_name] = field
    return names


def _reject_unknown_fields(document: dict, descriptor: Descriptor, prefix: str) -> None:
    # Done here rather than read from ParseError's text, so the field path is exact.
    names = _field_names(descriptor)
    for key, value in document.items():
        field = names.get(key)
        if field is None:
            raise FieldError(f"{prefix}{key}", f"is not a field of {descriptor.name}")
        if field.message_type is None or field.message_type.full_name.startswith("google.protobuf."):
            continue
        path = f"{prefix}{field.name}"
        if isinstance(value, dict):
            _reject_unknown_fields(value, field.message_type, path + ".")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    _reject_unknown_fields(item, field.message_type, f"{path}[{index}].")


_FAILED_FIELD = re.compile(r"Failed to parse (\w+) field: ")


def _parse_error_field(text: str, descriptor: Descriptor) -> FieldError:
    """Best effort: protobuf names the failing field only in the message text."""
    path = []
    for name in _FAILED_FIELD.findall(text):
        field = _field_names(descriptor).get(name) if descriptor is not None else None
        path.append(field.name if field else name)
        descriptor = field.message_type if field else None
    rule = _FAILED_FIELD.sub("", text).strip() or "cannot be parsed"
    return FieldError(".".join(path) or "body", rule)


async def get_agencies(request: web.Request) -> web.Response:
    # From the live clients, not the registry read at start: it reloads.
    agencies = [
        {
            "id": client.config.id,
            "kind": client.config.kind,
            "name": client.config.name,
            "address": client.config.address,
            "timeout_ms": client.config.timeout_ms,
            "health": client.health.state,
            "ejected_until": client.health.ejected_until,
        }
        for client in request.app[FANOUT].clients.all
    ]
    return web.json_response({"agencies": agencies}, dumps=_dumps)


async def get_healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def get_readyz(request: web.Request) -> web.Response:
    reasons = []
    if FANOUT not in request.app:
        reasons.append("agency registry not loaded")
    if not request.app[STATE].grpc_serving:
        reasons.append("gRPC server not started")
    ledger = await ledger_unready(request.app)
    if ledger:
        reasons.append(ledger)
    if reasons:
        return web.json_response({"status": "not ready", "reasons": reasons}, status=503)
    return web.json_response({"status": "ready"})


async def get_metrics(request: web.Request) -> web.Response:
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return web.Response(body=encoder(scrape_registry()), headers={"Content-Type": content_type})


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI], dumps=_dumps)
