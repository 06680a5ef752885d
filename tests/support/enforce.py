"""Enforcement plans (查冻扣) through the gateway: the policy file a test's gateway reads, what the seeded
agencies hold for a debtor, officers' HTTP sessions, and the gateway as a process that can be SIGKILLed.
"""

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path


from protos.bank.v1 import bank_pb2
from services import datagen
from tests.support.agencies import BANK, PROPERTIES, SEED, SUBJECTS, VEHICLES
from tests.support.auth import auth_headers, issue_token
from tests.support.control import COURT, COURT_ACCOUNT, Http, Reply, Stack

APPROVER = "AP0001"


def write_policy(directory: Path, *, threshold_fen: int = 10**15, on_reject: str = "keep", on_expiry: str = "keep",
                 expires_after_seconds: int = 3600, seal: str = "short") -> Path:
    path = directory / "enforcement.toml"
    account = ", ".join(f'{name} = "{value}"' for name, value in COURT_ACCOUNT.items())
    path.write_text(
        f'[plan]\nseal = "{seal}"\n'
        f'[approval]\nexpires_after_seconds = {expires_after_seconds}\non_reject = "{on_reject}"\n'
        f'on_expiry = "{on_expiry}"\n'
        f'[courts."{COURT}"]\napproval_threshold_fen = {threshold_fen}\ncourt_account = {{ {account} }}\n',
        encoding="utf-8",
    )
    return path


@dataclass(frozen=True)
class Holdings:
    """What the seeded agencies hold for one subject: open CNY accounts at the bank, vehicles, properties."""

    accounts: tuple[str, ...]
    plates: tuple[str, ...]
    certificates: tuple[str, ...]


def holdings(id_number: str) -> Holdings:
    people = datagen.subjects(SEED, SUBJECTS)
    accounts = tuple(a.account_number for a in datagen.bank_accounts(SEED, people, BANK, "中国工商银行", "bank")
                     if a.owner_id_number == id_number and a.status != bank_pb2.ACCOUNT_STATUS_CLOSED)
    plates = tuple(v.plate for v in datagen.vehicles(SEED, people, VEHICLES) if v.owner_id_number == id_number)
    certificates = tuple(p.certificate_number for p in datagen.properties(SEED, people, PROPERTIES)
                         if any(o.id_number == id_number for o in p.owners))
    return Holdings(accounts, plates, certificates)


def subject_without_assets():
    """A seeded subject no agency holds anything of."""
    from protos.common.v1 import common_pb2

    people = datagen.subjects(SEED, SUBJECTS)
    with_accounts = {a.owner_id_number for a in datagen.bank_accounts(SEED, people, BANK, "中国工商银行", "bank")}
    with_vehicles = {v.owner_id_number for v in datagen.vehicles(SEED, people, VEHICLES)}
    with_properties = {o.id_number for p in datagen.properties(SEED, people, PROPERTIES) for o in p.owners}
    return [common_pb2.Subject(type=s.subject_type, id_number=s.id_number, name=s.name) for s in people
            if s.id_number not in with_accounts | with_vehicles | with_properties]


@contextlib.asynccontextmanager
async def officer(stack: Stack, executor_id: str, roles=("executor",)):
    """An HTTP client for another officer of the court, to the stack's gateway."""
    async with stack.endpoints.session(headers=auth_headers(issue_token(executor_id, COURT, roles))) as session:
        yield Http(session)


async def enforce(http: Http, case_number: str, **body) -> Reply:
    return await http.post(f"/v1/cases/{case_number}/enforce", body)


async def plan_done(http: Http, case_number: str, plan_id: str, timeout: float = 30.0) -> dict:
    """The plan once it is no longer executing (the gateway resumes it by itself)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = await http.get(f"/v1/cases/{case_number}/plans/{plan_id}")
        if reply.status == 200 and reply.body["state"] != "PLAN_STATE_EXECUTING":
            return reply.body
        assert time.monotonic() < deadline, f"plan {plan_id} still executing: {reply.body}"
        await asyncio.sleep(0.1)
