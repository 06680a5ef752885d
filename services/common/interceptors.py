"""Server interceptors shared by every service: metrics and injected faults."""

import asyncio
import inspect
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from google.protobuf import descriptor_pool
from prometheus_client import Counter, Gauge, Histogram

from services.common.logs import REQUEST_ID_METADATA_KEY, request_id_var
from services.common.settings import SettingsError, env_float, env_str

logger = logging.getLogger(__name__)

# Names follow the grpc-ecosystem convention ops already have dashboards for.
GRPC_SERVER_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by final status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
GRPC_SERVER_HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from receiving an RPC to its final status.",
    ["grpc_service", "grpc_method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
)
GRPC_SERVER_IN_FLIGHT = Gauge(
    "grpc_server_in_flight_requests",
    "RPCs being handled now.",
    ["grpc_service", "grpc_method"],
    multiprocess_mode="livesum",
)

GRPC_SERVER_PEAK_IN_FLIGHT = Gauge(
    "grpc_server_peak_in_flight_requests",
    "The most RPCs of the method handled at once since the process started (an agency's own count: what a"
    " quota on its callers must keep under).",
    ["grpc_service", "grpc_method"],
    multiprocess_mode="max",
)

# A method no service on the server has: one label pair, whatever the caller sent.
UNKNOWN_METHOD = ("unknown", "unknown")


def initialize_server_metrics(service_names) -> None:
    """Create every series of the server's methods at zero, each with every code.

    As grpc-ecosystem's go-grpc-prometheus InitializeMetrics does: the first
    PERMISSION_DENIED of a method then shows in increase() like any other.
    """
    pool = descriptor_pool.Default()
    for name in service_names:
        try:
            service = pool.FindServiceByName(name)
        except KeyError:
            continue
        for method in service.methods:
            GRPC_SERVER_HANDLING_SECONDS.labels(name, method.name)
            GRPC_SERVER_IN_FLIGHT.labels(name, method.name)
            GRPC_SERVER_PEAK_IN_FLIGHT.labels(name, method.name)
            for code in grpc.StatusCode:
                GRPC_SERVER_HANDLED.labels(name, method.name, code.name)
    GRPC_SERVER_HANDLED.labels(*UNKNOWN_METHOD, grpc.StatusCode.UNIMPLEMENTED.name)


# Health checks and reflection are not business traffic: no faults injected.
_INFRASTRUCTURE_SERVICES = ("grpc.health.v1.", "grpc.reflection.")

Around = Callable[[Callable[[], Awaitable], object, grpc.aio.ServicerContext], Awaitable]


def _split(method: str) -> tuple[str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return service, name


def _wrap_unary(handler: grpc.RpcMethodHandler, around) -> grpc.RpcMethodHandler:
    inner = handler.unary_unary

    async def behaviour(request, context):
        return await around(lambda: inner(request, context), context)

    return grpc.unary_unary_rpc_method_handler(
        behaviour,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


async def drain_server_stream(handler, request, context: grpc.aio.ServicerContext) -> None:
    """Run a server-streaming handler to the end, sending what it produces.

    Handlers either yield responses (ours) or write them with context.write
    and return (grpc's health Watch, and handlers already wrapped here).
    """
    result = handler(request, context)
    if inspect.isasyncgen(result):
        async for item in result:
            await context.write(item)
    else:
        await result


def _wrap_server_stream(handler: grpc.RpcMethodHandler, around) -> grpc.RpcMethodHandler:
    inner = handler.unary_stream

    async def behaviour(request, context):
        # Collecting the stream would defeat streaming: run `around` over
        # the act of draining the generator into the wire instead.
        await around(lambda: drain_server_stream(inner, request, context), context)

    return grpc.unary_stream_rpc_method_handler(
        behaviour,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _wrap(handler, around):
    if handler is None:
        return None
    if handler.unary_unary:
        return _wrap_unary(handler, around)
    if handler.unary_stream:
        return _wrap_server_stream(handler, around)
    return handler


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Count and time every RPC by service, method and final code.

    Outermost on every server, so whatever an inner interceptor refuses (the
    gateway's door) is counted too. A method the server does not have is
    counted as unknown/unknown UNIMPLEMENTED: a caller cannot make series.
    """

    def __init__(self):
        self._counting: dict[tuple[str, str], list[int]] = {}

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            GRPC_SERVER_HANDLED.labels(*UNKNOWN_METHOD, grpc.StatusCode.UNIMPLEMENTED.name).inc()
            return None
        service, method = _split(handler_call_details.method)
        handled = {}
        seconds = GRPC_SERVER_HANDLING_SECONDS.labels(service, method)
        in_flight = GRPC_SERVER_IN_FLIGHT.labels(service, method)
        peak = GRPC_SERVER_PEAK_IN_FLIGHT.labels(service, method)
        # Per method, in this process: what in_flight counts, kept here to compare without reading the gauge.
        counting = self._counting.setdefault((service, method), [0, 0])

        async def around(call, context):
            start = time.perf_counter()
            code = grpc.StatusCode.OK
            in_flight.inc()
            counting[0] += 1
            if counting[0] > counting[1]:
                counting[1] = counting[0]
                peak.set(counting[1])
            try:
                result = await call()
                code = context.code() or grpc.StatusCode.OK
                return result
            except grpc.aio.AbortError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception:
                code = grpc.StatusCode.UNKNOWN
                raise
            finally:
                in_flight.dec()
                counting[0] -= 1
                seconds.observe(time.perf_counter() - start)
                if code not in handled:
                    handled[code] = GRPC_SERVER_HANDLED.labels(service, method, code.name)
                handled[code].inc()

        return _wrap(handler, around)


@dataclass(frozen=True)
class FaultSettings:
    """Make an agency slow or failing, for tests and demos.

    Latency is log-normal, fitted to the given median and 99th percentile;
    a failing call aborts with `error_code` before touching any data.
    """

    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    error_rate: float = 0.0
    error_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    # A share of calls answered late (after an interactive deadline): this many
    # milliseconds more, as national 总对总 feedback is.
    late_share: float = 0.0
    late_ms: float = 0.0

    @classmethod
    def from_env(cls) -> "FaultSettings":
        p50 = env_float("FAULT_LATENCY_P50_MS", 0.0, minimum=0.0, maximum=600_000.0)
        p99 = env_float("FAULT_LATENCY_P99_MS", p50, minimum=0.0, maximum=600_000.0)
        if p99 < p50:
            raise SettingsError(f"FAULT_LATENCY_P99_MS={p99}: must be at least FAULT_LATENCY_P50_MS={p50}")
        code_name = env_str("FAULT_ERROR_CODE", "UNAVAILABLE").upper()
        try:
            code = grpc.StatusCode[code_name]
        except KeyError:
            raise SettingsError(f"FAULT_ERROR_CODE={code_name!r}: not a gRPC status code name") from None
        if code is grpc.StatusCode.OK:
            raise SettingsError("FAULT_ERROR_CODE=OK: an injected error needs an error code")
        late_share = env_float("FAULT_LATE_SHARE", 0.0, minimum=0.0, maximum=1.0)
        late_ms = env_float("FAULT_LATE_MS", 0.0, minimum=0.0, maximum=86_400_000.0)
        if late_share > 0 and late_ms <= 0:
            raise SettingsError(f"FAULT_LATE_SHARE={late_share}: set FAULT_LATE_MS, how much later those calls answer")
        return cls(
            latency_p50_ms=p50,
            latency_p99_ms=p99,
            error_rate=env_float("FAULT_ERROR_RATE", 0.0, minimum=0.0, maximum=1.0),
            error_code=code,
            late_share=late_share,
            late_ms=late_ms,
        )

    @property
    def active(self) -> bool:
        return self.latency_p50_ms > 0 or self.error_rate > 0 or self.late_share > 0


class FaultInterceptor(grpc.aio.ServerInterceptor):
    """Delay or fail business RPCs as FaultSettings say."""

    def __init__(self, faults: FaultSettings, rng: random.Random | None = None):
        self._faults = faults
        self._rng = rng or random.Random()
        self._mu = math.log(faults.latency_p50_ms) if faults.latency_p50_ms > 0 else 0.0
        p99 = max(faults.latency_p99_ms, faults.latency_p50_ms)  # unset p99: fixed latency
        ratio = p99 / faults.latency_p50_ms if faults.latency_p50_ms > 0 else 1.0
        self._sigma = math.log(ratio) / 2.3263  # z-score of the 99th percentile

    def sample_latency_ms(self) -> float:
        if self._faults.latency_p50_ms <= 0:
            return 0.0
        if self._sigma == 0:
            return self._faults.latency_p50_ms
        return self._rng.lognormvariate(self._mu, self._sigma)

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler_call_details.method.lstrip("/").startswith(_INFRASTRUCTURE_SERVICES):
            return handler

        async def around(call, context):
            delay_ms = self.sample_latency_ms()
            if self._faults.late_share and self._rng.random() < self._faults.late_share:
                delay_ms += self._faults.late_ms
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000)
            if self._faults.error_rate and self._rng.random() < self._faults.error_rate:
                await context.abort(self._faults.error_code, "injected fault (FAULT_ERROR_RATE)")
            return await call()

        return _wrap(handler, around)


class RequestIdInterceptor(grpc.aio.ServerInterceptor):
    """Put the caller's x-request-id into the logging context of the RPC."""

    async def intercept_service(self, continuation, handler_call_details):
        # grpc.aio runs interceptors in the RPC's own task, before its
        # handler: a context variable set here is what the handler sees, so
        # no per-call handler wrapping is needed.
        request_id = next(
            (v for k, v in handler_call_details.invocation_metadata or () if k == REQUEST_ID_METADATA_KEY), ""
        )
        request_id_var.set(request_id[:128])
        return await continuation(handler_call_details)


def server_interceptors(faults: FaultSettings) -> list[grpc.aio.ServerInterceptor]:
    """Metrics outermost, so injected latency and errors are measured too."""
    interceptors: list[grpc.aio.ServerInterceptor] = [MetricsInterceptor(), RequestIdInterceptor()]
    if faults.active:
        logger.warning("fault injection on: %s", faults)
        interceptors.append(FaultInterceptor(faults))
    return interceptors
