"""The gateway's agency registry loader and settings: every error names the entry and field."""

import pytest

from protos.bank.v1 import bank_pb2
from services.common.settings import SettingsError
from services.gateway.agencies.clients import check_query_requests_share_layout
from services.gateway.config import GatewaySettings
from services.gateway.agencies.registry import RegistryError, load_registry

GOOD = """
[[agency]]
id = "icbc"
kind = "bank"
name = "中国工商银行"
address = "127.0.0.1:50061"
timeout_ms = 1500
profile = "bank"

[[agency]]
id = "hefei-vmo"
kind = "vehicle"
name = "合肥市车辆管理所"
address = "localhost:50071"
timeout_ms = 800
"""


def write(tmp_path, text: str):
    path = tmp_path / "agencies.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_the_shipped_registry():
    agencies = load_registry("config/agencies.toml")
    assert len({agency.id for agency in agencies}) == len(agencies) >= 3
    assert {agency.kind for agency in agencies} == {"bank", "vehicle", "realestate"}


def test_loads_entries_in_file_order(tmp_path):
    icbc, vmo = load_registry(write(tmp_path, GOOD))
    assert (icbc.id, icbc.kind, icbc.timeout_ms, icbc.profile) == ("icbc", "bank", 1500, "bank")
    assert (vmo.id, vmo.address, vmo.profile) == ("hefei-vmo", "localhost:50071", None)
    with pytest.raises(AttributeError):
        icbc.timeout_ms = 1  # frozen


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('id = "hefei-vmo"', 'id = "icbc"'), ['#2 (id "icbc")', "id: duplicate of [[agency]] #1"]),
        (('kind = "vehicle"', 'kind = "ship"'), ['#2 (id "hefei-vmo")', "kind: 'ship' is not one of"]),
        (('"localhost:50071"', '"localhost"'), ['#2 (id "hefei-vmo")', "address: 'localhost' is not host:port"]),
        (('"localhost:50071"', '"localhost:70000"'), ["address:"]),
        (("timeout_ms = 800", "timeout_ms = 0"), ['#2 (id "hefei-vmo")', "timeout_ms: 0 is not a whole number"]),
        (("timeout_ms = 800", "timeout_ms = 60001"), ["timeout_ms: 60001"]),
        (("timeout_ms = 800", 'timeout_ms = "800"'), ["timeout_ms: '800'"]),
        (('id = "hefei-vmo"', 'id = "Hefei_VMO"'), ["#2 (id \"Hefei_VMO\")", "id: must be 1 to 32 characters"]),
        (("timeout_ms = 800", "timeout = 800"), ["timeout: unknown field"]),
        (('profile = "bank"', 'profile = "crypto"'), ['#1 (id "icbc")', "profile: 'crypto' is not one of"]),
        (('name = "合肥市车辆管理所"\n', ""), ['#2 (id "hefei-vmo")', "name: is required"]),
    ],
)
def test_rejects_a_bad_entry_naming_it(tmp_path, change, expected):
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(RegistryError) as raised:
        load_registry(path)
    message = str(raised.value)
    assert message.startswith(str(path))
    for part in expected:
        assert part in message


def test_rejects_missing_empty_and_malformed_files(tmp_path):
    with pytest.raises(RegistryError, match="not found"):
        load_registry(tmp_path / "missing.toml")
    with pytest.raises(RegistryError, match=r"no \[\[agency\]\] entries"):
        load_registry(write(tmp_path, "# nothing\n"))
    with pytest.raises(RegistryError, match="not valid TOML"):
        load_registry(write(tmp_path, "[[agency]\n"))
    # A RegistryError is a SettingsError: `run` reports it as one line, exit 2.
    assert issubclass(RegistryError, SettingsError)


def test_settings_from_env(monkeypatch):
    names = ("GATEWAY_GRPC_ADDRESS", "GATEWAY_HTTP_ADDRESS", "AGENCY_REGISTRY", "QUERY_DEADLINE_MS", "GRACE_SECONDS",
             "GATEWAY_TLS_CERT", "GATEWAY_TLS_KEY", "GATEWAY_TLS_CA", "INSECURE_PLAINTEXT")
    for name in names:
        monkeypatch.delenv(name, raising=False)
    assert GatewaySettings.from_env() == GatewaySettings()
    assert GatewaySettings().query_deadline_ms == 2000
    # TLS on every hop unless the development flag says which hops go without.
    assert GatewaySettings().scheme == "https"
    for flag, hops in (("0", (False, False)), ("1", (True, True)), ("agencies", (True, False))):
        monkeypatch.setenv("INSECURE_PLAINTEXT", flag)
        found = GatewaySettings.from_env()
        assert (found.insecure_plaintext, found.insecure_plaintext_ports) == hops
    monkeypatch.setenv("INSECURE_PLAINTEXT", "true")
    with pytest.raises(SettingsError, match="INSECURE_PLAINTEXT='true'"):
        GatewaySettings.from_env()
    monkeypatch.delenv("INSECURE_PLAINTEXT")
    monkeypatch.setenv("QUERY_DEADLINE_MS", "750")
    monkeypatch.setenv("GATEWAY_HTTP_ADDRESS", "0.0.0.0:0")
    settings = GatewaySettings.from_env()
    assert (settings.query_deadline_ms, settings.http_address) == (750, "0.0.0.0:0")
    monkeypatch.setenv("QUERY_DEADLINE_MS", "soon")
    with pytest.raises(SettingsError, match="QUERY_DEADLINE_MS"):
        GatewaySettings.from_env()
    monkeypatch.setenv("QUERY_DEADLINE_MS", "100")
    monkeypatch.setenv("GATEWAY_GRPC_ADDRESS", "50051")
    with pytest.raises(SettingsError, match="GATEWAY_GRPC_ADDRESS"):
        GatewaySettings.from_env()


def test_agency_query_requests_share_one_wire_layout():
    # The gateway encodes a query once and sends the bytes to every kind.
    check_query_requests_share_layout()
    assert bank_pb2.QueryAccountsRequest.DESCRIPTOR.fields_by_name["subject"].number == 3


def test_an_entry_may_be_marked_external(tmp_path):
    _, vmo = load_registry(write(tmp_path, GOOD.replace("timeout_ms = 800", "timeout_ms = 800\nexternal = true")))
    assert vmo.external is True and vmo.source == "file"
    icbc = load_registry(write(tmp_path, GOOD))[0]
    assert icbc.external is False
    with pytest.raises(RegistryError, match=r"external: 'yes' is not true or false"):
        load_registry(write(tmp_path, GOOD.replace("timeout_ms = 800", 'timeout_ms = 800\nexternal = "yes"')))
    with pytest.raises(RegistryError, match="profile: describes mock data"):
        load_registry(write(tmp_path, GOOD.replace('profile = "bank"', 'profile = "bank"\nexternal = true')))
