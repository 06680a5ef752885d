"""`python -m services.vehicle`: run the mock vehicle registry until SIGTERM."""

from services.common.grpc_server import run
from services.common.logs import configure_logging
from services.vehicle.config import Settings
from services.vehicle.server import serve

if __name__ == "__main__":
    configure_logging("vehicle")
    run(lambda: serve(Settings.from_env()))
