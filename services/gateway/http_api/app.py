"""The HTTP/JSON face of the gateway: an aiohttp app factory over a GatewayCore."""

import contextlib
import functools
from collections.abc import Callable
import logging

from aiohttp import web
from prometheus_client.exposition import choose_encoder

from protos.gateway.v1 import gateway_pb2
from services.common.metrics_http import scrape_registry
from services.common.validation import FieldError
from services.gateway.access.door import Admitted
from services.gateway.http_api import request_ids
from services.gateway.batch.rows import TooManyRows
from services.gateway.http_api.admin import admin_routes
from services.gateway.http_api.batch import batch_routes
from services.gateway.http_api.control import control_routes
from services.gateway.http_api.enforce import enforce_routes
from services.gateway.http_api.json_io import MAX_BODY_BYTES, UnsupportedMediaType, dumps, error_response
from services.gateway.http_api.jsonmap import message_to_dict
from services.gateway.http_api.lifecycle import DRAIN, Drain, refuse_when_stopping
from services.gateway.http_api.metrics import create_series, http_metrics
from services.gateway.http_api.openapi import openapi_document
from services.gateway.http_api.reports import report_routes
from services.gateway.http_api.routes import CORE, Answer, OpenRoute, Route, add_routes
from services.gateway.query.fanout import PreparedQuery
from services.gateway.query.metrics import QueryMetrics, query_metrics
from services.gateway.query.operations import LIST_AGENCIES, QUERY_ASSETS
from services.gateway.root import GatewayCore

logger = logging.getLogger(__name__)

OPENAPI = web.AppKey("openapi", Callable[[tuple[tuple[str, str], ...]], dict])


@web.middleware
async def json_errors(request: web.Request, handler) -> web.StreamResponse:
    """Every error, ours or aiohttp's, as the documented JSON error body."""
    try:
        return await handler(request)
    except UnsupportedMediaType as exc:
        return error_response(415, str(exc), exc.field)
    except TooManyRows as exc:
        return error_response(413, str(exc), exc.field)
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


def routes() -> list[Route]:
    """Every route behind the door."""
    return [
        Route(
            "POST", "/v1/queries", QUERY_ASSETS, post_query, "queryAssets",
            "Query every (or the named) agency; answer when all answered or at the deadline.",
            (Answer(200, "All results, complete or partial (failed agencies are reported inside).",
                    gateway_pb2.AssetQueryResponse, headers=("X-Request-Id",)),),
        ),
        Route(
            "POST", "/v1/queries/stream", QUERY_ASSETS, post_query_stream, "streamAssets",
            "The same query as server-sent events, each agency's result as it arrives.",
            (Answer(200, "An SSE stream: one `event: result` per agency in arrival order (its `data:` is one line"
                         " of AgencyResult JSON), then one `event: final` whose data is an AssetQueryResponse with"
                         " summary, complete and latency_ms and no results. Each event has an increasing `id:`.",
                    "QueryEvents", headers=("X-Request-Id",)),),
            api="http_stream",
        ),
        Route(
            "GET", "/v1/agencies", LIST_AGENCIES, get_agencies, "listAgencies",
            "The agencies this gateway asks, in registry order, with their health.",
            (Answer(200, "The agency registry as loaded now.", "AgencyList"),),
            parse=lambda request, body: LIST_AGENCIES.request_type(),
        ),
        *control_routes(),
        *enforce_routes(),
        *admin_routes(),
        *report_routes(),
        *batch_routes(),
    ]


def open_routes() -> list[OpenRoute]:
    """Probes, scrapes and documents: no token, no audit record."""
    return [
        OpenRoute("GET", "/healthz", get_healthz, "health", "Liveness: the process answers.",
                  (Answer(200, "Alive.", "Status"),)),
        OpenRoute("GET", "/readyz", get_readyz, "ready",
                  "Readiness: registry loaded, channels open, ledger reachable and the gRPC server started.",
                  (Answer(200, "Ready for queries.", "Status"), Answer(503, "Not ready; `reasons` says why.", "Status"))),
        OpenRoute("GET", "/metrics", get_metrics, "metrics",
                  "Prometheus metrics (text exposition, or OpenMetrics when asked by Accept).",
                  (Answer(200, "The process's metrics.", "Metrics"),)),
        OpenRoute("GET", "/openapi.json", get_openapi, "openapi", "This document.",
                  (Answer(200, "OpenAPI 3.1 document.", "OpenApi"),)),
    ]


def create_app(core: GatewayCore) -> web.Application:
    """The HTTP API over `core`; the caller (server.py) opens and closes the core."""
    # Metrics outermost, so every answer is counted; then request_ids, so
    # error answers carry X-Request-Id too.
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[http_metrics, request_ids.request_ids, refuse_when_stopping, json_errors],
    )
    app[CORE] = core
    app[DRAIN] = Drain()
    guarded, probes = routes(), open_routes()
    # The document is made from the same declarations as the router: a route added is a path documented.
    app[OPENAPI] = functools.lru_cache(maxsize=4)(
        functools.partial(openapi_document, guarded, probes, core.settings.query_deadline_ms)
    )
    add_routes(app, guarded, probes)
    create_series(app)
    return app


async def post_query(request: web.Request, admitted: Admitted) -> web.Response:
    metrics = query_metrics("http")
    query = _prepare(request, admitted, metrics)
    response = await request.app[CORE].fanout.query(query, "http")
    admitted.result = _answered(response)
    # proto3 JSON, proto field names, every field printed (defaults too): a
    # client should see `complete: false`, not infer it from absence.
    return web.json_response(message_to_dict(response), headers={"X-Request-Id": query.request_id}, dumps=dumps)


async def post_query_stream(request: web.Request, admitted: Admitted) -> web.StreamResponse:
    """Server-sent events: `result` per agency as it arrives, then `final`."""
    metrics = query_metrics("http_stream")
    query = _prepare(request, admitted, metrics)
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
        async with contextlib.aclosing(request.app[CORE].fanout.stream(query, "http_stream")) as events:
            number = 0
            async for event in events:
                number += 1
                if event.HasField("result"):
                    name, data = "result", message_to_dict(event.result)
                else:
                    name, data = "final", message_to_dict(event.final)
                    admitted.result = _answered(event.final)
                await response.write(f"id: {number}\nevent: {name}\ndata: {dumps(data)}\n\n".encode())
    except ConnectionResetError:
        # The client went away; aclosing has cancelled the outstanding calls.
        logger.debug("query %s: stream client disconnected", query.request_id)
        return response
    await response.write_eof()
    return response


def _answered(response: gateway_pb2.AssetQueryResponse) -> str:
    """What the audit trail's answered record says of a query (the command centre counts partial ones)."""
    return f"HTTP 200 {'complete' if response.complete else 'partial'}"


def _prepare(request: web.Request, admitted: Admitted, metrics: QueryMetrics) -> PreparedQuery:
    # A body that did not parse was counted (rejected) by the door.
    message = admitted.request()
    if not message.request_id:
        message.request_id = request[request_ids.REQUEST_ID]
    try:
        return request.app[CORE].fanout.prepare(message)
    except FieldError:
        metrics.rejected(message.case.court_code)
        raise


async def get_agencies(request: web.Request, admitted: Admitted) -> web.Response:
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
            "source": client.config.source,
            "external": client.config.external or client.config.source != "file",
        }
        for client in request.app[CORE].fanout.clients.all
    ]
    return web.json_response({"agencies": agencies}, dumps=dumps)


async def get_healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def get_readyz(request: web.Request) -> web.Response:
    reasons = await request.app[CORE].unready_reasons()
    if reasons:
        return web.json_response({"status": "not ready", "reasons": reasons}, status=503)
    return web.json_response({"status": "ready"})


async def get_metrics(request: web.Request) -> web.Response:
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return web.Response(body=encoder(scrape_registry()), headers={"Content-Type": content_type})


async def get_openapi(request: web.Request) -> web.Response:
    # The agency IDs a request may name are the registry's now: it reloads.
    agencies = tuple((client.config.id, client.config.kind) for client in request.app[CORE].fanout.clients.all)
    return web.json_response(request.app[OPENAPI](agencies), dumps=dumps)
