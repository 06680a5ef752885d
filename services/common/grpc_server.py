"""The one way every chakong gRPC server is built, announced and stopped."""

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence

import grpc
import uvloop
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common.interceptors import initialize_server_metrics
from services.common.tls import ServerCertificate, ServerTls

logger = logging.getLogger(__name__)

# Long-lived gateway channels and large aggregates: allow 16 MiB messages.
# SO_REUSEPORT is off unless asked for (gateway workers sharing a port):
# otherwise a second server on a taken port would start silently.
SERVER_OPTIONS = (
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.max_send_message_length", 16 * 1024 * 1024),
    ("grpc.so_reuseport", 0),
)


def server_options(*, reuse_port: bool = False) -> tuple[tuple[str, int], ...]:
    return tuple((name, int(reuse_port)) if name == "grpc.so_reuseport" else (name, value)
                 for name, value in SERVER_OPTIONS)


class GrpcServer:
    """A started grpc.aio server with the standard health and reflection services."""

    def __init__(self, server: grpc.aio.Server, health_servicer: health.aio.HealthServicer, port: int):
        self.server = server
        self.health = health_servicer
        self.port = port

    @classmethod
    async def start(
        cls,
        address: str,
        register: Callable[[grpc.aio.Server], None],
        service_names: Sequence[str],
        *,
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        tls: ServerTls | ServerCertificate | None = None,
        reuse_port: bool = False,
        health_for_server: bool = True,
        check_peer: bool = True,
    ) -> "GrpcServer":
        """Plaintext when `tls` is None; otherwise TLS and, when tls.mutual, only tls.allowed_clients may call.

        A ServerCertificate (the gateway's ports) is TLS without client
        certificates, its certificate reloadable while the server runs.

        The identity check runs first, before metrics, request IDs or
        injected faults, so a refused peer costs nothing but the refusal.
        Health reports SERVING for the empty service name (the whole server:
        what the gateway probes) and for each of `service_names`.
        `health_for_server` and `check_peer` False break that on purpose:
        only the conformance kit's deliberate faults pass them.
        """
        peer_check = tls.interceptor() if isinstance(tls, ServerTls) and check_peer else None
        if peer_check is not None:
            interceptors = [peer_check, *interceptors]
        server = grpc.aio.server(interceptors=list(interceptors), options=server_options(reuse_port=reuse_port))
        register(server)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        served = [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME]
        reflection.enable_server_reflection(served, server)
        initialize_server_metrics(served)
        if tls is None:
            port = server.add_insecure_port(address)
        else:
            credentials = tls.server_credentials() if isinstance(tls, ServerTls) else tls.grpc_credentials()
            port = server.add_secure_port(address, credentials)
        if port == 0:
            raise OSError(f"cannot bind gRPC server to {address}")
        await server.start()
        for name in ("", *service_names):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        if not health_for_server:
            # grpc's servicer answers SERVING for "" unless told otherwise.
            await health_servicer.set("", health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)
        return cls(server, health_servicer, port)

    async def stop(self, grace: float) -> None:
        # NOT_SERVING first, so load balancers and the gateway stop sending.
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


def bound_address(address: str, port: int) -> str:
    host = address.rpartition(":")[0]
    return f"{host}:{port}"


def announce_ready(service: str, **endpoints: str) -> None:
    """Print one machine-readable line saying where the service listens.

    Tests and the launcher start services on port 0 and read this line to
    learn the real ports.
    """
    # One write: with unbuffered stdout print() writes the newline apart, and
    # another process sharing the pipe (gateway workers) could land between.
    sys.stdout.write("READY " + json.dumps({"service": service, **endpoints}, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    logger.info("%s ready: %s", service, endpoints)


def install_shutdown_signals() -> asyncio.Event:
    """Handle SIGINT and SIGTERM from now on by setting the returned event.

    Install before announcing readiness: whoever reads READY may signal at
    once, and without a handler the default action kills the process.
    """
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    return stopping


async def wait_for_shutdown_signal() -> None:
    """Return on the first SIGINT or SIGTERM."""
    await install_shutdown_signals().wait()


def run(main: Callable[[], Awaitable[None]]) -> None:
    """Entry point of a service's __main__: run until signalled, exit cleanly, on uvloop."""
    try:
        uvloop.run(main())
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # report start-up failures as one readable line
        from services.common.settings import SettingsError

        if isinstance(exc, (SettingsError, OSError)):
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        raise
