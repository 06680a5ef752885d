"""Run the gateway: the gRPC and HTTP APIs (queries and control) over one set of agency channels and one ledger."""

import asyncio
import logging

import grpc
from aiohttp import web
from prometheus_client import disable_created_metrics

from protos.gateway.v1 import control_pb2_grpc, gateway_pb2_grpc
from services.common.grpc_server import GrpcServer, announce_ready, bound_address, wait_for_shutdown_signal
from services.common.interceptors import FaultSettings, server_interceptors
from services.gateway.auth import grpc_interceptors
from services.gateway.config import GatewaySettings
from services.gateway.control_grpc import SERVICE_NAME as CONTROL_SERVICE_NAME
from services.gateway.control_grpc import EnforcementControlServicer
from services.gateway.control_http import CONTROL
from services.gateway.grpc_api import SERVICE_NAME, AssetGatewayServicer
from services.gateway.http_api import FANOUT, GatewayState, create_app
from services.gateway.lifecycle import drain_http
from services.gateway.registry import load_registry

logger = logging.getLogger(__name__)


class Gateway:
    """A started gateway; `endpoints` are the bound addresses. Stop it with `stop()`."""

    def __init__(self, settings: GatewaySettings):
        self.settings = settings
        self.state = GatewayState()
        self.endpoints: dict[str, str] = {}
        self._runner: web.AppRunner | None = None
        self._grpc: GrpcServer | None = None

    async def start(self) -> "Gateway":
        registry = load_registry(self.settings.agency_registry)
        app = create_app(self.settings, registry, self.state)
        # Graceful stop is ours (wait_for_shutdown_signal), not aiohttp's. A
        # client that hangs up cancels its handler, and so its agency calls.
        self._runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=self.settings.grace_seconds,
            handler_cancellation=True,
        )
        try:
            # setup() enters cleanup_ctx: the agency channels open here.
            await self._runner.setup()
            host, _, port = self.settings.http_address.rpartition(":")
            site = web.TCPSite(self._runner, host, int(port), reuse_port=self.settings.reuse_port or None)
            await site.start()
            http_port = self._runner.addresses[0][1]
            servicer = AssetGatewayServicer(app[FANOUT])
            control = EnforcementControlServicer(app[CONTROL])

            def register(server: grpc.aio.Server) -> None:
                gateway_pb2_grpc.add_AssetGatewayServicer_to_server(servicer, server)
                control_pb2_grpc.add_EnforcementControlServicer_to_server(control, server)

            self._grpc = await GrpcServer.start(
                self.settings.grpc_address,
                register,
                [SERVICE_NAME, CONTROL_SERVICE_NAME],
                # Executor tokens, authorization and audit first (auth.py).
                interceptors=[*grpc_interceptors(app), *server_interceptors(FaultSettings())],
                reuse_port=self.settings.reuse_port,
            )
        except BaseException:
            await self.stop()
            raise
        self.state.grpc_serving = True
        self.endpoints = {
            "grpc": bound_address(self.settings.grpc_address, self._grpc.port),
            "http": bound_address(self.settings.http_address, http_port),
        }
        logger.info("gateway asks %d agencies from %s", len(registry), self.settings.agency_registry)
        return self

    async def stop(self) -> None:
        """Refuse new work on both APIs at once, let calls in flight finish within one grace period, close the channels."""
        self.state.grpc_serving = False
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


async def serve(settings: GatewaySettings) -> None:
    # `_created` series double the output and no alert or dashboard uses them.
    disable_created_metrics()
    gateway = await Gateway(settings).start()
    try:
        announce_ready("gateway", **gateway.endpoints)
        await wait_for_shutdown_signal()
        logger.info("gateway stopping (grace %.1f s)", settings.grace_seconds)
    finally:
        await gateway.stop()
