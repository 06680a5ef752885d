"""How tests reach a gateway, whether its ports serve TLS (the default) or plaintext (INSECURE_PLAINTEXT=1).

The run's gateway certificate comes from one PKI (the gateway_pki fixture
in conftest.py, which sets GATEWAY_TLS_CERT, GATEWAY_TLS_KEY, GATEWAY_TLS_CA
and CHAKONG_CA for every gateway and CLI the tests start). A test never
builds `http://` URLs or insecure channels to a gateway by hand: it takes
`GatewayEndpoints.of(gateway)` (an in-process Gateway, a ServiceProcess or
a READY line's endpoints) and asks it for a base URL, an aiohttp session or
SSL context, or a gRPC channel. The agencies' own links stay as their tests
set them (tests/support/agencies.py).
"""

import os
import socket
import ssl
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc

from services.cli.auth import gateway_channel
from services.common.tls import gateway_client_context, gateway_client_credentials

# A child gateway on TLS ports in front of the tests' plaintext mock agencies.
TLS_PORTS_ENV = {"INSECURE_PLAINTEXT": "agencies"}


def run_ca() -> Path:
    """The CA the run's gateway certificate comes from (gateway_pki)."""
    return Path(os.environ["CHAKONG_CA"])


def tls_settings() -> dict:
    """GatewaySettings fields of an in-process gateway serving TLS with the run's certificate."""
    return {
        "tls_cert": Path(os.environ["GATEWAY_TLS_CERT"]),
        "tls_key": Path(os.environ["GATEWAY_TLS_KEY"]),
        "tls_ca": Path(os.environ["GATEWAY_TLS_CA"]),
        "insecure_plaintext_ports": False,
    }


@dataclass(frozen=True)
class GatewayEndpoints:
    """One gateway's gRPC and HTTP addresses, and whether they serve TLS (scheme), as a client reaches them."""

    grpc: str
    http: str
    scheme: str = "https"
    # The CA its certificate must come from; the run's unless a test issued its own.
    ca: Path | None = None

    @classmethod
    def of(cls, gateway, ca: Path | None = None) -> "GatewayEndpoints":
        """From an in-process Gateway, a ServiceProcess or the endpoints dict of a READY line."""
        endpoints = getattr(gateway, "endpoints", gateway)
        return cls(endpoints["grpc"], endpoints["http"], endpoints["scheme"], ca)

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.http}"

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def ssl(self) -> ssl.SSLContext | bool:
        """aiohttp's `ssl=`: a context trusting only the CA, or True (the default) over plaintext."""
        return gateway_client_context(self.ca or run_ca()) if self.tls else True

    def connector(self) -> aiohttp.TCPConnector:
        return aiohttp.TCPConnector(ssl=self.ssl)

    def session(self, **kwargs) -> aiohttp.ClientSession:
        """An aiohttp session on base_url that trusts the gateway's CA (paths like "/v1/queries")."""
        return aiohttp.ClientSession(base_url=self.base_url, connector=self.connector(), **kwargs)

    def credentials(self) -> grpc.ChannelCredentials | None:
        return gateway_client_credentials(self.ca or run_ca()) if self.tls else None

    def channel(self, token: str = "") -> grpc.aio.Channel:
        """A gRPC channel to the gateway (the CLI's own), sending `token` with every call when one is given."""
        return gateway_channel(self.grpc, token, self.credentials())

    def sync_channel(self) -> grpc.Channel:
        """A blocking gRPC channel (for tests that are not async)."""
        if not self.tls:
            return grpc.insecure_channel(self.grpc)
        return grpc.secure_channel(self.grpc, grpc.ssl_channel_credentials((self.ca or run_ca()).read_bytes()))

    def urlopen(self, request: urllib.request.Request | str, timeout: float = 10):
        """urllib's urlopen on this gateway (a path, or a Request with a path as its URL)."""
        if isinstance(request, str):
            request = urllib.request.Request(self.url(request))
        elif request.full_url.startswith("/"):
            request.full_url = self.url(request.full_url)
        context = gateway_client_context(self.ca or run_ca()) if self.tls else None
        return urllib.request.urlopen(request, timeout=timeout, context=context)


def served_certificate(address: str, ca: Path, *, alpn: str = "http/1.1"):
    """The certificate a TLS port presents to a new connection (verified against `ca`): an x509.Certificate."""
    from cryptography import x509

    host, _, port = address.rpartition(":")
    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols([alpn])
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=host) as connection:
            return x509.load_der_x509_certificate(connection.getpeercert(binary_form=True))
