"""`python -m services.mockhost`: serve MOCK_AGENCIES mock banks from one process until SIGTERM."""

from services.common.grpc_server import run
from services.common.logs import configure_logging
from services.mockhost.config import HostSettings
from services.mockhost.server import serve

if __name__ == "__main__":
    configure_logging("mockhost")
    run(lambda: serve(HostSettings.from_env()))
