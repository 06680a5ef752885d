"""Shared fixtures: real service processes on loopback port 0."""

import pytest

from tests.harness import ServiceProcess


@pytest.fixture
def start_service(tmp_path):
    """Start `python -m module` with env; every process is stopped at teardown."""
    started: list[ServiceProcess] = []

    def start(module: str, **env: str) -> ServiceProcess:
        env.setdefault("DATA_DIR", str(tmp_path))
        service = ServiceProcess(module, env).start()
        started.append(service)
        return service

    yield start
    for service in reversed(started):
        service.stop()
