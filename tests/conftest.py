"""Shared fixtures: real service processes on loopback port 0; gateway ledgers on SQLite and PostgreSQL."""

import asyncio
import os
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.harness import ServiceProcess

# The executor and court of the tests' cases; tokens default to them.
EXECUTOR = "E0001"
COURT = "340100"


@pytest.fixture(scope="session", autouse=True)
def token_keys(tmp_path_factory):
    """One token signing key for the run; gateways (in-process and child processes) trust it.

    Rate limits are raised out of the way here; the rate-limit tests set their own.
    """
    from services.security.tokens import write_signing_key

    directory = tmp_path_factory.mktemp("token-keys")
    private, public = directory / "token-signing.key", directory / "token-signing.pub"
    write_signing_key(private, public)
    saved = {k: os.environ.get(k) for k in TEST_ENV}
    os.environ.update({**TEST_ENV, "CHAKONG_TOKEN_PUBLIC_KEY": str(public), "CHAKONG_TOKEN_SIGNING_KEY": str(private)})
    yield private
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


TEST_ENV = {
    "CHAKONG_TOKEN_PUBLIC_KEY": "",
    "CHAKONG_TOKEN_SIGNING_KEY": "",
    "RATE_LIMIT_EXECUTOR_PER_MINUTE": "600000",
    "RATE_LIMIT_EXECUTOR_BURST": "100000",
    "RATE_LIMIT_COURT_PER_MINUTE": "600000",
    "RATE_LIMIT_COURT_BURST": "100000",
}


def issue_token(executor: str = EXECUTOR, court: str = COURT, roles=("executor", "admin"), ttl_s: int = 3600) -> str:
    """A token signed with the run's key (token_keys); by default the tests' executor, also an admin."""
    from services.security.tokens import TokenSigner

    return TokenSigner.from_file(os.environ["CHAKONG_TOKEN_SIGNING_KEY"]).issue(executor, court, roles, ttl_s=ttl_s)


def auth_headers(token: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token or issue_token()}"}


def register_case_body(case: dict, debtors: list[dict], executors=(), owed_fen: int = 100_000_000) -> dict:
    body = {"case": case, "debtors": debtors, "amount_owed_fen": str(owed_fen)}
    if executors:
        body["executor_ids"] = list(executors)
    return body


@pytest.fixture
def start_service(tmp_path):
    """Start `python -m module` with env; every process is stopped at teardown.

    Plaintext (INSECURE_PLAINTEXT=1) unless the test hands out TLS_CERT: most
    tests are about something else than transport security.
    """
    started: list[ServiceProcess] = []

    def start(module: str, **env: str) -> ServiceProcess:
        env.setdefault("DATA_DIR", str(tmp_path))
        if "TLS_CERT" not in env:
            env.setdefault("INSECURE_PLAINTEXT", "1")
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
