"""`python -m services.bank`: run one mock bank until SIGTERM."""

from services.bank.config import Settings
from services.bank.server import serve
from services.common.grpc_server import run
from services.common.logs import configure_logging

if __name__ == "__main__":
    configure_logging("bank")
    run(lambda: serve(Settings.from_env()))
