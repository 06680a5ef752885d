"""Shared fixtures: real service processes on loopback port 0; gateway ledgers on SQLite and PostgreSQL."""

import asyncio
import os
import uuid
from concurrent.futures import ThreadPoolExecutor

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


# The gateway ledger on both backends. PostgreSQL is the one on
# 127.0.0.1:5432 (CHAKONG_TEST_PG to point elsewhere): each run creates a
# fresh database and drops it at the end; each test gets its own schema in
# it. Unreachable PostgreSQL skips those tests, except in CI (CI set), where
# it fails them: CI must prove both backends.

PG_ADMIN_URL = os.environ.get("CHAKONG_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
LEDGER_BACKENDS = ("sqlite", "postgresql")


def pg_admin(url: str, *statements: str) -> None:
    """Run statements on PostgreSQL from a thread of its own (no event loop may be running here)."""
    import asyncpg

    async def run():
        conn = await asyncpg.connect(url, timeout=5)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def _with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture(scope="session")
def pg_database() -> str:
    """URL of a database created for this test run and dropped after it."""
    name = f"chakong_test_{uuid.uuid4().hex[:10]}"
    try:
        pg_admin(PG_ADMIN_URL, f'CREATE DATABASE "{name}"')
    except Exception as exc:  # OSError, asyncpg errors, timeouts
        message = f"PostgreSQL at {PG_ADMIN_URL} is unreachable ({exc!r}); start it (see .ci/run)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield _with_database(PG_ADMIN_URL, name)
    finally:
        pg_admin(PG_ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=LEDGER_BACKENDS)
def ledger_url(request, tmp_path) -> str:
    """LEDGER_URL of an empty ledger on each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/gateway-ledger.db"
    database = request.getfixturevalue("pg_database")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    pg_admin(database, f"CREATE SCHEMA {schema}")
    # asyncpg passes query parameters it does not know on as server settings.
    return f"{database}?search_path={schema}"
