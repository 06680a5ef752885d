"""Two gateway processes on one PostgreSQL ledger behind nginx (gRPC and HTTP, round robin, TLS on both hops):
queries and control work through the load balancer, and a retry that lands on the other gateway is the same action."""

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import aiohttp
import grpc
import pytest

from protos.gateway.v1 import gateway_pb2_grpc
from services.security.audit import SqliteAuditStore
from tests.support.agencies import BANK, start_agencies
from tests.support.auth import auth_headers, issue_token
from tests.support.control import (
    COURT_ACCOUNT,
    bank_deductions,
    bank_freezes,
    case_json,
    debtors,
    freeze_body,
    new_case_number,
    register_body,
)
from tests.support.gateway import asset_request, query_body, register_showcase_case, write_registry
from tests.support.postgres import pg_admin
from tests.support.tls import TLS_PORTS_ENV, GatewayEndpoints

PLAINTEXT = {"INSECURE_PLAINTEXT": "1"}
UPSTREAM = "X-Upstream-Addr"

NGINX_CONF = """\
worker_processes 1;
error_log {tmp}/error.log warn;
pid {tmp}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    # TLS on both hops, as ops/nginx/nginx.conf: the gateway's certificate towards the
    # clients, the gateways' certificates checked against the CA as "gateway".
    ssl_certificate {cert};
    ssl_certificate_key {key};
    upstream gateway_http {{
{http_servers}
        keepalive 8;
    }}
    upstream gateway_grpc {{
{grpc_servers}
    }}
    server {{
        listen {http_listen} ssl;
        location / {{
            proxy_pass https://gateway_http;
            proxy_ssl_trusted_certificate {ca};
            proxy_ssl_verify on;
            proxy_ssl_name gateway;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $remote_addr;
            add_header {upstream} $upstream_addr always;
        }}
    }}
    server {{
        listen {grpc_listen} ssl http2;
        location / {{
            grpc_pass grpcs://gateway_grpc;
            grpc_ssl_trusted_certificate {ca};
            grpc_ssl_verify on;
            grpc_ssl_name gateway;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
    if found is None:
        message = "nginx is not installed (scripts/install_ci_tools.sh installs Debian's nginx-light)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def wait_for_port(address: str, process: subprocess.Popen, log: Path, timeout: float = 10.0) -> None:
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited with {process.returncode}:\n{log.read_text() if log.exists() else ''}")
        with socket.socket() as sock:
            if sock.connect_ex((host, int(port))) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen on {address}")


@pytest.fixture
def nginx(tmp_path, gateway_pki):
    """Start nginx in front of the given gateways (TLS ports); returns how to reach nginx."""
    binary = nginx_binary()
    started: list[subprocess.Popen] = []

    def start(gateways: list[dict[str, str]]) -> GatewayEndpoints:
        prefix = tmp_path / "nginx"
        prefix.mkdir()
        http_listen, grpc_listen = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        conf = prefix / "nginx.conf"
        conf.write_text(NGINX_CONF.format(
            tmp=prefix, upstream=UPSTREAM, http_listen=http_listen, grpc_listen=grpc_listen,
            cert=gateway_pki.gateway_server.cert, key=gateway_pki.gateway_server.key, ca=gateway_pki.ca.cert,
            http_servers="\n".join(f"        server {g['http']};" for g in gateways),
            grpc_servers="\n".join(f"        server {g['grpc']};" for g in gateways),
        ))
        process = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        started.append(process)
        for address in (http_listen, grpc_listen):
            wait_for_port(address, process, prefix / "error.log")
        return GatewayEndpoints(grpc=grpc_listen, http=http_listen)

    yield start
    for process in started:
        process.send_signal(signal.SIGQUIT)  # graceful: finish requests, then exit
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture
def pg_ledger_url(pg_database) -> str:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    pg_admin(pg_database, f"CREATE SCHEMA {schema}")
    return f"{pg_database}?search_path={schema}"


async def post(session: aiohttp.ClientSession, path: str, body: dict, key: str | None = None):
    headers = {"Idempotency-Key": key} if key else {}
    async with session.post(path, json=body, headers=headers) as response:
        return response.status, await response.json(), response.headers.get(UPSTREAM, "")


async def test_two_gateways_behind_nginx_share_one_ledger(start_service, tmp_path, nginx, pg_ledger_url):
    (bank,) = start_agencies(start_service, (BANK, "bank", {**PLAINTEXT, "BANK_PROFILE": "bank"}))
    registry = write_registry(tmp_path, [bank])
    gateways = [
        start_service(
            "services.gateway",
            GATEWAY_GRPC_ADDRESS="127.0.0.1:0", GATEWAY_HTTP_ADDRESS="127.0.0.1:0",
            AGENCY_REGISTRY=str(registry), LEDGER_URL=pg_ledger_url, GRACE_SECONDS="1",
            REDRIVE_INTERVAL_SECONDS="0.5", LEDGER_LEASE_SECONDS="2", LOG_FORMAT="text", **TLS_PORTS_ENV,
        ).endpoints
        for _ in range(2)
    ]
    both = {g["http"] for g in gateways}
    balancer = nginx(gateways)

    await register_showcase_case(balancer)
    async with balancer.session(headers=auth_headers()) as session:
        # Queries over HTTP and gRPC through nginx, round robin over both gateways.
        seen = set()
        for _ in range(4):
            async with session.post("/v1/queries", json=query_body()) as response:
                assert response.status == 200, await response.text()
                assert (await response.json())["complete"] is True
                seen.add(response.headers[UPSTREAM])
        assert seen == both
        async with balancer.channel(issue_token()) as channel:
            stub = gateway_pb2_grpc.AssetGatewayStub(channel)
            for _ in range(2):
                assert (await stub.QueryAssets(asset_request(), timeout=10)).complete

        debtor = debtors()[0]
        case_number = new_case_number()
        status, body, _ = await post(session, "/v1/cases", register_body(case_number, debtor))
        assert status == 201, body

        # A freeze, then its retry with the same key until nginx sends it to the other gateway.
        key = f"scaleout-freeze-{uuid.uuid4().hex[:8]}"
        status, first, first_upstream = await post(session, "/v1/freezes", freeze_body(case_number, debtor, 50_000), key)
        assert status == 200, first
        for _ in range(4):
            status, again, upstream = await post(
                session, "/v1/freezes", freeze_body(case_number, debtor, 50_000), key
            )
            if upstream != first_upstream:
                break
        assert {first_upstream, upstream} == both
        assert status == 200 and again["action_id"] == first["action_id"] == first["hold_id"]
        assert again["freeze"] == first["freeze"]
        assert len(bank_freezes(bank, case_number)) == 1

        # The deduction: the same key sent at once through nginx reaches both gateways; one deduction.
        hold = first["hold_id"]
        deduct = {"case": case_json(case_number), "amount_fen": "20000", "court_account": COURT_ACCOUNT}
        replies = await asyncio.gather(*(
            post(session, f"/v1/freezes/{hold}/deduct", deduct, "scaleout-deduct-1") for _ in range(4)
        ))
        assert {status for status, _, _ in replies} == {200}, replies
        assert {upstream for _, _, upstream in replies} == both
        assert len({body["action_id"] for _, body, _ in replies}) == 1
        assert [d["amount_fen"] for d in bank_deductions(bank, case_number)] == [20_000]

        # The ledger both gateways share holds exactly these two actions, whichever gateway is asked.
        for _ in range(2):
            async with session.get(f"/v1/cases/{case_number}") as response:
                view = await response.json()
            assert sorted(a["idempotency_key"] for a in view["actions"]) == sorted([key, "scaleout-deduct-1"])
            assert view["deducted_fen"] == "20000"


async def test_one_executors_limit_is_one_limit_across_two_gateways(
    start_service, tmp_path, nginx, pg_ledger_url, redis_limits
):
    """Query and control limits in Redis: two gateways behind nginx allow one executor the limit once, not twice."""
    (bank,) = start_agencies(start_service, (BANK, "bank", {**PLAINTEXT, "BANK_PROFILE": "bank"}))
    registry = write_registry(tmp_path, [bank])
    limits = {
        **redis_limits,
        # 4 queries and 2 control actions in any 4 minutes / 2 minutes: nothing returns during the test.
        "RATE_LIMIT_EXECUTOR_PER_MINUTE": "1", "RATE_LIMIT_EXECUTOR_BURST": "4",
        "RATE_LIMIT_CONTROL_EXECUTOR_PER_MINUTE": "1", "RATE_LIMIT_CONTROL_EXECUTOR_BURST": "2",
    }
    gateways = [
        start_service(
            "services.gateway",
            GATEWAY_GRPC_ADDRESS="127.0.0.1:0", GATEWAY_HTTP_ADDRESS="127.0.0.1:0",
            AGENCY_REGISTRY=str(registry), LEDGER_URL=pg_ledger_url, GRACE_SECONDS="1",
            LOG_FORMAT="text", **limits, **TLS_PORTS_ENV,
        ).endpoints
        for _ in range(2)
    ]
    both = {g["http"] for g in gateways}
    balancer = nginx(gateways)
    await register_showcase_case(balancer)
    async with balancer.session(headers=auth_headers()) as session:
        answers = []
        for _ in range(8):
            async with session.post("/v1/queries", json=query_body()) as response:
                answers.append((response.status, response.headers.get("Retry-After"), response.headers[UPSTREAM]))
        assert [status for status, _, _ in answers] == [200] * 4 + [429] * 4, answers
        # Round robin: each gateway allowed two and refused two; the refusals say when to come back.
        assert {upstream for status, _, upstream in answers if status == 200} == both
        assert {upstream for status, _, upstream in answers if status == 429} == both
        assert all(int(after) >= 1 for status, after, _ in answers if status == 429)
        async with balancer.channel(issue_token()) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await gateway_pb2_grpc.AssetGatewayStub(channel).QueryAssets(asset_request(), timeout=10)
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

        # Control actions count against their own limit, also one for both gateways. The case is not
        # registered: the door's limit comes before authorization (404), so nothing is frozen.
        statuses, upstreams = [], set()
        case_number, debtor = new_case_number(), debtors()[0]
        for n in range(4):
            status, body, upstream = await post(
                session, "/v1/freezes", freeze_body(case_number, debtor, 1_000), f"limit-freeze-{n}"
            )
            statuses.append(status)
            upstreams.add(upstream)
        assert statuses == [404, 404, 429, 429] and upstreams == both
        assert "control actions" in body["error"]["message"]

    # Every refusal is in the audit trail (both gateways write the one in DATA_DIR), as denied.
    async with SqliteAuditStore(tmp_path / "audit.db") as audit:
        records = await audit.records()
    limited = [r for r in records if r.outcome == "denied" and r.reason.startswith("too many")]
    assert sorted(r.action for r in limited) == ["freeze"] * 2 + ["query"] * 5
