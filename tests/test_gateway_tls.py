"""TLS on the executor's hop: the gateway's own gRPC and HTTP ports serve TLS by default, plaintext only
behind INSECURE_PLAINTEXT=1, and SIGHUP rotates the certificate on a running process (and its workers)."""

import asyncio
import contextlib
import shutil
import signal
import time

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos.gateway.v1 import gateway_pb2_grpc
from services.security import pki
from tests.support.agencies import start_agencies
from tests.support.auth import auth_headers, issue_token
from tests.support.gateway import asset_request, query_body, register_showcase_case, write_registry
from tests.support.gateway_process import start_gateway
from tests.support.harness import ServiceProcess
from tests.support.tls import GatewayEndpoints, served_certificate

PLAINTEXT = {"INSECURE_PLAINTEXT": "1"}


@pytest.fixture
def icbc(start_service):
    return start_agencies(start_service, ("icbc", "bank", PLAINTEXT))


@pytest.fixture
def own_pki(tmp_path) -> pki.PkiLayout:
    """A PKI of this test's own, so that rotating its gateway certificate touches no other test's."""
    directory = tmp_path / "pki"
    pki.init_pki(directory, [])
    return pki.PkiLayout(directory)


def pki_env(layout: pki.PkiLayout) -> dict[str, str]:
    return {"GATEWAY_TLS_CERT": str(layout.gateway_server.cert), "GATEWAY_TLS_KEY": str(layout.gateway_server.key),
            "GATEWAY_TLS_CA": str(layout.ca.cert)}


class Wiretap:
    """A TCP relay in front of the gateway that keeps every byte the client sends: what an eavesdropper sees."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.seen = bytearray()
        self.address = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> "Wiretap":
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.address = f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        self._relays: set[asyncio.Task] = set()
        return self

    async def __aexit__(self, *exc) -> None:
        self._server.close()
        await self._server.wait_closed()
        for task in self._relays:
            task.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._relays.add(asyncio.current_task())
        host, _, port = self.upstream.rpartition(":")
        up_reader, up_writer = await asyncio.open_connection(host, int(port))

        async def pump(source, sink, record: bool) -> None:
            with contextlib.suppress(ConnectionError):
                while chunk := await source.read(65536):
                    if record:
                        self.seen.extend(chunk)
                    sink.write(chunk)
                    await sink.drain()

        try:
            await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))
        finally:
            for w in (writer, up_writer):
                w.close()
                with contextlib.suppress(Exception):
                    await w.wait_closed()


async def query_through(tap: Wiretap, endpoints: GatewayEndpoints, token: str) -> None:
    """One HTTP and one gRPC query with `token`, dialled at the wiretap (the certificate names 127.0.0.1 too)."""
    tapped = GatewayEndpoints(grpc=tap.address, http=tap.address, scheme=endpoints.scheme, ca=endpoints.ca)
    async with tapped.session(headers=auth_headers(token)) as session:
        async with session.post("/v1/queries", json=query_body()) as response:
            assert response.status == 200, await response.text()
    async with Wiretap(endpoints.grpc) as grpc_tap:
        tapped = GatewayEndpoints(grpc=grpc_tap.address, http=tap.address, scheme=endpoints.scheme, ca=endpoints.ca)
        async with tapped.channel(token) as channel:
            assert (await gateway_pb2_grpc.AssetGatewayStub(channel).QueryAssets(asset_request(), timeout=5)).complete
    tap.seen.extend(grpc_tap.seen)


async def test_the_token_never_crosses_the_network_in_clear(tmp_path, start_service, icbc):
    for name in ("tls", "plain"):
        (tmp_path / name).mkdir()
    tls_gateway, _, _ = start_gateway(tmp_path / "tls", start_service, icbc, tls=True, DATA_DIR=str(tmp_path / "tls"))
    endpoints = GatewayEndpoints.of(tls_gateway)
    assert endpoints.tls and endpoints.base_url.startswith("https://")
    await register_showcase_case(endpoints)
    token = issue_token()
    async with Wiretap(endpoints.http) as tap:
        await query_through(tap, endpoints, token)
    assert len(tap.seen) > 1000 and token.encode() not in tap.seen
    assert b"Bearer" not in tap.seen and b"/v1/queries" not in tap.seen

    # The same wiretap on a gateway behind the development flag reads the token: the check above can fail.
    plain_gateway, _, _ = start_gateway(tmp_path / "plain", start_service, icbc, DATA_DIR=str(tmp_path / "plain"))
    plain = GatewayEndpoints.of(plain_gateway)
    assert not plain.tls
    await register_showcase_case(plain)
    async with Wiretap(plain.http) as tap:
        await query_through(tap, plain, token)
    assert token.encode() in tap.seen


async def test_without_the_flag_a_plaintext_client_is_refused_on_both_ports(tmp_path, start_service, icbc):
    gateway, _, _ = start_gateway(tmp_path, start_service, icbc, tls=True)
    endpoints = GatewayEndpoints.of(gateway)
    async with grpc.aio.insecure_channel(endpoints.grpc) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    async with aiohttp.ClientSession(headers=auth_headers()) as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.post(f"http://{endpoints.http}/v1/queries", json=query_body()) as response:
                await response.read()
    # A client that does not trust the project CA does not get through either.
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(endpoints.url("/healthz"))
    # And the one that does, does.
    async with endpoints.session() as session, session.get("/healthz") as response:
        assert response.status == 200


def test_a_gateway_without_its_certificate_does_not_start(tmp_path, icbc, own_pki):
    env = {"GATEWAY_GRPC_ADDRESS": "127.0.0.1:0", "GATEWAY_HTTP_ADDRESS": "127.0.0.1:0", "DATA_DIR": str(tmp_path),
           "AGENCY_REGISTRY": str(write_registry(tmp_path, icbc)), "INSECURE_PLAINTEXT": "agencies",
           **pki_env(own_pki), "GATEWAY_TLS_CERT": str(tmp_path / "missing.crt")}
    with pytest.raises(RuntimeError) as failed:
        ServiceProcess("services.gateway", env, ready_timeout=20).start()
    assert "missing.crt" in str(failed.value) and "no such file" in str(failed.value)
    env = {**env, **pki_env(own_pki), "INSECURE_PLAINTEXT": "yes"}
    with pytest.raises(RuntimeError) as failed:
        ServiceProcess("services.gateway", env, ready_timeout=20).start()
    assert "INSECURE_PLAINTEXT='yes'" in str(failed.value)


def serial_of(address: str, ca, alpn: str) -> int:
    return served_certificate(address, ca, alpn=alpn).serial_number


async def rotate_and_see(gateway: ServiceProcess, layout: pki.PkiLayout, *, connections: int = 1) -> None:
    """Issue a new gateway certificate over the files, SIGHUP, and see every new connection get it."""
    endpoints = GatewayEndpoints.of(gateway, ca=layout.ca.cert)
    ca = layout.ca.cert
    old = serial_of(endpoints.grpc, ca, "h2")
    assert serial_of(endpoints.http, ca, "http/1.1") == old
    async with endpoints.session(headers=auth_headers()) as kept:
        async with kept.get("/healthz") as response:
            assert response.status == 200
        pki.issue_files(layout.directory, gateway=True)
        new = pki.read_leaf(layout.gateway_server).certificate.serial_number
        assert new != old
        gateway.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            served = {serial_of(endpoints.grpc, ca, "h2") for _ in range(connections)}
            served |= {serial_of(endpoints.http, ca, "http/1.1") for _ in range(connections)}
            if served == {new}:
                break
            await asyncio.sleep(0.1)
        assert served == {new}, (old, new, served, "".join(gateway.output))
        # A connection made before the rotation carries on.
        async with kept.post("/v1/queries", json=query_body()) as response:
            assert response.status == 200, await response.text()
    async with endpoints.channel(issue_token()) as channel:
        assert (await gateway_pb2_grpc.AssetGatewayStub(channel).QueryAssets(asset_request(), timeout=5)).complete


async def test_sighup_rotates_the_certificate_without_a_restart(tmp_path, start_service, icbc, own_pki):
    gateway, _, _ = start_gateway(tmp_path, start_service, icbc, tls=True, **pki_env(own_pki))
    pid = gateway.proc.pid
    await register_showcase_case(GatewayEndpoints.of(gateway, ca=own_pki.ca.cert))
    await rotate_and_see(gateway, own_pki)
    assert "TLS certificate reloaded (SIGHUP)" in "".join(gateway.output)

    # A broken pair is refused whole; the certificate in use stays and the process lives on.
    in_use = pki.read_leaf(own_pki.gateway_server).certificate.serial_number
    shutil.copy(own_pki.ca.key, own_pki.gateway_server.key)
    gateway.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "reload (SIGHUP) rejected" not in "".join(gateway.output) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert "does not belong to certificate" in "".join(gateway.output)
    endpoints = GatewayEndpoints.of(gateway, ca=own_pki.ca.cert)
    assert serial_of(endpoints.http, own_pki.ca.cert, "http/1.1") == in_use
    assert serial_of(endpoints.grpc, own_pki.ca.cert, "h2") == in_use
    assert gateway.proc.poll() is None and gateway.proc.pid == pid


async def test_sighup_to_the_supervisor_rotates_every_worker(tmp_path, start_service, icbc, own_pki):
    gateway, _, _ = start_gateway(tmp_path, start_service, icbc, tls=True, GATEWAY_WORKERS="2",
                                  LEDGER_URL=f"sqlite:///{tmp_path}/gateway-ledger.db", **pki_env(own_pki))
    await register_showcase_case(GatewayEndpoints.of(gateway, ca=own_pki.ca.cert))
    # Several new connections per port: the kernel spreads them over both workers.
    await rotate_and_see(gateway, own_pki, connections=8)
    assert gateway.proc.poll() is None

