"""The mock agencies' query side, each run as a real process on port 0."""

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from protos.bank.v1 import bank_pb2, bank_pb2_grpc
from protos.common.v1 import common_pb2
from protos.realestate.v1 import realestate_pb2, realestate_pb2_grpc
from protos.vehicle.v1 import vehicle_pb2, vehicle_pb2_grpc
from services import datagen
from services.common.identifiers import credit_code_check_char
from services.common.logs import mask_id
from tests.support.harness import REPO

SEED = 7
SUBJECTS = 300
CASE = common_pb2.CaseRef(
    case_number="(2024)皖01执123号", court_code="340100", executor_id="E0001", document_number="(2024)皖01执123号"
)
ACTIVE, QUEUED, RELEASED = common_pb2.HOLD_STATE_ACTIVE, common_pb2.HOLD_STATE_QUEUED, common_pb2.HOLD_STATE_RELEASED


@dataclass(frozen=True)
class Agency:
    module: str
    agency_id: str
    service: str
    stub: type
    method: str
    request: type
    # Field of the response holding the records, and of its agency ID.
    records: str
    answered_by: str


BANK = Agency(
    "services.bank", "icbc", "chakong.bank.v1.Bank", bank_pb2_grpc.BankStub, "QueryAccounts",
    bank_pb2.QueryAccountsRequest, "accounts", "institution_id",
)
VEHICLE = Agency(
    "services.vehicle", "hefei-vmo", "chakong.vehicle.v1.VehicleRegistry", vehicle_pb2_grpc.VehicleRegistryStub,
    "QueryVehicles", vehicle_pb2.QueryVehiclesRequest, "vehicles", "registry_id",
)
REALESTATE = Agency(
    "services.realestate", "hefei-rer", "chakong.realestate.v1.RealEstateRegistry",
    realestate_pb2_grpc.RealEstateRegistryStub, "QueryProperties", realestate_pb2.QueryPropertiesRequest,
    "properties", "registry_id",
)


def env(**extra: str) -> dict[str, str]:
    return {
        "GRPC_ADDRESS": "127.0.0.1:0",
        "METRICS_ADDRESS": "127.0.0.1:0",
        "SEED": str(SEED),
        "SUBJECTS": str(SUBJECTS),
        "LOG_FORMAT": "text",
        **extra,
    }


async def query(service, agency: Agency, subject: common_pb2.Subject, *, case=CASE, request_id="t-1", timeout=10):
    async with grpc.aio.insecure_channel(service.endpoints["grpc"]) as channel:
        call = getattr(agency.stub(channel), agency.method)
        return await call(agency.request(request_id=request_id, case=case, subject=subject), timeout=timeout)


async def query_error(service, agency: Agency, subject, **kwargs) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await query(service, agency, subject, **kwargs)
    return caught.value


def population():
    return datagen.subjects(SEED, SUBJECTS)


def as_subject(record) -> common_pb2.Subject:
    return common_pb2.Subject(type=record.subject_type, id_number=record.id_number, name=record.name)


def without_records(owner_ids: set[str]) -> common_pb2.Subject:
    return as_subject(next(s for s in population() if s.id_number not in owner_ids))


def insert(db_path: Path, sql: str, *rows: tuple) -> None:
    """Write holds the way the control side will, beside the running server."""
    with sqlite3.connect(db_path) as conn:
        conn.executemany(sql, rows)
    conn.close()


FREEZE_SQL = (
    "INSERT INTO freezes (freeze_id, account_number, case_number, court_code, state, requested_fen, frozen_fen,"
    " queue_seq, registered_at_us, effective_at_us, expires_at_us) VALUES (?, ?, ?, '340100', ?, ?, ?, ?, ?, ?, ?)"
)
SEAL_SQL = (
    "INSERT INTO seals (seal_id, asset_id, case_number, court_code, state, queue_seq, registered_at_us,"
    " effective_at_us, expires_at_us) VALUES (?, ?, ?, '340100', ?, ?, ?, ?, ?)"
)
# Registered yesterday (whole seconds, in µs): their periods run well past the test.
T0 = (int(time.time()) - 86_400) * 1_000_000
YEAR = 365 * 86_400_000_000


async def test_bank_returns_generated_accounts_with_freezes(start_service, tmp_path):
    people = population()
    generated = list(datagen.bank_accounts(SEED, people, "icbc", "中国工商银行", "bank"))
    owner_id = generated[0].owner_id_number
    expected = {a.account_number: a for a in generated if a.owner_id_number == owner_id}
    owner = next(s for s in people if s.id_number == owner_id)
    bank = start_service(BANK.module, **env())

    response = await query(bank, BANK, as_subject(owner))
    assert response.institution_id == "icbc"
    assert sorted(a.account_number for a in response.accounts) == sorted(expected)
    for account in response.accounts:
        want = expected[account.account_number]
        assert (account.type, account.currency, account.balance_fen, account.status, account.branch,
                account.opened_on) == (want.account_type, want.currency, want.balance_fen, want.status,
                                       want.branch, want.opened_on)
        assert (account.frozen_fen, account.available_balance_fen, list(account.freezes)) == (0, want.balance_fen, [])

    # Holds written by the control side show up in the next query.
    target = max(expected.values(), key=lambda a: a.balance_fen)
    amount = max(target.balance_fen // 3, 1)
    insert(
        tmp_path / "icbc.db", FREEZE_SQL,
        ("f-released", target.account_number, "(2023)皖01执1号", RELEASED, amount, 0, 1, T0, T0, T0 + YEAR),
        ("f-active", target.account_number, "(2024)皖01执2号", ACTIVE, amount, amount, 2, T0, T0, T0 + YEAR),
        ("f-queued", target.account_number, "(2024)皖01执3号", QUEUED, 500, 0, 3, T0 + 1, None, T0 + YEAR),
    )
    response = await query(bank, BANK, as_subject(owner))
    account = next(a for a in response.accounts if a.account_number == target.account_number)
    assert account.frozen_fen == amount
    assert account.available_balance_fen == target.balance_fen - amount
    assert [(f.freeze_id, f.state, f.queue_position) for f in account.freezes] == [
        ("f-active", ACTIVE, 0), ("f-queued", QUEUED, 1),
    ]
    assert account.freezes[0].expires_at.ToMicroseconds() == T0 + YEAR
    assert not account.freezes[1].HasField("effective_at")

    assert list((await query(bank, BANK, without_records({a.owner_id_number for a in generated}))).accounts) == []
    mismatch = await query_error(bank, BANK, common_pb2.Subject(type=owner.subject_type, id_number=owner_id, name="冒名者"))
    assert mismatch.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "name" in mismatch.details()
    # Without a name the agency matches on the ID alone.
    by_id = await query(bank, BANK, common_pb2.Subject(type=owner.subject_type, id_number=owner_id))
    assert sorted(a.account_number for a in by_id.accounts) == sorted(expected)

    # Queries are logged with the request ID and a masked subject ID only.
    logged = [line for line in bank.output if "query t-1" in line]
    assert logged and any(mask_id(owner_id) in line for line in logged)
    assert not any(owner_id in line for line in bank.output)


async def test_vehicle_registry_returns_generated_vehicles_with_seals(start_service, tmp_path):
    people = population()
    generated = list(datagen.vehicles(SEED, people, "hefei-vmo"))
    owner_id = generated[0].owner_id_number
    expected = {v.plate: v for v in generated if v.owner_id_number == owner_id}
    owner = next(s for s in people if s.id_number == owner_id)
    registry = start_service(VEHICLE.module, **env())

    response = await query(registry, VEHICLE, as_subject(owner))
    assert response.registry_id == "hefei-vmo"
    assert sorted(v.plate for v in response.vehicles) == sorted(expected)
    for vehicle in response.vehicles:
        want = expected[vehicle.plate]
        assert (vehicle.vin, vehicle.brand, vehicle.model, vehicle.plate_type, vehicle.color,
                vehicle.registered_on, vehicle.status) == (want.vin, want.brand, want.model, want.plate_type,
                                                           want.color, want.registered_on, want.status)
        assert list(vehicle.seals) == []

    plate = generated[0].plate
    insert(
        tmp_path / "hefei-vmo.db", SEAL_SQL,
        ("s-active", plate, "(2024)皖01执2号", ACTIVE, 1, T0, T0, T0 + 2 * YEAR),
        ("s-queued-1", plate, "(2024)皖01执3号", QUEUED, 2, T0 + 1, None, T0 + 2 * YEAR),
        ("s-queued-2", plate, "(2024)皖01执4号", QUEUED, 3, T0 + 2, None, T0 + 2 * YEAR),
    )
    response = await query(registry, VEHICLE, as_subject(owner))
    sealed = next(v for v in response.vehicles if v.plate == plate)
    assert [(s.seal_id, s.asset_id, s.state, s.queue_position) for s in sealed.seals] == [
        ("s-active", plate, ACTIVE, 0), ("s-queued-1", plate, QUEUED, 1), ("s-queued-2", plate, QUEUED, 2),
    ]

    assert list((await query(registry, VEHICLE, without_records({v.owner_id_number for v in generated}))).vehicles) == []
    mismatch = await query_error(registry, VEHICLE, common_pb2.Subject(type=owner.subject_type, id_number=owner_id, name="冒名者"))
    assert mismatch.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_realestate_registry_returns_generated_properties(start_service):
    generated = list(datagen.properties(SEED, population(), "hefei-rer"))
    # A shared property shows every owner and share to each of them.
    shared = next((p for p in generated if len(p.owners) > 1), generated[0])
    owner = shared.owners[-1]
    expected = {p.certificate_number: p for p in generated if owner.id_number in {o.id_number for o in p.owners}}
    registry = start_service(REALESTATE.module, **env())

    response = await query(registry, REALESTATE, as_subject(owner))
    assert response.registry_id == "hefei-rer"
    assert sorted(p.certificate_number for p in response.properties) == sorted(expected)
    for prop in response.properties:
        want = expected[prop.certificate_number]
        assert (prop.unit_number, prop.address, prop.area_m2, prop.use, prop.registered_on) == (
            want.unit_number, want.address, want.area_m2, want.use, want.registered_on)
        assert [(o.subject.type, o.subject.id_number, o.subject.name, o.share_bp) for o in prop.owners] == [
            (o.subject_type, o.id_number, o.name, o.share_bp) for o in want.owners]
        assert [(m.mortgagee, m.amount_fen, m.registered_on) for m in prop.mortgages] == [
            (m.mortgagee, m.amount_fen, m.registered_on) for m in want.mortgages]
        assert list(prop.seals) == []

    owner_ids = {o.id_number for p in generated for o in p.owners}
    assert list((await query(registry, REALESTATE, without_records(owner_ids))).properties) == []
    mismatch = await query_error(registry, REALESTATE, common_pb2.Subject(type=owner.subject_type, id_number=owner.id_number, name="冒名者"))
    assert mismatch.code() == grpc.StatusCode.FAILED_PRECONDITION


def _with_check_char(first17: str, valid: bool) -> str:
    check = credit_code_check_char(first17)
    return first17 + (check if valid else ("0" if check != "0" else "1"))


def _bad_requests(valid: common_pb2.Subject):
    bad_checksum = valid.id_number[:17] + ("0" if valid.id_number[17] != "0" else "1")
    subject = lambda **kw: common_pb2.Subject(**{"type": valid.type, "id_number": valid.id_number, "name": valid.name, **kw})  # noqa: E731
    credit = common_pb2.SUBJECT_TYPE_CREDIT_CODE
    return [
        ("subject.id_number", subject(id_number=bad_checksum), CASE, "t-1"),
        ("subject.id_number", subject(type=credit, id_number=_with_check_char("91340100MA2N4X5K1", False)), CASE, "t-1"),
        ("subject.name", subject(name="  "), CASE, "t-1"),
        ("subject.name", subject(name="张" * 101), CASE, "t-1"),
        ("subject.type", subject(type=common_pb2.SUBJECT_TYPE_UNSPECIFIED), CASE, "t-1"),
        ("case.case_number", subject(), common_pb2.CaseRef(
            case_number="2024-123", court_code="340100", executor_id="E0001", document_number="D1"), "t-1"),
        ("request_id", subject(), CASE, "has spaces"),
    ]


@pytest.mark.parametrize("agency", [BANK, VEHICLE, REALESTATE], ids=lambda a: a.module)
async def test_invalid_requests_name_the_field(start_service, agency):
    valid = as_subject(population()[0])
    service = start_service(agency.module, **env())
    requests = _bad_requests(valid) if agency is BANK else _bad_requests(valid)[:1]
    for field, subject, case, request_id in requests:
        error = await query_error(service, agency, subject, case=case, request_id=request_id)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert error.details().startswith(f"{field}: "), (field, error.details())
    # A valid credit code of a company nobody registered is simply not found.
    unknown_company = common_pb2.Subject(
        type=common_pb2.SUBJECT_TYPE_CREDIT_CODE, id_number=_with_check_char("91340100MA2N4X5K1", True), name="某公司"
    )
    response = await query(service, agency, unknown_company)
    assert (getattr(response, agency.answered_by), list(getattr(response, agency.records))) == (agency.agency_id, [])


async def test_health_reflection_and_metrics(start_service):
    bank = start_service(BANK.module, **env())
    async with grpc.aio.insecure_channel(bank.endpoints["grpc"]) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", BANK.service):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        listed = [s.name async for reply in replies for s in reply.list_services_response.service]
        assert BANK.service in listed

    await query(bank, BANK, as_subject(population()[0]))
    body = await asyncio.to_thread(
        lambda: urllib.request.urlopen(f"http://{bank.endpoints['metrics']}/metrics", timeout=5).read().decode()
    )
    handled = [line for line in body.splitlines() if line.startswith("grpc_server_handled_total{")]
    assert any('grpc_method="QueryAccounts"' in line and 'grpc_code="OK"' in line for line in handled), handled
    accounts = sum(1 for _ in datagen.bank_accounts(SEED, population(), "icbc", "中国工商银行", "bank"))
    assert f'chakong_agency_records{{agency="icbc",kind="accounts"}} {float(accounts)}' in body


async def test_sigterm_stops_gracefully_and_exits_0(start_service):
    bank = start_service(BANK.module, **env(GRACE_SECONDS="1"))
    await query(bank, BANK, as_subject(population()[0]))
    bank.signal(signal.SIGTERM)
    assert await asyncio.to_thread(bank.proc.wait, 15) == 0
    assert any("stopped icbc" in line for line in bank.output)


async def test_health_watch_turns_not_serving_on_sigterm(start_service):
    bank = start_service(BANK.module, **env(GRACE_SECONDS="1"))
    async with grpc.aio.insecure_channel(bank.endpoints["grpc"]) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=BANK.service))
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        bank.signal(signal.SIGTERM)
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()
    assert await asyncio.to_thread(bank.proc.wait, 15) == 0


async def test_injected_faults_delay_and_fail_calls(start_service):
    bank = start_service(BANK.module, **env(FAULT_ERROR_RATE="1", FAULT_LATENCY_P50_MS="200"))
    started = time.perf_counter()
    error = await query_error(bank, BANK, as_subject(population()[0]))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert time.perf_counter() - started >= 0.19
    # Health is infrastructure: never faulted, so the stack still sees the agency.
    async with grpc.aio.insecure_channel(bank.endpoints["grpc"]) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=BANK.service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_restart_reuses_the_seeded_db_and_a_new_seed_reseeds(start_service, tmp_path):
    db = tmp_path / "hefei-vmo.db"
    first = start_service(VEHICLE.module, **env())
    assert any("seeding database" in line for line in first.output)
    assert first.stop() == 0
    seeded = db.stat()

    again = start_service(VEHICLE.module, **env())
    assert any("reusing seeded database" in line for line in again.output)
    assert not any("seeding database" in line for line in again.output)
    assert again.stop() == 0
    assert (db.stat().st_ino, db.stat().st_mtime_ns) == (seeded.st_ino, seeded.st_mtime_ns)

    reseeded = start_service(VEHICLE.module, **env(SEED=str(SEED + 1)))
    assert any("reseeding database" in line and "seed" in line for line in reseeded.output)
    assert db.stat().st_ino != seeded.st_ino
    assert not list(tmp_path.glob("*.seeding"))


def test_bad_settings_fail_fast_with_the_variable_named(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "services.bank"],
        cwd=REPO,
        env={**os.environ, "DATA_DIR": str(tmp_path), "BANK_PROFILE": "loan"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "BANK_PROFILE" in result.stderr
    assert not list(tmp_path.iterdir())
