"""HTTP API metrics: requests by route template, method and status class, and their duration.

Label values come from known sets only: the route's template as declared
("/v1/freezes/{hold_id}/renew", never the path asked for), `unmatched` for
a path no route has (or a method it does not allow), the standard methods
or `other`, and the status class. Every declared route's series exist at
zero from the app's creation.
"""

import asyncio
import time

from aiohttp import web
from prometheus_client import Counter, Histogram

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
STATUS_CLASSES = ("2xx", "4xx", "5xx")
UNMATCHED = "unmatched"
OTHER_METHOD = "other"

HTTP_REQUESTS = Counter(
    "chakong_gateway_http_requests_total",
    "HTTP requests answered, by route template (or unmatched), method and status class.",
    ["route", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "chakong_gateway_http_request_duration_seconds",
    "Time from an HTTP request's arrival to the end of its answer (a stream's last event), by route template.",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
)


def route_label(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


def method_label(method: str) -> str:
    return method if method in METHODS else OTHER_METHOD


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else "5xx"


@web.middleware
async def http_metrics(request: web.Request, handler) -> web.StreamResponse:
    """Outermost: counts what every other middleware answered too."""
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away, as nginx logs it
        raise
    finally:
        route, method = route_label(request), method_label(request.method)
        HTTP_SECONDS.labels(route, method).observe(time.perf_counter() - start)
        HTTP_REQUESTS.labels(route, method, status_class(status)).inc()


def create_series(app: web.Application) -> None:
    """Every declared route's series at zero, and those of unmatched requests."""
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method not in METHODS:
            continue
        HTTP_SECONDS.labels(resource.canonical, route.method)
        for status in STATUS_CLASSES:
            HTTP_REQUESTS.labels(resource.canonical, route.method, status)
    for method in (*sorted(METHODS), OTHER_METHOD):
        HTTP_SECONDS.labels(UNMATCHED, method)
        HTTP_REQUESTS.labels(UNMATCHED, method, "4xx")
