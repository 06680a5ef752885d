"""The development PKI: what `chakong pki init` and `pki issue` write, and that they are idempotent."""

import ipaddress
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from services.cli.main import main
from services.common import tls
from services.security import pki

REPO = Path(__file__).resolve().parent.parent


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def sans(certificate: x509.Certificate) -> x509.SubjectAlternativeName:
    return certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def usages(certificate: x509.Certificate) -> set:
    return set(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def days(certificate: x509.Certificate) -> float:
    return (certificate.not_valid_after_utc - certificate.not_valid_before_utc) / timedelta(days=1)


@pytest.fixture
def layout(tmp_path) -> pki.PkiLayout:
    pki.init_pki(tmp_path / "pki", ["icbc", "hefei-vmo"])
    return pki.PkiLayout(tmp_path / "pki")


def test_init_creates_a_ca_and_a_certificate_per_service(layout):
    ca = load(layout.ca.cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey) and ca.public_key().curve.name == "secp256r1"
    assert 3650 <= days(ca) < 3651
    authority = pki.load_ca(layout.directory)
    for files in (layout.gateway_server, layout.gateway_client, layout.agency("icbc"), layout.agency("hefei-vmo")):
        leaf = load(files.cert)
        assert authority.issued(leaf)
        assert 365 <= days(leaf) < 366
        assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_an_agency_certificate_names_the_agency(layout):
    certificate = load(layout.agency("hefei-vmo").cert)
    names = sans(certificate)
    assert names.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://chakong/agency/hefei-vmo"]
    assert names.get_values_for_type(x509.DNSName) == ["hefei-vmo", "localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert usages(certificate) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert tls.certificate_names(certificate).identity == tls.agency_identity("hefei-vmo")


def test_the_gateway_has_a_client_and_a_server_certificate(layout):
    client, server = load(layout.gateway_client.cert), load(layout.gateway_server.cert)
    assert tls.certificate_names(client).identity == tls.GATEWAY_IDENTITY == tls.certificate_names(server).identity
    assert usages(client) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    assert usages(server) == {ExtendedKeyUsageOID.SERVER_AUTH}
    assert "localhost" in sans(server).get_values_for_type(x509.DNSName)


def test_keys_are_private(layout):
    assert stat.S_IMODE(layout.directory.stat().st_mode) == 0o700
    for files in (layout.ca, layout.gateway_client, layout.agency("icbc")):
        assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
        assert stat.S_IMODE(files.cert.stat().st_mode) == 0o644
    assert not list(layout.directory.glob(".*"))  # no temporary files left behind


def test_init_is_idempotent_and_issues_only_what_is_missing(layout):
    before = {p.name: p.read_bytes() for p in layout.directory.iterdir()}
    layout.agency("icbc").cert.unlink()
    actions = {a.what: a.action for a in pki.init_pki(layout.directory, ["icbc", "hefei-vmo", "ccb"])}
    assert actions == {
        "CA": "kept",
        "gateway (server)": "kept",
        "gateway (client)": "kept",
        "agency icbc": "issued (missing)",
        "agency hefei-vmo": "kept",
        "agency ccb": "issued (missing)",
    }
    after = {p.name: p.read_bytes() for p in layout.directory.iterdir()}
    unchanged = set(before) - {"agency-icbc.crt", "agency-icbc.key"}
    assert all(before[name] == after[name] for name in unchanged)
    assert "agency-ccb.crt" in after


def test_init_replaces_expired_and_foreign_certificates(layout):
    now = datetime.now(timezone.utc)
    authority = pki.load_ca(layout.directory)
    pki.write_leaf(layout.agency("icbc"), authority.issue_agency(
        "icbc", not_before=now - timedelta(days=10), not_after=now - timedelta(days=1)))
    pki.write_leaf(layout.agency("hefei-vmo"), pki.CertificateAuthority.create().issue_agency("hefei-vmo"))
    actions = {a.what: a.action for a in pki.init_pki(layout.directory, ["icbc", "hefei-vmo"])}
    assert actions["agency icbc"] == "issued (expired)"
    assert actions["agency hefei-vmo"] == "issued (issued by another CA)"
    assert authority.issued(load(layout.agency("hefei-vmo").cert))


def test_issue_rotates_one_agency(layout):
    old = load(layout.agency("icbc").cert)
    pki.issue_files(layout.directory, agency_id="icbc", days=30)
    new = load(layout.agency("icbc").cert)
    assert new.serial_number != old.serial_number
    assert 30 <= days(new) < 31
    tls.ServerTls.from_files(layout.agency("icbc").cert, layout.agency("icbc").key, layout.ca.cert)


def test_validity_is_configurable_and_never_outlives_the_ca(tmp_path):
    pki.init_pki(tmp_path, ["icbc"], ca_days=100, leaf_days=400)
    layout = pki.PkiLayout(tmp_path)
    assert 100 <= days(load(layout.ca.cert)) < 101
    assert load(layout.agency("icbc").cert).not_valid_after_utc <= load(layout.ca.cert).not_valid_after_utc


@pytest.mark.parametrize("agency_id", ["", "-icbc", "ICBC", "a/b", "x" * 33])
def test_agency_ids_must_be_dns_labels(tmp_path, agency_id):
    with pytest.raises(pki.PkiError, match="agency ID"):
        pki.init_pki(tmp_path, [agency_id])


def test_issue_needs_an_existing_ca(tmp_path):
    with pytest.raises(pki.PkiError, match="no such file"):
        pki.issue_files(tmp_path, gateway=True)


def test_cli_init_reads_the_agency_registry(tmp_path, capsys):
    directory = tmp_path / "pki"
    assert main(["pki", "init", "--dir", str(directory), "--agencies", str(REPO / "config/agencies.toml")]) == 0
    out = capsys.readouterr().out
    assert "CA: created" in out and "agency hefei-rer: issued (missing)" in out
    assert (directory / "agency-alipay.crt").exists()
    assert (directory / "token-signing.key").exists() and (directory / "token-signing.pub").exists()
    assert "audit checkpoint key: created" in out and (directory / "audit-checkpoint.pub").exists()
    assert main(["pki", "init", "--dir", str(directory), "--agencies", str(REPO / "config/agencies.toml")]) == 0
    out = capsys.readouterr().out
    assert "issued" not in out and "token signing key: kept" in out and "audit checkpoint key: kept" in out


def test_cli_issue_and_its_errors(tmp_path, capsys):
    assert main(["pki", "init", "--dir", str(tmp_path), "--agencies", ""]) == 0
    assert main(["pki", "issue", "--dir", str(tmp_path), "--agency", "ccb"]) == 0
    assert "agency ccb: issued" in capsys.readouterr().out
    assert main(["pki", "issue", "--dir", str(tmp_path), "--gateway"]) == 0
    assert main(["pki", "issue", "--dir", str(tmp_path), "--agency", "No Such"]) == 2
    assert "agency ID" in capsys.readouterr().err
    assert main(["pki", "init", "--dir", str(tmp_path), "--agencies", str(tmp_path / "missing.toml")]) == 2
    assert "registry not found" in capsys.readouterr().err


# Certificate requests: the agency keeps its private key.


def _request(key, names: list[x509.GeneralName] | None) -> bytes:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "whoever")]))
    if names is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_a_signed_request_names_the_agency_and_the_ca_never_sees_the_key(tmp_path):
    pki.init_pki(tmp_path, [])
    key_pem, csr_pem = pki.agency_csr("mybank")
    (tmp_path / "req.csr").write_bytes(csr_pem)
    assert main(["pki", "sign-csr", "--dir", str(tmp_path), "--agency", "mybank", "--csr", str(tmp_path / "req.csr"),
                 "--dns", "bank.example.com"]) == 0
    certificate = load(tmp_path / "req.crt")
    names = tls.certificate_names(certificate)
    assert names.identity == tls.agency_identity("mybank")
    assert names.dns_names == ("mybank", "bank.example.com")
    assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= usages(certificate)
    assert pki.load_ca(tmp_path).issued(certificate)
    # The certificate is for the agency's own key, which the CA directory does not hold.
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(key_pem, None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert certificate.public_key().public_bytes(serialization.Encoding.DER, spki) == key.public_key().public_bytes(
        serialization.Encoding.DER, spki)
    assert not any(p.name.startswith("agency-mybank") for p in tmp_path.iterdir())
    # The agency loads it as its TLS identity.
    (tmp_path / "mybank.key").write_bytes(key_pem)
    server = tls.ServerTls.from_files(tmp_path / "req.crt", tmp_path / "mybank.key", tmp_path / "ca.crt")
    assert server.names.identity == tls.agency_identity("mybank")


@pytest.mark.parametrize(("names", "refusal"), [
    ([x509.UniformResourceIdentifier(tls.GATEWAY_IDENTITY)], "may only be spiffe://chakong/agency/mybank"),
    ([x509.UniformResourceIdentifier(tls.agency_identity("icbc"))], "may only be"),
    ([x509.DNSName("icbc")], "DNS name 'icbc', not granted"),
    ([x509.IPAddress(ipaddress.ip_address("10.0.0.1"))], "IP addresses"),
])
def test_a_request_to_be_someone_else_is_refused(tmp_path, names, refusal):
    ca, _ = pki.ensure_ca(tmp_path)
    with pytest.raises(pki.PkiError, match=refusal):
        ca.sign_agency_csr(_request(ec.generate_private_key(ec.SECP256R1()), names), "mybank")


def test_a_request_without_names_gets_the_rules_names_and_weak_keys_are_refused(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import rsa

    ca, _ = pki.ensure_ca(tmp_path)
    leaf = ca.sign_agency_csr(_request(rsa.generate_private_key(65537, 2048), None), "mybank")
    assert tls.certificate_names(leaf.certificate).dns_names == ("mybank",)
    with pytest.raises(pki.PkiError, match="at least 2048"):
        ca.sign_agency_csr(_request(rsa.generate_private_key(65537, 1024), None), "mybank")
    with pytest.raises(pki.PkiError, match="not a PEM certificate signing request"):
        ca.sign_agency_csr(b"hello", "mybank")
