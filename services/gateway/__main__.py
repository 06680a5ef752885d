"""`python -m services.gateway`: settings from the environment, then serve until signalled."""

from services.common.grpc_server import run
from services.common.logs import configure_logging
from services.gateway.config import GatewaySettings
from services.gateway.server import serve
from services.gateway.workers import supervise


async def main() -> None:
    configure_logging("gateway")
    settings = GatewaySettings.from_env()
    await (supervise(settings) if settings.workers > 1 else serve(settings))


if __name__ == "__main__":
    run(main)
