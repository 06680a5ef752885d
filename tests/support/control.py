"""Control through the gateway (freeze, deduct, seal, transfer): the debtors of the
agencies' seeded data, the JSON bodies, what the bank itself recorded, an in-process
gateway on a ledger (control_stack) with an HTTP client.

The agencies (icbc, the vehicle and the real-estate registry: AGENCIES in
tests/support/agencies.py) are the `agencies` fixture (tests/conftest.py).
"""

import asyncio
import contextlib
import functools
import itertools
import random
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc

from protos.bank.v1 import bank_pb2, bank_pb2_grpc
from protos.common.v1 import common_pb2
from protos.vehicle.v1 import vehicle_pb2
from services import datagen
from services.bank import ledger as bank_ledger
from services.gateway.config import GatewaySettings
from services.gateway.server import Gateway
from tests.support.agencies import BANK, PROPERTIES, SEED, SUBJECTS, VEHICLES, Agency
from tests.support.auth import auth_headers
from tests.support.gateway import write_registry
from tests.support.harness import ServiceProcess
from tests.support.tls import TLS_PORTS_ENV, GatewayEndpoints, tls_settings

COURT = "340100"
COURT_ACCOUNT = {"bank_name": "中国工商银行合肥分行", "account_number": "1302010129000000001",
                 "account_name": "合肥市中级人民法院"}
# Quick to give up and to re-drive, so the tests that need either are fast.
FAST = {"control_deadline_ms": 3000, "control_attempt_timeout_ms": 1500, "lease_seconds": 1.0,
        "redrive_interval_seconds": 0.2}
# FAST for a gateway process.
FAST_ENV = {
    "CONTROL_DEADLINE_MS": str(FAST["control_deadline_ms"]),
    "CONTROL_ATTEMPT_TIMEOUT_MS": str(FAST["control_attempt_timeout_ms"]),
    # Shorter than in-process: a restarted gateway waits this long for the dead one's lease.
    "LEDGER_LEASE_SECONDS": "0.5",
    "REDRIVE_INTERVAL_SECONDS": str(FAST["redrive_interval_seconds"]),
}

_case_numbers = itertools.count(random.randrange(100_000, 800_000))


def new_case_number() -> str:
    return f"(2024)皖01执{next(_case_numbers)}号"


@dataclass(frozen=True)
class Debtor:
    subject: common_pb2.Subject
    account: str
    balance_fen: int
    plate: str
    certificate: str


@functools.cache
def debtors() -> tuple[Debtor, ...]:
    """Subjects with a normal icbc account holding at least ¥10,000, a normal
    vehicle and a property in their name, from the agencies' seeded data."""
    people = datagen.subjects(SEED, SUBJECTS)
    accounts, plates, certificates = {}, {}, {}
    for a in datagen.bank_accounts(SEED, people, BANK, "中国工商银行", "bank"):
        if a.status == bank_pb2.ACCOUNT_STATUS_NORMAL and a.balance_fen >= 1_000_000:
            accounts.setdefault(a.owner_id_number, a)
    for v in datagen.vehicles(SEED, people, VEHICLES):
        if v.status == vehicle_pb2.VEHICLE_STATUS_NORMAL:
            plates.setdefault(v.owner_id_number, v.plate)
    for p in datagen.properties(SEED, people, PROPERTIES):
        if len(p.owners) == 1:
            certificates.setdefault(p.owners[0].id_number, p.certificate_number)
    return tuple(
        Debtor(
            common_pb2.Subject(type=s.subject_type, id_number=s.id_number, name=s.name),
            accounts[s.id_number].account_number, accounts[s.id_number].balance_fen,
            plates.get(s.id_number, ""), certificates.get(s.id_number, ""),
        )
        for s in people
        if s.id_number in accounts
    )


def full_debtors() -> list[Debtor]:
    return [d for d in debtors() if d.plate and d.certificate]


def bank_db(agency: Agency) -> Path:
    return Path(agency.process.env["DATA_DIR"]) / f"{agency.id}.db"


def bank_deductions(agency: Agency, case_number: str) -> list[sqlite3.Row]:
    """What the bank itself recorded: the one truth about money moved."""
    with contextlib.closing(sqlite3.connect(f"file:{bank_db(agency)}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM deductions WHERE case_number = ?", (case_number,)).fetchall()


def bank_freezes(agency: Agency, case_number: str) -> list[sqlite3.Row]:
    with contextlib.closing(sqlite3.connect(f"file:{bank_db(agency)}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM freezes WHERE case_number = ?", (case_number,)).fetchall()


def bank_conservation(agency: Agency) -> list[str]:
    with contextlib.closing(sqlite3.connect(f"file:{bank_db(agency)}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        return bank_ledger.check_conservation(conn)


async def account_at_bank(agency: Agency, debtor: Debtor) -> bank_pb2.Account:
    async with grpc.aio.insecure_channel(agency.address) as channel:
        response = await bank_pb2_grpc.BankStub(channel).QueryAccounts(
            bank_pb2.QueryAccountsRequest(
                case=common_pb2.CaseRef(case_number="(2024)皖01执1号", court_code=COURT, executor_id="E0001",
                                        document_number="查询"),
                subject=debtor.subject,
            ),
            timeout=5,
        )
    return next(a for a in response.accounts if a.account_number == debtor.account)


# JSON bodies


def case_json(case_number: str) -> dict:
    return {"case_number": case_number, "court_code": COURT, "executor_id": "E0001",
            "document_number": f"{case_number}协助执行通知书"}


def subject_json(subject: common_pb2.Subject, *, name: bool = False) -> dict:
    body = {"type": common_pb2.SubjectType.Name(subject.type), "id_number": subject.id_number}
    if name:
        body["name"] = subject.name
    return body


def register_body(case_number: str, *debtors_: Debtor, owed: int = 500_000, costs: int = 10_000) -> dict:
    return {"case": case_json(case_number), "debtors": [subject_json(d.subject, name=True) for d in debtors_],
            "amount_owed_fen": str(owed), "costs_fen": str(costs)}


def freeze_body(case_number: str, debtor: Debtor, amount: int, agency: str = BANK) -> dict:
    return {"case": case_json(case_number), "agency_id": agency, "subject": subject_json(debtor.subject),
            "account_number": debtor.account, "amount_fen": str(amount)}


def direct_deduct_body(case_number: str, debtor: Debtor, amount: int) -> dict:
    return {"case": case_json(case_number), "amount_fen": str(amount), "court_account": COURT_ACCOUNT,
            "account": {"agency_id": BANK, "subject": subject_json(debtor.subject),
                        "account_number": debtor.account}}


@dataclass
class Reply:
    status: int
    body: dict
    headers: dict


class Http:
    def __init__(self, session: aiohttp.ClientSession):
        self.session = session

    async def post(self, path: str, body: dict, key: str | None = None) -> Reply:
        headers = {"Idempotency-Key": key} if key else {}
        async with self.session.post(path, json=body, headers=headers) as response:
            return Reply(response.status, await response.json(), dict(response.headers))

    async def get(self, path: str) -> Reply:
        async with self.session.get(path) as response:
            return Reply(response.status, await response.json(), dict(response.headers))

    async def case(self, case_number: str) -> dict:
        reply = await self.get(f"/v1/cases/{case_number}")
        assert reply.status == 200, reply.body
        return reply.body

    async def register(self, case_number: str, *debtors_: Debtor, **amounts) -> dict:
        reply = await self.post("/v1/cases", register_body(case_number, *debtors_, **amounts))
        assert reply.status == 201, reply.body
        return reply.body


@dataclass
class Stack:
    gateway: Gateway
    http: Http
    agencies: dict[str, Agency]
    ledger_url: str

    @property
    def lane(self) -> int:
        """0 or 1 by backend: the two runs of a test share the agencies, not their debtors."""
        return 0 if self.ledger_url.startswith("sqlite") else 1

    def debtor(self, n: int) -> Debtor:
        return debtors()[2 * n + self.lane]

    def full_debtor(self, n: int) -> Debtor:
        return full_debtors()[2 * n + self.lane]

    @property
    def grpc_address(self) -> str:
        return self.gateway.endpoints["grpc"]

    @property
    def endpoints(self) -> GatewayEndpoints:
        return GatewayEndpoints.of(self.gateway)


def gateway_settings(directory: Path, agencies: list[Agency], ledger_url: str, *, tls: bool = True,
                     **overrides) -> GatewaySettings:
    """An in-process gateway on `ledger_url`: TLS ports with the run's certificate unless tls=False."""
    return GatewaySettings(**{
        "grpc_address": "127.0.0.1:0", "http_address": "127.0.0.1:0",
        "agency_registry": write_registry(directory, agencies), "data_dir": directory, "ledger_url": ledger_url,
        "grace_seconds": 1.0, "insecure_plaintext": True,
        **(tls_settings() if tls else {"insecure_plaintext_ports": True}), **overrides,
    })


@contextlib.asynccontextmanager
async def control_stack(directory: Path, agencies: list[Agency], ledger_url: str, **overrides):
    """An in-process gateway on `ledger_url` (TLS ports; tls=False for plaintext) and a session on its HTTP API."""
    gateway = await Gateway(gateway_settings(directory, agencies, ledger_url, **overrides)).start()
    try:
        async with GatewayEndpoints.of(gateway).session(headers=auth_headers()) as session:
            yield Stack(gateway, Http(session), {a.id: a for a in agencies}, ledger_url)
    finally:
        await gateway.stop()


class GatewayProcess:
    """`python -m services.gateway` on a ledger, restartable (the same ledger, a new process); `env` adds
    to or overrides its environment."""

    def __init__(self, directory: Path, agencies: list[Agency], ledger_url: str, **env: str):
        self.env = {
            "GATEWAY_GRPC_ADDRESS": "127.0.0.1:0",
            "GATEWAY_HTTP_ADDRESS": "127.0.0.1:0",
            "AGENCY_REGISTRY": str(write_registry(directory, agencies)),
            "DATA_DIR": str(directory),
            "LEDGER_URL": ledger_url,
            "LOG_FORMAT": "text",
            "GRACE_SECONDS": "1",
            **TLS_PORTS_ENV,
            **FAST_ENV,
            **env,
        }
        self.process: ServiceProcess | None = None

    async def start(self, crash_at: str = "") -> "GatewayProcess":
        await self.stop()  # the previous process, stopped or dead: its output pipe closed
        env = {**self.env, **({"CHAKONG_CRASH_AT": crash_at} if crash_at else {})}
        # Started from a thread: a fault proxy on this event loop must keep forwarding.
        self.process = await asyncio.to_thread(ServiceProcess("services.gateway", env).start)
        return self

    @contextlib.asynccontextmanager
    async def http(self):
        async with GatewayEndpoints.of(self.process).session(headers=auth_headers()) as session:
            yield Http(session)

    async def stop(self) -> None:
        if self.process is not None:
            await asyncio.to_thread(self.process.stop)

    async def died(self) -> int:
        return await asyncio.to_thread(self.process.proc.wait, 15)
