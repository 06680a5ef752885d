"""`python -m services.console`: the web console, configured from the environment (config.py)."""

from services.common.grpc_server import run
from services.common.logs import configure_logging
from services.console.config import ConsoleSettings
from services.console.server import serve

if __name__ == "__main__":
    configure_logging("console")
    run(lambda: serve(ConsoleSettings.from_env()))
