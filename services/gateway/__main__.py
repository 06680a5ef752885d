"""`python -m services.gateway`: settings from the environment, then serve until signalled."""

from services.common.grpc_server import run
from services.common.logs import configure_logging
from services.gateway.config import GatewaySettings
from services.gateway.server import serve


async def main() -> None:
    configure_logging("gateway")
    await serve(GatewaySettings.from_env())


if __name__ == "__main__":
    run(main)
