"""`python -m services.launcher` (what `make run` calls): the whole stack in the foreground."""

from services.common.grpc_server import run
from services.common.logs import configure_logging
from services.launcher.launcher import LauncherSettings, launch

if __name__ == "__main__":
    configure_logging("launcher")
    run(lambda: launch(LauncherSettings.from_env()))
