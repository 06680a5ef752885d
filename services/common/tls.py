"""TLS on every hop: mutual TLS between the gateway and the agencies (identities, credentials, the peer
check), and the gateway's own ports' certificate, reloadable without a restart (ServerCertificate).

Who is who is carried in the certificates the project's CA issues
(services.security.pki):

- every certificate names its holder with one SPIFFE-style URI SAN:
  `spiffe://chakong/gateway` or `spiffe://chakong/agency/<agency_id>`;
  an agency accepts a client only if that URI is in its allowed set
  (PeerIdentityInterceptor), because gRPC credentials can check the chain
  but not the name;
- an agency's certificate also carries its agency ID as a DNS SAN, and the
  gateway dials each agency with `grpc.ssl_target_name_override` set to the
  agency ID (agency_channel_options), so gRPC's own hostname verification
  refuses an agency whose certificate names another agency.
"""

import functools
import inspect
import logging
import ssl
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from prometheus_client import Counter, Gauge

from services.common.settings import SettingsError

logger = logging.getLogger(__name__)

TRUST_DOMAIN = "chakong"
GATEWAY_IDENTITY = f"spiffe://{TRUST_DOMAIN}/gateway"
_AGENCY_PREFIX = f"spiffe://{TRUST_DOMAIN}/agency/"

# Any client holding a certificate from the project's CA may ask whether an
# agency is up: docker healthchecks run beside the agency with its own
# certificate. Everything else, reflection included, is for the gateway only.
OPEN_METHODS = ("/grpc.health.v1.Health/",)

PEER_REFUSED = Counter(
    "chakong_grpc_peer_refused_total",
    "RPCs refused because the client certificate does not name an allowed identity.",
    ["reason"],
)
for _reason in ("no_certificate", "identity"):
    PEER_REFUSED.labels(_reason)
CERTIFICATE_EXPIRY = Gauge(
    "chakong_tls_certificate_expiry_timestamp_seconds",
    "When a certificate this process presents or trusts stops being valid (Unix time): its own (gateway or"
    " agency) and the CA's.",
    ["certificate"],
    multiprocess_mode="min",
)


def agency_identity(agency_id: str) -> str:
    return _AGENCY_PREFIX + agency_id


class TlsError(SettingsError):
    """A certificate, key or CA file is missing, unreadable or does not fit; the message names which."""


@dataclass(frozen=True)
class CertificateNames:
    """What a certificate says about its holder, for checks and start-up logs."""

    common_name: str
    uris: tuple[str, ...]
    dns_names: tuple[str, ...]
    not_after: datetime

    @property
    def identity(self) -> str:
        """The holder's SPIFFE-style URI, or '' when the certificate has none or several."""
        spiffe = [u for u in self.uris if u.startswith(f"spiffe://{TRUST_DOMAIN}/")]
        return spiffe[0] if len(spiffe) == 1 else ""


def certificate_names(certificate: x509.Certificate) -> CertificateNames:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = tuple(san.get_values_for_type(x509.UniformResourceIdentifier))
        dns_names = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        uris, dns_names = (), ()
    cn = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return CertificateNames(
        common_name=str(cn[0].value) if cn else "",
        uris=uris,
        dns_names=dns_names,
        not_after=certificate.not_valid_after_utc,
    )


def _read(path: Path | str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise TlsError(f"{what} {str(path)!r}: no such file (create one with `chakong pki init`)") from None
    except OSError as exc:
        raise TlsError(f"{what} {str(path)!r}: cannot read: {exc.strerror}") from None


def _load_certificates(pem: bytes, what: str, path) -> list[x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise TlsError(f"{what} {str(path)!r}: not a PEM certificate") from None
    return certificates


def _check_key_pair(certificate: x509.Certificate, key_pem: bytes, cert_path, key_path) -> None:
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        # Never echo the key file's contents.
        raise TlsError(f"private key {str(key_path)!r}: not an unencrypted PEM private key") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    if key.public_key().public_bytes(encoding, public) != certificate.public_key().public_bytes(encoding, public):
        raise TlsError(f"private key {str(key_path)!r}: does not belong to certificate {str(cert_path)!r}")


def _check_issued_by(certificate: x509.Certificate, cas: list[x509.Certificate], cert_path, ca_path) -> None:
    for ca in cas:
        try:
            certificate.verify_directly_issued_by(ca)
            return
        except (ValueError, TypeError, InvalidSignature):
            continue
    raise TlsError(f"certificate {str(cert_path)!r}: not issued by the CA in {str(ca_path)!r}")


def _check_current(certificate: x509.Certificate, path, now: datetime) -> None:
    if now < certificate.not_valid_before_utc:
        raise TlsError(
            f"certificate {str(path)!r}: not valid before {certificate.not_valid_before_utc:%Y-%m-%d %H:%M}Z"
        )
    if now > certificate.not_valid_after_utc:
        raise TlsError(
            f"certificate {str(path)!r}: expired {certificate.not_valid_after_utc:%Y-%m-%d %H:%M}Z; "
            "issue a new one with `chakong pki issue` and restart"
        )


@dataclass(frozen=True)
class _KeyPair:
    certificate_chain: bytes
    private_key: bytes = field(repr=False)
    names: CertificateNames


def _load_key_pair(cert: Path | str, key: Path | str, ca_pem: bytes, ca: Path | str, now: datetime | None) -> _KeyPair:
    """Read and check a certificate and its key: PEM, matching, issued by the CA, valid now."""
    cert_pem = _read(cert, "certificate")
    key_pem = _read(key, "private key")
    certificates = _load_certificates(cert_pem, "certificate", cert)
    cas = _load_certificates(ca_pem, "CA certificate", ca)
    leaf = certificates[0]
    _check_key_pair(leaf, key_pem, cert, key)
    _check_issued_by(leaf, cas, cert, ca)
    _check_current(leaf, cert, now or datetime.now(timezone.utc))
    names = certificate_names(leaf)
    _export_expiry(names, cas)
    return _KeyPair(cert_pem, key_pem, names)


def _export_expiry(names: CertificateNames, cas: list[x509.Certificate]) -> None:
    """The expiry of the certificate loaded, labelled by its holder's role, and of the CA (the soonest)."""
    identity = names.identity
    role = "gateway" if identity == GATEWAY_IDENTITY else "agency" if identity.startswith(_AGENCY_PREFIX) else "other"
    CERTIFICATE_EXPIRY.labels(role).set(names.not_after.timestamp())
    CERTIFICATE_EXPIRY.labels("ca").set(min(ca.not_valid_after_utc for ca in cas).timestamp())


@dataclass(frozen=True)
class ServerTls:
    """A server's certificate and key, the CA its clients must come from, and who may call.

    Without a client CA (server_only) clients are not asked for certificates:
    that is for the gateway's own endpoint, where executors prove who they
    are with tokens instead.
    """

    certificate_chain: bytes
    private_key: bytes = field(repr=False)
    client_ca: bytes | None
    allowed_clients: frozenset[str] = frozenset({GATEWAY_IDENTITY})
    names: CertificateNames | None = None

    @classmethod
    def from_files(
        cls,
        cert: Path | str,
        key: Path | str,
        ca: Path | str,
        allowed_clients: Iterable[str] = (GATEWAY_IDENTITY,),
        *,
        now: datetime | None = None,
    ) -> "ServerTls":
        ca_pem = _read(ca, "CA certificate")
        pair = _load_key_pair(cert, key, ca_pem, ca, now)
        allowed = frozenset(allowed_clients)
        if not allowed:
            raise TlsError("allowed clients: at least one identity is required")
        return cls(pair.certificate_chain, pair.private_key, ca_pem, allowed, pair.names)

    @classmethod
    def server_only(
        cls, cert: Path | str, key: Path | str, ca: Path | str, *, now: datetime | None = None
    ) -> "ServerTls":
        """TLS without client certificates; `ca` only checks the server's own certificate at start-up."""
        pair = _load_key_pair(cert, key, _read(ca, "CA certificate"), ca, now)
        return cls(pair.certificate_chain, pair.private_key, None, frozenset(), pair.names)

    @property
    def mutual(self) -> bool:
        return self.client_ca is not None

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.private_key, self.certificate_chain)],
            root_certificates=self.client_ca,
            require_client_auth=self.mutual,
        )

    def interceptor(self) -> "PeerIdentityInterceptor | None":
        return PeerIdentityInterceptor(self.allowed_clients) if self.mutual else None


class ServerCertificate:
    """A server's certificate and key from files, for TLS without client certificates, reloadable in place.

    The gateway's own ports use it: executors prove who they are with
    tokens, the certificate proves the gateway to them. `reload()` reads and
    checks the files again (PEM, matching, issued by the CA, valid now) and
    hands the new pair to both servers without a restart: gRPC asks
    `_fetch` on every new handshake (dynamic_ssl_server_credentials), the
    HTTP port's SSLContext is given the pair with load_cert_chain, which
    applies to the handshakes after it. Connections already open keep the
    certificate they were made with. A pair that fails the checks is
    refused whole and the one in use stays.
    """

    def __init__(self, cert: Path | str, key: Path | str, ca: Path | str, *, now: datetime | None = None):
        self.cert, self.key, self.ca = Path(cert), Path(key), Path(ca)
        self._pair = self._load(now)
        self._pending: grpc.ServerCertificateConfiguration | None = None
        # gRPC calls _fetch from its own threads, reload runs on the event loop.
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None

    def _load(self, now: datetime | None = None) -> _KeyPair:
        return _load_key_pair(self.cert, self.key, _read(self.ca, "CA certificate"), self.ca, now)

    @property
    def names(self) -> CertificateNames:
        return self._pair.names

    def _configuration(self) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration([(self._pair.private_key, self._pair.certificate_chain)])

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        # Called by gRPC before each handshake; None keeps the configuration it has.
        with self._lock:
            pending, self._pending = self._pending, None
        return pending

    def grpc_credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(self._configuration(), self._fetch,
                                                   require_client_authentication=False)

    def ssl_context(self) -> ssl.SSLContext:
        """The HTTP port's context (one per certificate: reload() changes it in place)."""
        if self._context is None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.set_alpn_protocols(["http/1.1"])
            context.load_cert_chain(self.cert, self.key)
            self._context = context
        return self._context

    def reload(self) -> CertificateNames:
        """Read the files again; raises TlsError (and keeps the pair in use) when they do not pass."""
        pair = self._load()
        if self._context is not None:
            try:
                self._context.load_cert_chain(self.cert, self.key)
            except (OSError, ssl.SSLError) as exc:
                raise TlsError(f"certificate {str(self.cert)!r} and key {str(self.key)!r}: {exc}") from None
        self._pair = pair
        with self._lock:
            self._pending = self._configuration()
        return pair.names


@dataclass(frozen=True)
class ClientTls:
    """The gateway's client certificate and key, and the CA agencies' certificates must come from."""

    root_ca: bytes
    certificate_chain: bytes
    private_key: bytes = field(repr=False)
    names: CertificateNames | None = None

    @classmethod
    def from_files(
        cls, ca: Path | str, cert: Path | str, key: Path | str, *, now: datetime | None = None
    ) -> "ClientTls":
        ca_pem = _read(ca, "CA certificate")
        pair = _load_key_pair(cert, key, ca_pem, ca, now)
        return cls(ca_pem, pair.certificate_chain, pair.private_key, pair.names)

    def credentials(self) -> grpc.ChannelCredentials:
        return channel_credentials(self.root_ca, self.certificate_chain, self.private_key)


def channel_credentials(ca: bytes, cert: bytes, key: bytes) -> grpc.ChannelCredentials:
    """Client credentials presenting `cert` and trusting only servers the project CA issued."""
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


def gateway_client_context(ca: Path | str) -> ssl.SSLContext:
    """An HTTPS client context that trusts only the CA in `ca` (the gateway's HTTP port, for the CLI and tests)."""
    try:
        return ssl.create_default_context(cafile=str(ca))
    except FileNotFoundError:
        raise TlsError(f"CA certificate {str(ca)!r}: no such file (create one with `chakong pki init`)") from None
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"CA certificate {str(ca)!r}: {exc}") from None


def gateway_client_credentials(ca: Path | str) -> grpc.ChannelCredentials:
    """gRPC credentials that trust only the CA in `ca`, for clients of the gateway's gRPC port."""
    return grpc.ssl_channel_credentials(root_certificates=_read(ca, "CA certificate"))


def agency_channel_options(agency_id: str) -> tuple[tuple[str, str], ...]:
    """Channel options that make the TLS handshake check the server certificate names `agency_id`.

    gRPC verifies the server's certificate against the target host name; the
    override replaces that name with the agency ID, which every agency
    certificate carries as a DNS SAN. So whatever address the registry has
    (an IP, a compose service name), an agency presenting another agency's
    certificate fails the handshake (UNAVAILABLE), before any request is sent.
    """
    return (("grpc.ssl_target_name_override", agency_id),)


def secure_agency_channel(
    address: str,
    agency_id: str,
    credentials: grpc.ChannelCredentials,
    options: Iterable[tuple[str, object]] = (),
) -> grpc.aio.Channel:
    """An mTLS channel to one agency that only completes if the agency's certificate names it."""
    return grpc.aio.secure_channel(address, credentials, options=[*options, *agency_channel_options(agency_id)])


@functools.lru_cache(maxsize=256)
def _identities_of_pem(pem: bytes) -> frozenset[str]:
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return frozenset()
    return frozenset(certificate_names(certificate).uris)


def peer_identities(auth_context: Mapping[str, Iterable[bytes]]) -> frozenset[str]:
    """The URI SANs of the client certificate gRPC verified for this call; empty without one.

    Read from the certificate itself rather than gRPC's flattened
    `x509_subject_alternative_name`, which mixes DNS names, URIs and IPs
    and so cannot tell a URI from a DNS name spelled the same.
    """
    pems = list(auth_context.get("x509_pem_cert") or ())
    if len(pems) != 1:
        return frozenset()
    return _identities_of_pem(bytes(pems[0]))


class PeerIdentityInterceptor(grpc.aio.ServerInterceptor):
    """Abort UNAUTHENTICATED unless the client's certificate names an allowed identity.

    TLS with require_client_auth already proved the client holds a key the
    project's CA certified; this decides whether that holder may call.
    """

    def __init__(self, allowed: Iterable[str], open_methods: Iterable[str] = OPEN_METHODS):
        self._allowed = frozenset(allowed)
        self._open_methods = tuple(open_methods)

    def refusal(self, context: grpc.aio.ServicerContext) -> str:
        """Why this call's peer may not call, or '' when it may."""
        auth = context.auth_context()
        if not auth.get("x509_pem_cert"):
            return "no client certificate"
        identities = peer_identities(auth)
        if not identities & self._allowed:
            shown = ", ".join(sorted(identities)) or "no URI name"
            return f"client certificate ({shown}) is not allowed to call this service"
        return ""

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(self._open_methods):
            return handler

        async def check(context: grpc.aio.ServicerContext) -> None:
            reason = self.refusal(context)
            if reason:
                PEER_REFUSED.labels("no_certificate" if reason == "no client certificate" else "identity").inc()
                logger.warning("refused %s from %s: %s", handler_call_details.method, context.peer(), reason)
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)

        return _guarded(handler, check)


def _guarded(handler: grpc.RpcMethodHandler, check) -> grpc.RpcMethodHandler:
    """The same handler, running `check(context)` before anything else, for all four call kinds.

    Responses are written with context.write so handlers that yield and
    handlers that write (grpc's health Watch) both work.
    """
    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }

    async def drain(result, context):
        if inspect.isasyncgen(result):
            async for item in result:
                await context.write(item)
        else:
            await result

    if handler.unary_unary:
        inner_uu = handler.unary_unary

        async def unary_unary(request, context):
            await check(context)
            return await inner_uu(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, **kwargs)
    if handler.unary_stream:
        inner_us = handler.unary_stream

        async def unary_stream(request, context):
            await check(context)
            await drain(inner_us(request, context), context)

        return grpc.unary_stream_rpc_method_handler(unary_stream, **kwargs)
    if handler.stream_unary:
        inner_su = handler.stream_unary

        async def stream_unary(request_iterator, context):
            await check(context)
            return await inner_su(request_iterator, context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, **kwargs)
    inner_ss = handler.stream_stream

    async def stream_stream(request_iterator, context):
        await check(context)
        await drain(inner_ss(request_iterator, context), context)

    return grpc.stream_stream_rpc_method_handler(stream_stream, **kwargs)
