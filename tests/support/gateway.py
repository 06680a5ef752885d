"""The gateway in front of the mock agencies: the registry file, the showcase case and its
debtor, query requests (gRPC and HTTP JSON), an in-process gateway (TLS or plaintext ports),
its metrics. Reach a gateway through tests/support/tls.py GatewayEndpoints.
"""

import contextlib
import functools
from pathlib import Path

import aiohttp
import grpc
from prometheus_client import REGISTRY

from protos.bank.v1 import bank_pb2, bank_pb2_grpc
from protos.common.v1 import common_pb2
from protos.gateway.v1 import gateway_pb2
from protos.realestate.v1 import realestate_pb2, realestate_pb2_grpc
from protos.vehicle.v1 import vehicle_pb2, vehicle_pb2_grpc
from services import datagen
from services.gateway.config import GatewaySettings
from services.gateway.server import Gateway
from tests.support.agencies import SEED, SUBJECTS, Agency
from tests.support.auth import auth_headers, register_case_body
from tests.support.tls import GatewayEndpoints, tls_settings

DEADLINE_MS = 1000
CASE = common_pb2.CaseRef(
    case_number="(2024)皖01执123号", court_code="340100", executor_id="E0001", document_number="(2024)皖01执保45号"
)


def write_registry(directory: Path, agencies: list[Agency]) -> Path:
    path = directory / "agencies.toml"
    entries = [
        f'[[agency]]\nid = "{a.id}"\nkind = "{a.kind}"\nname = "{a.id} 测试"\n'
        + (f"endpoints = {list(a.endpoints)!r}\n".replace("'", '"') if a.endpoints else f'address = "{a.address}"\n')
        + f"timeout_ms = {a.timeout_ms}\n"
        + "".join(f"{key} = {value}\n" for key, value in a.entry)
        for a in agencies
    ]
    path.write_text("\n".join(entries), encoding="utf-8")
    return path


def gateway_settings(directory: Path, agencies: list[Agency], *, tls: bool = False, registry: Path | None = None,
                     **overrides) -> GatewaySettings:
    """An in-process gateway's settings on port 0 before `agencies` (plaintext links to the mocks), or before the
    registry file `registry` (a mock host's) if given.

    Its own ports serve TLS with the run's certificate when `tls`, plaintext
    (the development flag) otherwise; reach it through GatewayEndpoints.of.
    """
    return GatewaySettings(**{
        "grpc_address": "127.0.0.1:0",
        "http_address": "127.0.0.1:0",
        "agency_registry": registry or write_registry(directory, agencies),
        "query_deadline_ms": DEADLINE_MS,
        "grace_seconds": 1.0,
        "data_dir": directory,
        "insecure_plaintext": True,
        **(tls_settings() if tls else {"insecure_plaintext_ports": True}),
        **overrides,
    })


@contextlib.asynccontextmanager
async def running_gateway(directory: Path, agencies: list[Agency], deadline_ms: int = DEADLINE_MS, *,
                          tls: bool = False, **overrides):
    gateway = await Gateway(gateway_settings(directory, agencies, tls=tls, query_deadline_ms=deadline_ms,
                                             **overrides)).start()
    try:
        await register_showcase_case(GatewayEndpoints.of(gateway))
        yield gateway
    finally:
        await gateway.stop()


@functools.cache
def population():
    return datagen.subjects(SEED, SUBJECTS)


@functools.cache
def debtor() -> common_pb2.Subject:
    """A showcase subject: a vehicle, a property and accounts at icbc."""
    icbc_owners = {a.owner_id_number for a in datagen.bank_accounts(SEED, population(), "icbc", "中国工商银行", "bank")}
    record = next(s for s in datagen.showcase(population(), 50) if s.id_number in icbc_owners)
    return common_pb2.Subject(type=record.subject_type, id_number=record.id_number, name=record.name)


async def register_showcase_case(gateway: "GatewayEndpoints | str") -> None:
    """Register CASE with debtor() as its debtor and the tests' executor assigned: queries need it.

    `gateway`: how to reach it, or the base URL of a plaintext test client (aiohttp_client).
    """
    subject = debtor()
    case = {"case_number": CASE.case_number, "court_code": CASE.court_code, "executor_id": CASE.executor_id,
            "document_number": CASE.document_number}
    debtors = [{"type": subject.type, "id_number": subject.id_number, "name": subject.name}]
    base_url, ssl = (gateway, True) if isinstance(gateway, str) else (gateway.base_url, gateway.ssl)
    async with aiohttp.ClientSession(headers=auth_headers()) as session:
        async with session.post(f"{base_url}/v1/cases", json=register_case_body(case, debtors), ssl=ssl) as response:
            assert response.status in (200, 201), await response.text()


def asset_request(**fields) -> gateway_pb2.AssetQueryRequest:
    return gateway_pb2.AssetQueryRequest(case=CASE, subject=debtor(), **fields)


def query_body(**extra) -> dict:
    """An AssetQueryRequest in proto3 JSON, lowerCamel names."""
    subject = debtor()
    return {
        "case": {
            "caseNumber": CASE.case_number,
            "courtCode": CASE.court_code,
            "executorId": CASE.executor_id,
            "documentNumber": CASE.document_number,
        },
        "subject": {
            "type": common_pb2.SubjectType.Name(subject.type),
            "idNumber": subject.id_number,
            "name": subject.name,
        },
        **extra,
    }


async def ask_directly(agency: Agency, subject: common_pb2.Subject):
    """What the agency itself says: the gateway must pass exactly this on."""
    stub, method, request, field = {
        "bank": (bank_pb2_grpc.BankStub, "QueryAccounts", bank_pb2.QueryAccountsRequest, "accounts"),
        "vehicle": (
            vehicle_pb2_grpc.VehicleRegistryStub,
            "QueryVehicles",
            vehicle_pb2.QueryVehiclesRequest,
            "vehicles",
        ),
        "realestate": (
            realestate_pb2_grpc.RealEstateRegistryStub,
            "QueryProperties",
            realestate_pb2.QueryPropertiesRequest,
            "properties",
        ),
    }[agency.kind]
    async with grpc.aio.insecure_channel(agency.address) as channel:
        call = getattr(stub(channel), method)
        response = await call(request(request_id="direct", case=CASE, subject=subject), timeout=5)
    return list(getattr(response, field))


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def wrong_check_character(id_number: str) -> str:
    """Same format, another check character (valid for both ID kinds' alphabets)."""
    return id_number[:17] + ("1" if id_number[17] != "1" else "2")
