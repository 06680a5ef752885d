"""Mutual TLS between the gateway and an agency: a real bank process, real channels, real certificates."""

import logging
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from protos.bank.v1 import bank_pb2, bank_pb2_grpc
from protos.common.v1 import common_pb2
from services import datagen
from services.agency import config as agency_config
from services.common import tls
from services.common.settings import SettingsError
from services.security import pki

SEED = 42
SUBJECTS = 200
CASE = common_pb2.CaseRef(
    case_number="(2024)皖01执123号", court_code="340100", executor_id="E0001", document_number="(2024)皖01执123号"
)


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    pki.init_pki(directory, ["icbc", "ccb"])
    return directory


@pytest.fixture(scope="module")
def layout(pki_dir) -> pki.PkiLayout:
    return pki.PkiLayout(pki_dir)


def bank_env(layout: pki.PkiLayout, agency_id: str = "icbc", **extra: str) -> dict[str, str]:
    files = layout.agency(agency_id)
    return {
        "AGENCY_ID": agency_id,
        "GRPC_ADDRESS": "127.0.0.1:0",
        "METRICS_ADDRESS": "127.0.0.1:0",
        "SEED": str(SEED),
        "SUBJECTS": str(SUBJECTS),
        "LOG_FORMAT": "text",
        "TLS_CERT": str(files.cert),
        "TLS_KEY": str(files.key),
        "TLS_CA": str(layout.ca.cert),
        **extra,
    }


@pytest.fixture
def bank(start_service, layout):
    return start_service("services.bank", **bank_env(layout))


def leaf_credentials(layout: pki.PkiLayout, leaf: pki.Leaf) -> grpc.ChannelCredentials:
    return tls.channel_credentials(layout.ca.cert.read_bytes(), leaf.cert_pem(), leaf.key_pem())


def file_credentials(layout: pki.PkiLayout, files: pki.LeafFiles) -> grpc.ChannelCredentials:
    return tls.ClientTls.from_files(layout.ca.cert, files.cert, files.key).credentials()


def subject() -> common_pb2.Subject:
    person = datagen.subjects(SEED, SUBJECTS)[0]
    return common_pb2.Subject(type=person.subject_type, id_number=person.id_number)


async def query_accounts(address: str, agency_id: str, credentials: grpc.ChannelCredentials):
    async with tls.secure_agency_channel(address, agency_id, credentials) as channel:
        request = bank_pb2.QueryAccountsRequest(request_id="mtls-1", case=CASE, subject=subject())
        return await bank_pb2_grpc.BankStub(channel).QueryAccounts(request, timeout=5)


async def refused_code(address: str, agency_id: str, credentials: grpc.ChannelCredentials) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await query_accounts(address, agency_id, credentials)
    return refused.value.code()


async def test_the_gateway_certificate_is_accepted(bank, layout):
    response = await query_accounts(bank.endpoints["grpc"], "icbc", file_credentials(layout, layout.gateway_client))
    assert isinstance(response, bank_pb2.QueryAccountsResponse)


async def test_a_client_without_a_certificate_is_refused(bank, layout):
    credentials = grpc.ssl_channel_credentials(root_certificates=layout.ca.cert.read_bytes())
    assert await refused_code(bank.endpoints["grpc"], "icbc", credentials) == grpc.StatusCode.UNAVAILABLE


async def test_a_plaintext_client_is_refused(bank):
    async with grpc.aio.insecure_channel(bank.endpoints["grpc"]) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_certificate_from_another_ca_is_refused(bank, layout):
    # Same identity, same CA name, different key: only the signature tells them apart.
    impostor = pki.CertificateAuthority.create().issue_gateway_client()
    code = await refused_code(bank.endpoints["grpc"], "icbc", leaf_credentials(layout, impostor))
    assert code == grpc.StatusCode.UNAVAILABLE


async def test_an_expired_certificate_is_refused(bank, layout):
    now = datetime.now(timezone.utc)
    expired = pki.load_ca(layout.directory).issue_gateway_client(
        not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
    )
    code = await refused_code(bank.endpoints["grpc"], "icbc", leaf_credentials(layout, expired))
    assert code == grpc.StatusCode.UNAVAILABLE


async def test_an_agency_certificate_used_as_a_client_is_refused(bank, layout):
    """The handshake succeeds (same CA, client use allowed), the identity check does not."""
    credentials = file_credentials(layout, layout.agency("ccb"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await query_accounts(bank.endpoints["grpc"], "icbc", credentials)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "spiffe://chakong/agency/ccb" in refused.value.details()
    assert "not allowed" in refused.value.details()


async def test_reflection_is_for_the_gateway_only(bank, layout):
    """Streaming methods go through the same identity check as unary ones."""

    async def list_services(credentials):
        async with tls.secure_agency_channel(bank.endpoints["grpc"], "icbc", credentials) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            return [r async for r in stub.ServerReflectionInfo(iter([request]), timeout=5)]

    assert await list_services(file_credentials(layout, layout.gateway_client))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await list_services(file_credentials(layout, layout.agency("ccb")))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_health_is_open_to_any_certificate_of_the_ca(bank, layout):
    """So a docker healthcheck beside the agency can use the agency's own certificate."""
    credentials = file_credentials(layout, layout.agency("icbc"))
    async with tls.secure_agency_channel(bank.endpoints["grpc"], "icbc", credentials) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_the_gateway_refuses_an_agency_whose_certificate_names_another_agency(bank, layout):
    """The registry says ccb lives at this address, but icbc answers: the handshake fails."""
    credentials = file_credentials(layout, layout.gateway_client)
    assert await refused_code(bank.endpoints["grpc"], "ccb", credentials) == grpc.StatusCode.UNAVAILABLE
    # The same process, dialled as the agency it is, answers.
    assert isinstance(await query_accounts(bank.endpoints["grpc"], "icbc", credentials), bank_pb2.QueryAccountsResponse)


async def test_an_allowed_client_list_admits_other_identities(start_service, layout):
    bank = start_service(
        "services.bank",
        **bank_env(layout, TLS_ALLOWED_CLIENT=f"{tls.GATEWAY_IDENTITY}, {tls.agency_identity('ccb')}"),
    )
    response = await query_accounts(bank.endpoints["grpc"], "icbc", file_credentials(layout, layout.agency("ccb")))
    assert isinstance(response, bank_pb2.QueryAccountsResponse)


def test_an_agency_will_not_start_with_another_agencys_certificate(start_service, layout):
    env = bank_env(layout, "ccb", AGENCY_ID="icbc")
    with pytest.raises(RuntimeError) as failed:
        start_service("services.bank", **env)
    assert "not agency 'icbc'" in str(failed.value)


def test_an_agency_will_not_start_with_a_key_that_is_not_its_certificates(start_service, layout):
    env = bank_env(layout, TLS_KEY=str(layout.agency("ccb").key))
    with pytest.raises(RuntimeError) as failed:
        start_service("services.bank", **env)
    assert "does not belong to certificate" in str(failed.value)


def test_plaintext_is_announced_loudly(start_service):
    bank = start_service(
        "services.bank", GRPC_ADDRESS="127.0.0.1:0", METRICS_ADDRESS="127.0.0.1:0", SUBJECTS=str(SUBJECTS),
        LOG_FORMAT="text", INSECURE_PLAINTEXT="1",
    )
    assert any("WARNING" in line and "INSECURE PLAINTEXT" in line for line in bank.output)


# Settings: what the environment may say, checked before anything listens.

def set_tls_env(monkeypatch, layout, agency_id="icbc", **extra):
    for name in ("TLS_CERT", "TLS_KEY", "TLS_CA", "TLS_ALLOWED_CLIENT", "INSECURE_PLAINTEXT"):
        monkeypatch.delenv(name, raising=False)
    files = layout.agency(agency_id)
    values = {"TLS_CERT": str(files.cert), "TLS_KEY": str(files.key), "TLS_CA": str(layout.ca.cert), **extra}
    for name, value in values.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


def test_tls_settings_load_the_agencys_certificate(monkeypatch, layout):
    set_tls_env(monkeypatch, layout)
    server_tls = agency_config.tls_env("icbc")
    assert server_tls is not None
    assert server_tls.allowed_clients == {tls.GATEWAY_IDENTITY}
    assert server_tls.names.identity == tls.agency_identity("icbc")
    assert "PRIVATE KEY" not in repr(server_tls)


@pytest.mark.parametrize(
    "env, message",
    [
        (lambda layout: {"TLS_KEY": None}, "TLS_KEY is not set"),
        (lambda layout: {"INSECURE_PLAINTEXT": "1"}, "choose plaintext or mutual TLS"),
        (lambda layout: {"INSECURE_PLAINTEXT": "yes"}, "INSECURE_PLAINTEXT='yes'"),
        (lambda layout: {"TLS_CERT": "/nonexistent/agency.crt"}, "no such file"),
        # A CA file that is not the CA that issued the certificate.
        (lambda layout: {"TLS_CA": str(layout.gateway_server.cert)}, "not issued by the CA"),
    ],
    ids=["partial", "both", "bad-flag", "missing-file", "wrong-ca"],
)
def test_bad_tls_settings_fail_fast(monkeypatch, layout, env, message):
    set_tls_env(monkeypatch, layout, **env(layout))
    with pytest.raises(SettingsError, match=re.escape(message)):
        agency_config.tls_env("icbc")


def test_no_tls_settings_refuse_to_start_unless_plaintext_is_asked_for(monkeypatch):
    for name in ("TLS_CERT", "TLS_KEY", "TLS_CA", "INSECURE_PLAINTEXT"):
        monkeypatch.delenv(name, raising=False)
    assert agency_config.PLAINTEXT_WITHOUT_TLS_SETTINGS is False
    with pytest.raises(SettingsError, match="INSECURE_PLAINTEXT=1"):
        agency_config.tls_env("icbc")
    monkeypatch.setenv("INSECURE_PLAINTEXT", "1")
    assert agency_config.tls_env("icbc") is None


def test_insecure_plaintext_0_demands_tls_already(monkeypatch):
    for name in ("TLS_CERT", "TLS_KEY", "TLS_CA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INSECURE_PLAINTEXT", "0")
    with pytest.raises(SettingsError, match="mutual TLS needs TLS_CERT"):
        agency_config.tls_env("icbc")


def test_an_expired_server_certificate_fails_fast(tmp_path, layout):
    now = datetime.now(timezone.utc)
    leaf = pki.load_ca(layout.directory).issue_agency("icbc", not_before=now - timedelta(days=9),
                                                     not_after=now - timedelta(days=2))
    files = pki.LeafFiles(tmp_path / "old.crt", tmp_path / "old.key")
    pki.write_leaf(files, leaf)
    with pytest.raises(tls.TlsError, match="expired"):
        tls.ServerTls.from_files(files.cert, files.key, layout.ca.cert)


def test_peer_identities_ignore_dns_names_spelled_like_identities():
    ca = pki.CertificateAuthority.create()
    leaf = ca.issue(common_name="sly", dns_names=["spiffe-chakong-gateway"], uris=["spiffe://chakong/agency/x"],
                    client_auth=True)
    identities = tls.peer_identities({"x509_pem_cert": [leaf.cert_pem()]})
    assert identities == {"spiffe://chakong/agency/x"}
    assert tls.peer_identities({}) == frozenset()


def test_plaintext_warning_names_the_agency(caplog):
    from services.agency.server import log_transport_security
    from services.bank.config import Settings
    from services.common.interceptors import FaultSettings

    settings = Settings(
        agency_id="icbc", agency_name="x", grpc_address="127.0.0.1:0", metrics_address="127.0.0.1:0",
        data_dir=Path("."), db_path=Path(":memory:"), seed=0, subjects=1, grace_seconds=0.0, faults=FaultSettings(),
        profile="bank",
    )
    with caplog.at_level(logging.WARNING):
        log_transport_security(settings)
    assert "INSECURE PLAINTEXT" in caplog.text and "icbc" in caplog.text


async def test_the_gateways_own_endpoint_can_serve_tls_without_client_certificates(layout):
    """Executors reach the gateway with a token, not a certificate: server-only TLS."""
    from services.common.grpc_server import GrpcServer

    server_tls = tls.ServerTls.server_only(layout.gateway_server.cert, layout.gateway_server.key, layout.ca.cert)
    assert not server_tls.mutual and server_tls.interceptor() is None
    server = await GrpcServer.start("127.0.0.1:0", lambda s: None, [], tls=server_tls)
    try:
        address = f"127.0.0.1:{server.port}"
        credentials = grpc.ssl_channel_credentials(root_certificates=layout.ca.cert.read_bytes())
        options = [("grpc.ssl_target_name_override", "localhost")]
        async with grpc.aio.secure_channel(address, credentials, options=options) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        async with grpc.aio.insecure_channel(address) as channel:
            with pytest.raises(grpc.aio.AioRpcError):
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    finally:
        await server.stop(0)
