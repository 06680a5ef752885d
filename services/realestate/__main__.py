"""`python -m services.realestate`: run the mock real-estate registry until SIGTERM."""

from services.common.grpc_server import run
from services.common.logs import configure_logging
from services.realestate.config import Settings
from services.realestate.server import serve

if __name__ == "__main__":
    configure_logging("realestate")
    run(lambda: serve(Settings.from_env()))
