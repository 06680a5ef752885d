"""Shared fixtures: real service processes on loopback port 0; the shared mock agencies;
gateway ledgers on SQLite and PostgreSQL.

Only fixtures used by more than one test module live here; the helpers they
and the tests use are in tests/support.
"""

import os
import uuid

import pytest

from tests.support.agencies import AGENCIES, HEALTHY, Agency, agency_env, start_all
from tests.support.harness import ServiceProcess
from tests.support.postgres import LEDGER_BACKENDS, PG_ADMIN_URL, pg_admin, with_database
from tests.support.redis import redis_ping


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


@pytest.fixture(scope="session", autouse=True)
def gateway_pki(tmp_path_factory):
    """One PKI for the run: the certificate every gateway's ports serve (GATEWAY_TLS_*) and the CA its
    clients trust (CHAKONG_CA: the CLI, tests/support/tls.py GatewayEndpoints)."""
    from services.security import pki

    directory = tmp_path_factory.mktemp("gateway-pki")
    pki.init_pki(directory, [])
    layout = pki.PkiLayout(directory)
    env = {"GATEWAY_TLS_CERT": str(layout.gateway_server.cert), "GATEWAY_TLS_KEY": str(layout.gateway_server.key),
           "GATEWAY_TLS_CA": str(layout.ca.cert), "CHAKONG_CA": str(layout.ca.cert)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield layout
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
    "RATE_LIMIT_CONTROL_EXECUTOR_PER_MINUTE": "600000",
    "RATE_LIMIT_CONTROL_EXECUTOR_BURST": "100000",
    "RATE_LIMIT_CONTROL_COURT_PER_MINUTE": "600000",
    "RATE_LIMIT_CONTROL_COURT_BURST": "100000",
}


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


# The mock agencies, started once per test module and shared by its tests.


@pytest.fixture(scope="module")
def healthy(tmp_path_factory) -> list[Agency]:
    """The healthy agencies, shared by the module's tests (none of them is harmed)."""
    data_dir = str(tmp_path_factory.mktemp("agencies"))
    started: list[ServiceProcess] = []

    def start(module: str, **env: str) -> ServiceProcess:
        service = ServiceProcess(module, {"DATA_DIR": data_dir, **env})
        started.append(service)
        return service.start()

    try:
        processes = start_all(start, [(i, kind, agency_env(i, kind, profile)) for i, kind, profile in HEALTHY])
        yield [Agency(i, kind, p.endpoints["grpc"], process=p) for (i, kind, _), p in zip(HEALTHY, processes)]
    finally:
        for service in started:
            service.stop()


@pytest.fixture(scope="module")
def agencies(tmp_path_factory) -> list[Agency]:
    """icbc, the vehicle and the real-estate registry, shared by the module's tests."""
    data_dir = tmp_path_factory.mktemp("agencies")
    started: list[ServiceProcess] = []

    def start(module: str, **env: str) -> ServiceProcess:
        service = ServiceProcess(module, {"DATA_DIR": str(data_dir), **env})
        started.append(service)
        return service.start()

    try:
        processes = start_all(start, [(i, kind, agency_env(i, kind, profile)) for i, kind, profile in AGENCIES])
        yield [
            Agency(i, kind, p.endpoints["grpc"], timeout_ms=3000, process=p)
            for (i, kind, _), p in zip(AGENCIES, processes)
        ]
    finally:
        for service in started:
            service.stop()


# The gateway ledger on both backends. PostgreSQL is the one on
# 127.0.0.1:5432 (CHAKONG_TEST_PG to point elsewhere): each run creates a
# fresh database and drops it at the end; each test gets its own schema in
# it. Unreachable PostgreSQL skips those tests, except in CI (CI set), where
# it fails them: CI must prove both backends.


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
        yield with_database(PG_ADMIN_URL, name)
    finally:
        pg_admin(PG_ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Shared rate limits: the Redis on 127.0.0.1:6379 (CHAKONG_TEST_REDIS to point
# elsewhere). Unreachable Redis skips those tests, except in CI, where it fails
# them. Each test gets a key prefix of its own, so runs sharing a Redis do not meet.


@pytest.fixture(scope="session")
def redis_server() -> str:
    """URL of the Redis the shared rate-limit tests use."""
    url = os.environ.get("CHAKONG_TEST_REDIS", "redis://127.0.0.1:6379/0")
    try:
        redis_ping(url)
    except Exception as exc:  # OSError, redis errors, timeouts
        message = f"Redis at {url} is unreachable ({exc!r}); start it (see .ci/run)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture
def redis_limits(redis_server) -> dict[str, str]:
    """The environment that shares a gateway's rate limits in Redis under a prefix of this test's own."""
    return {"RATE_LIMIT_REDIS_URL": redis_server, "RATE_LIMIT_REDIS_PREFIX": f"chakong-test-{uuid.uuid4().hex[:12]}"}


@pytest.fixture(params=LEDGER_BACKENDS)
def ledger_url(request, tmp_path) -> str:
    """LEDGER_URL of an empty ledger on each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/gateway-ledger.db"
    return request.getfixturevalue("pg_ledger_url")


@pytest.fixture
def pg_ledger_url(pg_database) -> str:
    """LEDGER_URL of an empty ledger on PostgreSQL: a schema of its own in the run's database."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    pg_admin(pg_database, f"CREATE SCHEMA {schema}")
    # asyncpg passes query parameters it does not know on as server settings.
    return f"{pg_database}?search_path={schema}"
