"""Run the gateway: the gRPC and HTTP adapters over one GatewayCore (root.py)."""

import asyncio
import contextlib
import logging
import os
import signal

import grpc
from aiohttp import web
from prometheus_client import Gauge, disable_created_metrics

from protos.gateway.v1 import admin_pb2_grpc, batch_pb2_grpc, control_pb2_grpc, enforce_pb2_grpc, gateway_pb2_grpc
from services.common.grpc_server import GrpcServer, announce_ready, bound_address, wait_for_shutdown_signal
from services.common.interceptors import FaultSettings, server_interceptors
from services.common.tls import ServerCertificate, TlsError
from services.gateway.config import GatewaySettings
from services.gateway.grpc_api.admin import SERVICE_NAME as ADMIN_SERVICE_NAME
from services.gateway.grpc_api.admin import AgencyAdminServicer
from services.gateway.grpc_api.batch import SERVICE_NAME as BATCH_SERVICE_NAME
from services.gateway.grpc_api.batch import BatchQueriesServicer
from services.gateway.grpc_api.control import SERVICE_NAME as CONTROL_SERVICE_NAME
from services.gateway.grpc_api.control import EnforcementControlServicer
from services.gateway.grpc_api.door import DoorInterceptor
from services.gateway.grpc_api.enforce import SERVICE_NAME as PLANS_SERVICE_NAME
from services.gateway.grpc_api.enforce import EnforcementPlansServicer
from services.gateway.grpc_api.query import SERVICE_NAME, AssetGatewayServicer
from services.gateway.http_api.app import create_app
from services.gateway.http_api.lifecycle import drain_http
from services.gateway.http_api.limits import SERVER_OPTIONS, DoorRunner
from services.gateway.root import GatewayCore, open_gateway

logger = logging.getLogger(__name__)

# A leak of tasks (calls never cancelled, probes never stopped) shows as a rising line. Read at scrape
# time in one process; workers (workers.py) share metrics through files, so each samples its own every
# second and the scrape adds them up.
GATEWAY_TASKS = Gauge("chakong_gateway_tasks", "asyncio tasks alive in the gateway's event loops.",
                      multiprocess_mode="livesum")
TASK_SAMPLE_SECONDS = 1.0


async def _sample_tasks(loop: asyncio.AbstractEventLoop) -> None:
    while True:
        GATEWAY_TASKS.set(len(asyncio.all_tasks(loop)))
        await asyncio.sleep(TASK_SAMPLE_SECONDS)


def port_certificate(settings: GatewaySettings) -> ServerCertificate | None:
    """The certificate both ports serve, read and checked at start; None behind the plaintext flag."""
    if settings.insecure_plaintext_ports:
        return None
    return ServerCertificate(settings.tls_cert, settings.tls_key, settings.tls_ca)


def log_transport(settings: GatewaySettings, certificate: ServerCertificate | None) -> None:
    if certificate is None:
        logger.warning(
            "INSECURE PLAINTEXT: the gateway serves gRPC and HTTP without TLS; executors' tokens and citizens'"
            " assets cross the network in clear. Development only; unset INSECURE_PLAINTEXT and create"
            " certificates with `chakong pki init`."
        )
        return
    logger.info("gRPC and HTTP over TLS as %s (certificate %s, expires %s; SIGHUP reloads it)",
                certificate.names.common_name, settings.tls_cert, f"{certificate.names.not_after:%Y-%m-%d}")


class Gateway:
    """A started gateway; `endpoints` are the bound addresses. Stop it with `stop()`."""

    def __init__(self, settings: GatewaySettings):
        self.settings = settings
        self.core: GatewayCore | None = None
        self.endpoints: dict[str, str] = {}
        self._resources = contextlib.AsyncExitStack()
        self._runner: web.AppRunner | None = None
        self._grpc: GrpcServer | None = None
        self.certificate: ServerCertificate | None = None

    async def start(self) -> "Gateway":
        # A certificate that is missing, expired or not the CA's stops the start before anything is opened.
        self.certificate = port_certificate(self.settings)
        # Then the core: a registry, ledger or audit store that cannot open stops the start here.
        core = self.core = await self._resources.enter_async_context(open_gateway(self.settings))
        app = create_app(core)
        # Graceful stop is ours (wait_for_shutdown_signal), not aiohttp's. A
        # client that hangs up cancels its handler, and so its agency calls.
        # DoorRunner: JSON refusals of oversized or malformed requests, and the
        # header, keep-alive and size limits of http_api/limits.py.
        self._runner = DoorRunner(
            app,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=self.settings.grace_seconds,
            handler_cancellation=True,
            **SERVER_OPTIONS,
        )
        try:
            await self._runner.setup()
            host, _, port = self.settings.http_address.rpartition(":")
            site = web.TCPSite(self._runner, host, int(port), reuse_port=self.settings.reuse_port or None,
                               ssl_context=self.certificate and self.certificate.ssl_context())
            await site.start()
            http_port = self._runner.addresses[0][1]
            servicer = AssetGatewayServicer(core.fanout)
            control = EnforcementControlServicer(core.control)
            admin = AgencyAdminServicer(core.admin)
            plans = EnforcementPlansServicer(core.enforce, core.batch_plans)
            batches = BatchQueriesServicer(core.batches)

            def register(server: grpc.aio.Server) -> None:
                gateway_pb2_grpc.add_AssetGatewayServicer_to_server(servicer, server)
                control_pb2_grpc.add_EnforcementControlServicer_to_server(control, server)
                admin_pb2_grpc.add_AgencyAdminServicer_to_server(admin, server)
                enforce_pb2_grpc.add_EnforcementPlansServicer_to_server(plans, server)
                batch_pb2_grpc.add_BatchQueriesServicer_to_server(batches, server)

            self._grpc = await GrpcServer.start(
                self.settings.grpc_address,
                register,
                [SERVICE_NAME, CONTROL_SERVICE_NAME, ADMIN_SERVICE_NAME, PLANS_SERVICE_NAME, BATCH_SERVICE_NAME],
                # Metrics outermost, so what the door (tokens, authorization, rate
                # limits, audit: access/door.py) refuses is counted too.
                interceptors=[*server_interceptors(FaultSettings()), DoorInterceptor(core.door)],
                tls=self.certificate,
                reuse_port=self.settings.reuse_port,
            )
        except BaseException:
            await self.stop()
            raise
        core.readiness.grpc_serving = True
        loop = asyncio.get_running_loop()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            sampler = loop.create_task(_sample_tasks(loop), name="task count")
            self._resources.callback(sampler.cancel)
        else:
            GATEWAY_TASKS.set_function(lambda: len(asyncio.all_tasks(loop)))
        self.endpoints = {
            "grpc": bound_address(self.settings.grpc_address, self._grpc.port),
            "http": bound_address(self.settings.http_address, http_port),
            "scheme": self.settings.scheme,
        }
        log_transport(self.settings, self.certificate)
        logger.info("gateway asks %d agencies from %s", len(core.clients.all), self.settings.agency_registry)
        return self

    def reload(self, reason: str) -> None:
        """SIGHUP: the ports' certificate (new handshakes get it; no restart) and the agency registry, again."""
        if self.certificate is not None:
            try:
                names = self.certificate.reload()
            except TlsError as exc:
                logger.error("TLS certificate reload (%s) rejected, still serving the one loaded before: %s",
                             reason, exc)
            else:
                logger.info("TLS certificate reloaded (%s): %s, expires %s", reason, names.common_name,
                            f"{names.not_after:%Y-%m-%d %H:%M}Z")
        if self.core is not None:
            self.core.reloader.request(reason)

    async def stop(self) -> None:
        """Refuse new work on both APIs at once, let calls in flight finish within one grace period, close the core."""
        if self.core is not None:
            self.core.readiness.grpc_serving = False
        drains = []
        if self._grpc is not None:
            # NOT_SERVING on gRPC health first, then no new RPCs.
            drains.append(self._grpc.stop(self.settings.grace_seconds))
            self._grpc = None
        if self._runner is not None:
            drains.append(drain_http(self._runner, self.settings.grace_seconds))
        # Together: neither API takes new work while the other drains.
        await asyncio.gather(*drains)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        # Then the channels, the ledger and the audit store, in reverse of their opening.
        await self._resources.aclose()


async def serve(settings: GatewaySettings) -> None:
    # `_created` series double the output and no alert or dashboard uses them.
    disable_created_metrics()
    gateway = await Gateway(settings).start()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, gateway.reload, "SIGHUP")
    try:
        announce_ready("gateway", **gateway.endpoints)
        await wait_for_shutdown_signal()
        logger.info("gateway stopping (grace %.1f s)", settings.grace_seconds)
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        await gateway.stop()
