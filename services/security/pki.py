"""A development CA and the gateway's and agencies' certificates, as files for mutual TLS.

Layout of a PKI directory (keys 0600, the directory 0700):

    ca.crt, ca.key                      the CA (EC P-256, 10 years by default)
    gateway.crt, gateway.key            the gateway as a server (CLI and HTTP clients dial it)
    gateway-client.crt, ...key          the gateway as a client of the agencies
    agency-<id>.crt, agency-<id>.key    one agency, as a server (and as a client for its own health check)

Identities (see services.common.tls): every leaf carries exactly one URI SAN,
`spiffe://chakong/gateway` or `spiffe://chakong/agency/<id>`; an agency's
certificate also carries DNS `<id>` (what the gateway checks when it dials
it), DNS `localhost` and IP 127.0.0.1.

Rotation: `chakong pki issue` writes a new certificate and key over the old
ones. The gateway's server certificate (its own ports) is reloaded on
SIGHUP without a restart; the others are picked up when the service restarts.

An agency outside the project keeps its private key: it sends a certificate
signing request (`chakong pki csr`, or openssl), and `chakong pki sign-csr`
(`sign_agency_csr`) issues the certificate with the names the rules above
require, whatever else the request asks for, refusing a request that asks to
be someone else.
"""

import ipaddress
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.common.tls import GATEWAY_IDENTITY, agency_identity

DEFAULT_CA_DAYS = 3650
DEFAULT_LEAF_DAYS = 365
# Certificates start a little in the past so a peer whose clock is slightly
# behind does not see them as not yet valid.
CLOCK_SKEW = timedelta(minutes=5)

# The same rule as AGENCY_ID (services.agency.config): a DNS label.
_AGENCY_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_LOOPBACK = ipaddress.ip_address("127.0.0.1")


class PkiError(Exception):
    """A PKI file is missing, unreadable or inconsistent; the message names the file."""


@dataclass(frozen=True)
class LeafFiles:
    cert: Path
    key: Path


@dataclass(frozen=True)
class PkiLayout:
    """Where each file of a PKI directory lives."""

    directory: Path

    @property
    def ca(self) -> LeafFiles:
        return LeafFiles(self.directory / "ca.crt", self.directory / "ca.key")

    @property
    def gateway_server(self) -> LeafFiles:
        return LeafFiles(self.directory / "gateway.crt", self.directory / "gateway.key")

    @property
    def gateway_client(self) -> LeafFiles:
        return LeafFiles(self.directory / "gateway-client.crt", self.directory / "gateway-client.key")

    def agency(self, agency_id: str) -> LeafFiles:
        check_agency_id(agency_id)
        return LeafFiles(self.directory / f"agency-{agency_id}.crt", self.directory / f"agency-{agency_id}.key")


def check_agency_id(agency_id: str) -> str:
    if not _AGENCY_ID.fullmatch(agency_id):
        raise PkiError(
            f"agency ID {agency_id!r}: expected 1 to 32 lower-case letters, digits or '-', not starting with '-'"
        )
    return agency_id


@dataclass(frozen=True)
class Leaf:
    """A certificate and its private key."""

    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(timezone.utc)


@dataclass(frozen=True)
class CertificateAuthority:
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(
        cls, *, common_name: str = "chakong development CA", days: int = DEFAULT_CA_DAYS, now: datetime | None = None
    ) -> "CertificateAuthority":
        if days < 1:
            raise PkiError(f"CA validity: {days} days; must be at least 1")
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "chakong"),
                          x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        start = _now(now) - CLOCK_SKEW
        public = key.public_key()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + CLOCK_SKEW + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key)

    def issued(self, certificate: x509.Certificate) -> bool:
        """Whether this CA signed `certificate`."""
        try:
            certificate.verify_directly_issued_by(self.certificate)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True

    def issue(
        self,
        *,
        common_name: str,
        uris: Iterable[str] = (),
        dns_names: Iterable[str] = (),
        ips: Iterable[str] = (),
        server_auth: bool = True,
        client_auth: bool = False,
        days: int = DEFAULT_LEAF_DAYS,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        now: datetime | None = None,
        public_key=None,
    ) -> Leaf:
        """Sign a new leaf. Validity ends no later than the CA's, unless not_after says otherwise (tests).

        With `public_key` (from a certificate request) no key is made: the
        Leaf's private_key is None, the holder keeps theirs.
        """
        if days < 1:
            raise PkiError(f"certificate validity: {days} days; must be at least 1")
        if not (server_auth or client_auth):
            raise PkiError("a certificate must allow server or client authentication")
        key = None if public_key is not None else ec.generate_private_key(ec.SECP256R1())
        start = not_before or _now(now) - CLOCK_SKEW
        end = not_after or min(start + CLOCK_SKEW + timedelta(days=days), self.certificate.not_valid_after_utc)
        names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
        names += [x509.DNSName(d) for d in dns_names]
        names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        if not names:
            raise PkiError(f"certificate for {common_name!r}: needs at least one subject alternative name")
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] * server_auth + [ExtendedKeyUsageOID.CLIENT_AUTH] * client_auth
        public = public_key if public_key is not None else key.public_key()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "chakong"),
                                     x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.certificate.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.private_key.public_key()), critical=False
            )
            .sign(self.private_key, hashes.SHA256())
        )
        return Leaf(certificate, key)

    def sign_agency_csr(self, csr_pem: bytes, agency_id: str, *, extra_dns: Iterable[str] = (), **validity) -> Leaf:
        """An agency's certificate for the key in its request; the agency keeps the private key.

        The names are the identity rules', not the request's: the URI SAN
        spiffe://chakong/agency/<id> and the DNS SAN <id> (plus `extra_dns`,
        for the agency's own host names). A request that asks for another
        identity, or for DNS names not granted, is refused rather than
        silently narrowed, so nobody believes they hold a name they do not.
        """
        check_agency_id(agency_id)
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError:
            raise PkiError("not a PEM certificate signing request (-----BEGIN CERTIFICATE REQUEST-----)") from None
        if not csr.is_signature_valid:
            raise PkiError("the request's signature does not verify: it was not signed by the key it carries")
        public = csr.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            if public.curve.name not in ("secp256r1", "secp384r1"):
                raise PkiError(f"key on curve {public.curve.name}: use P-256 or P-384")
        elif isinstance(public, rsa.RSAPublicKey):
            if public.key_size < 2048:
                raise PkiError(f"RSA key of {public.key_size} bits: use at least 2048")
        else:
            raise PkiError(f"{type(public).__name__}: use an EC (P-256, P-384) or RSA (2048+) key")
        dns = [agency_id, *dict.fromkeys(d for d in extra_dns if d != agency_id)]
        try:
            asked = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            asked = None
        if asked is not None:
            identity = agency_identity(agency_id)
            for uri in asked.get_values_for_type(x509.UniformResourceIdentifier):
                if uri != identity:
                    raise PkiError(f"the request asks for URI {uri}; agency {agency_id} may only be {identity}")
            for name in asked.get_values_for_type(x509.DNSName):
                if name not in dns:
                    raise PkiError(
                        f"the request asks for DNS name {name!r}, not granted (granted: {', '.join(dns)};"
                        " add --dns to grant another)"
                    )
            if asked.get_values_for_type(x509.IPAddress):
                raise PkiError("the request asks for IP addresses; agencies are named by DNS and URI only")
        return self.issue(
            common_name=f"agency {agency_id}", uris=[agency_identity(agency_id)], dns_names=dns,
            server_auth=True, client_auth=True, public_key=public, **validity,
        )

    def issue_agency(self, agency_id: str, **validity) -> Leaf:
        """An agency's certificate: it serves the gateway, and may present it to its own health check."""
        check_agency_id(agency_id)
        return self.issue(
            common_name=f"agency {agency_id}",
            uris=[agency_identity(agency_id)],
            dns_names=[agency_id, "localhost"],
            ips=[str(_LOOPBACK)],
            server_auth=True,
            client_auth=True,
            **validity,
        )

    def issue_gateway_client(self, **validity) -> Leaf:
        return self.issue(
            common_name="chakong gateway (client)", uris=[GATEWAY_IDENTITY], server_auth=False, client_auth=True,
            **validity,
        )

    def issue_gateway_server(self, **validity) -> Leaf:
        return self.issue(
            common_name="chakong gateway",
            uris=[GATEWAY_IDENTITY],
            dns_names=["gateway", "localhost"],
            ips=[str(_LOOPBACK)],
            server_auth=True,
            client_auth=False,
            **validity,
        )


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace `path` with `data`; the file never exists with looser permissions or half written."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def agency_csr(agency_id: str) -> tuple[bytes, bytes]:
    """(private key PEM, certificate request PEM) for an agency, made where the agency runs."""
    check_agency_id(agency_id)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"agency {agency_id}")]))
        .add_extension(x509.SubjectAlternativeName(
            [x509.UniformResourceIdentifier(agency_identity(agency_id)), x509.DNSName(agency_id)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, csr.public_bytes(serialization.Encoding.PEM)


def write_private(path: Path, data: bytes) -> None:
    """A private key, 0600 from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, data, 0o600)


def write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, data, 0o644)


def write_leaf(files: LeafFiles, leaf: Leaf) -> None:
    """Key first: a crash in between leaves a key without a certificate, which `pki init` re-issues."""
    files.key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_atomic(files.key, leaf.key_pem(), 0o600)
    _write_atomic(files.cert, leaf.cert_pem(), 0o644)


def read_leaf(files: LeafFiles) -> Leaf:
    try:
        cert_pem, key_pem = files.cert.read_bytes(), files.key.read_bytes()
    except FileNotFoundError as exc:
        raise PkiError(f"{exc.filename}: no such file") from None
    except OSError as exc:
        raise PkiError(f"{exc.filename}: cannot read: {exc.strerror}") from None
    try:
        certificate = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise PkiError(f"{files.cert}: not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise PkiError(f"{files.key}: not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{files.key}: expected an EC private key")
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(der, spki) != certificate.public_key().public_bytes(der, spki):
        raise PkiError(f"{files.key}: does not belong to {files.cert}")
    return Leaf(certificate, key)


def load_ca(directory: Path | str) -> CertificateAuthority:
    leaf = read_leaf(PkiLayout(Path(directory)).ca)
    return CertificateAuthority(leaf.certificate, leaf.private_key)


def ensure_ca(directory: Path | str, *, days: int = DEFAULT_CA_DAYS) -> tuple[CertificateAuthority, bool]:
    """The CA in `directory`, created if it has none; True when created now."""
    layout = PkiLayout(Path(directory))
    if layout.ca.cert.exists() or layout.ca.key.exists():
        return load_ca(directory), False
    layout.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca = CertificateAuthority.create(days=days)
    write_leaf(layout.ca, Leaf(ca.certificate, ca.private_key))
    return ca, True


def _needs_new(files: LeafFiles, ca: CertificateAuthority, now: datetime) -> str:
    """Why the leaf in `files` must be (re-)issued, or '' if it is fine."""
    if not files.cert.exists() or not files.key.exists():
        return "missing"
    try:
        leaf = read_leaf(files)
    except PkiError as exc:
        return f"unusable ({exc})"
    if not ca.issued(leaf.certificate):
        return "issued by another CA"
    if leaf.certificate.not_valid_after_utc <= now:
        return "expired"
    return ""


@dataclass(frozen=True)
class PkiAction:
    """One line of what `pki init` did."""

    what: str
    files: LeafFiles
    action: str  # "created", "kept", "issued (missing)", ...

    def __str__(self) -> str:
        return f"{self.what}: {self.action} ({self.files.cert})"


def init_pki(
    directory: Path | str,
    agency_ids: Iterable[str],
    *,
    ca_days: int = DEFAULT_CA_DAYS,
    leaf_days: int = DEFAULT_LEAF_DAYS,
    now: datetime | None = None,
) -> list[PkiAction]:
    """Make sure `directory` holds a CA and a usable certificate for the gateway and each agency.

    Idempotent: keeps the CA and every leaf it issued that has not expired;
    issues what is missing, expired, broken or from another CA.
    """
    layout = PkiLayout(Path(directory))
    agency_ids = [check_agency_id(a) for a in agency_ids]
    ca, created = ensure_ca(layout.directory, days=ca_days)
    actions = [PkiAction("CA", layout.ca, "created" if created else "kept")]
    moment = _now(now)
    wanted = [
        ("gateway (server)", layout.gateway_server, ca.issue_gateway_server),
        ("gateway (client)", layout.gateway_client, ca.issue_gateway_client),
        *((f"agency {a}", layout.agency(a), lambda a=a, **v: ca.issue_agency(a, **v)) for a in agency_ids),
    ]
    for what, files, issue in wanted:
        reason = _needs_new(files, ca, moment)
        if reason:
            write_leaf(files, issue(days=leaf_days, now=now))
            actions.append(PkiAction(what, files, f"issued ({reason})"))
        else:
            actions.append(PkiAction(what, files, "kept"))
    return actions


def issue_files(
    directory: Path | str, *, agency_id: str | None = None, gateway: bool = False, days: int = DEFAULT_LEAF_DAYS
) -> list[PkiAction]:
    """Issue (or rotate) the gateway's two certificates or one agency's, with the existing CA."""
    if (agency_id is None) == (not gateway):
        raise PkiError("issue either the gateway's certificates or one agency's")
    layout = PkiLayout(Path(directory))
    ca = load_ca(layout.directory)
    if gateway:
        write_leaf(layout.gateway_server, ca.issue_gateway_server(days=days))
        write_leaf(layout.gateway_client, ca.issue_gateway_client(days=days))
        return [PkiAction("gateway (server)", layout.gateway_server, "issued"),
                PkiAction("gateway (client)", layout.gateway_client, "issued")]
    files = layout.agency(agency_id)  # type: ignore[arg-type]
    write_leaf(files, ca.issue_agency(agency_id, days=days))  # type: ignore[arg-type]
    return [PkiAction(f"agency {agency_id}", files, "issued")]
