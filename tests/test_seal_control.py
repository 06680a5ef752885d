"""Seals on vehicles and properties over real gRPC: queueing, lapse, renewal,
release, transfer after a court sale, idempotency and validation."""

import asyncio
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from protos.common.v1 import common_pb2
from protos.realestate.v1 import realestate_pb2, realestate_pb2_grpc
from protos.vehicle.v1 import vehicle_pb2, vehicle_pb2_grpc
from services import datagen
from services.common.periods import add_years
from services.common.logs import mask_id

SEED = 7
SUBJECTS = 300
DAY = 86_400
YEAR = 365 * DAY
ACTIVE, QUEUED = common_pb2.HOLD_STATE_ACTIVE, common_pb2.HOLD_STATE_QUEUED
RELEASED, LAPSED, TRANSFERRED = (
    common_pb2.HOLD_STATE_RELEASED, common_pb2.HOLD_STATE_LAPSED, common_pb2.HOLD_STATE_TRANSFERRED,
)
SEALED = vehicle_pb2.VEHICLE_STATUS_SEALED


def case(number: int, court_code: str) -> common_pb2.CaseRef:
    return common_pb2.CaseRef(
        case_number=f"(2024)皖01执{number}号", court_code=court_code, executor_id="E0001",
        document_number=f"(2024)皖01执{number}号协助执行通知书",
    )


COURT_A, COURT_B, COURT_C = case(101, "340100"), case(202, "340104"), case(303, "340111")


class OffsetClock:
    """The registries' clock (CLOCK_OFFSET_FILE): real time plus an offset."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        path.write_text("0")

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: int) -> None:
        self.offset += seconds
        self.path.write_text(str(self.offset))

    def later(self, seconds: float) -> Timestamp:
        return Timestamp(seconds=int(self.now() + seconds))


@dataclass
class Registry:
    service: object
    channel: grpc.aio.Channel
    stub: object
    db: Path


@pytest.fixture
def clock(tmp_path) -> OffsetClock:
    return OffsetClock(tmp_path / "clock-offset")


def _env(clock: OffsetClock) -> dict[str, str]:
    return {
        "GRPC_ADDRESS": "127.0.0.1:0",
        "METRICS_ADDRESS": "127.0.0.1:0",
        "SEED": str(SEED),
        "SUBJECTS": str(SUBJECTS),
        "LOG_FORMAT": "text",
        "CLOCK_OFFSET_FILE": str(clock.path),
    }


@pytest.fixture
async def vehicles(start_service, clock, tmp_path):
    service = start_service("services.vehicle", **_env(clock))
    async with grpc.aio.insecure_channel(service.endpoints["grpc"]) as channel:
        yield Registry(service, channel, vehicle_pb2_grpc.VehicleRegistryStub(channel), tmp_path / "hefei-vmo.db")


@pytest.fixture
async def properties(start_service, clock, tmp_path):
    service = start_service("services.realestate", **_env(clock))
    async with grpc.aio.insecure_channel(service.endpoints["grpc"]) as channel:
        yield Registry(
            service, channel, realestate_pb2_grpc.RealEstateRegistryStub(channel), tmp_path / "hefei-rer.db"
        )


def population():
    return datagen.subjects(SEED, SUBJECTS)


def as_subject(record) -> common_pb2.Subject:
    return common_pb2.Subject(type=record.subject_type, id_number=record.id_number, name=record.name)


def sealable_vehicles() -> list[tuple[str, common_pb2.Subject, int]]:
    """(plate, owner, registered status) of vehicles that are not scrapped."""
    people = {s.id_number: s for s in population()}
    return [
        (v.plate, as_subject(people[v.owner_id_number]), v.status)
        for v in datagen.vehicles(SEED, population(), "hefei-vmo")
        if v.status != vehicle_pb2.VEHICLE_STATUS_SCRAPPED
    ]


def seal_request(key, court, subject, plate, expires_at, **fields) -> vehicle_pb2.SealRequest:
    return vehicle_pb2.SealRequest(
        idempotency_key=key, case=court, subject=subject, plate=plate, expires_at=expires_at, **fields
    )


async def refused(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def vehicle_of(registry: Registry, owner: common_pb2.Subject, plate: str) -> vehicle_pb2.Vehicle:
    response = await registry.stub.QueryVehicles(
        vehicle_pb2.QueryVehiclesRequest(request_id="q", case=COURT_A, subject=owner), timeout=10
    )
    return next(v for v in response.vehicles if v.plate == plate)


def seal_row(db: Path, seal_id: str) -> sqlite3.Row:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM seals WHERE seal_id = ?", (seal_id,)).fetchone()
    finally:
        conn.close()


def count(db: Path, sql: str, *args) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchone()[0]
    finally:
        conn.close()


async def test_vehicle_seals_queue_promote_lapse_and_renew(vehicles, clock):
    plate, owner, registered_status = sealable_vehicles()[0]
    stub = vehicles.stub

    first = await stub.Seal(seal_request("k-a1", COURT_A, owner, plate, clock.later(YEAR)), timeout=10)
    assert (first.asset_id, first.state, first.queue_position, first.court_code) == (plate, ACTIVE, 0, "340100")
    assert first.effective_at.seconds and not first.HasField("ended_at")
    vehicle = await vehicle_of(vehicles, owner, plate)
    assert vehicle.status == SEALED
    assert [(s.seal_id, s.state) for s in vehicle.seals] == [(first.seal_id, ACTIVE)]

    # Other courts queue behind it (轮候), in registration order.
    second = await stub.Seal(seal_request("k-b1", COURT_B, owner, plate, clock.later(180 * DAY)), timeout=10)
    third = await stub.Seal(seal_request("k-c1", COURT_C, owner, plate, clock.later(2 * YEAR)), timeout=10)
    assert [(s.state, s.queue_position) for s in (second, third)] == [(QUEUED, 1), (QUEUED, 2)]
    assert not second.HasField("effective_at")
    duplicate = await refused(stub.Seal(seal_request("k-b2", COURT_B, owner, plate, clock.later(DAY))))
    assert duplicate.code() == grpc.StatusCode.ALREADY_EXISTS and second.seal_id in duplicate.details()

    # Only the placing court may renew or release.
    for call in (
        stub.RenewSeal(vehicle_pb2.RenewSealRequest(
            idempotency_key="k-b-renew", case=COURT_B, seal_id=first.seal_id, expires_at=clock.later(YEAR + DAY))),
        stub.ReleaseSeal(vehicle_pb2.ReleaseSealRequest(
            idempotency_key="k-b-release", case=COURT_B, seal_id=first.seal_id)),
    ):
        error = await refused(call)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED and "340100" in error.details()

    released = await stub.ReleaseSeal(
        vehicle_pb2.ReleaseSealRequest(idempotency_key="k-a-release", case=COURT_A, seal_id=first.seal_id), timeout=10
    )
    assert (released.state, released.ended_at.seconds > 0) == (RELEASED, True)
    vehicle = await vehicle_of(vehicles, owner, plate)
    assert vehicle.status == SEALED
    assert [(s.seal_id, s.state, s.queue_position) for s in vehicle.seals] == [
        (second.seal_id, ACTIVE, 0), (third.seal_id, QUEUED, 1),
    ]
    promoted = vehicle.seals[0]
    # The queued seal's 180 days run from when it took effect, not from registration.
    period = promoted.expires_at.seconds - promoted.effective_at.seconds
    assert abs(period - 180 * DAY) <= 1
    assert promoted.effective_at.seconds >= second.registered_at.seconds

    # Time passes: the active seal lapses at its end and the next takes effect then.
    clock.advance(181 * DAY)
    vehicle = await vehicle_of(vehicles, owner, plate)
    assert [(s.seal_id, s.state, s.queue_position) for s in vehicle.seals] == [(third.seal_id, ACTIVE, 0)]
    lapsed = seal_row(vehicles.db, second.seal_id)
    assert (lapsed["state"], lapsed["ended_at_us"]) == (LAPSED, lapsed["expires_at_us"])
    now_active = vehicle.seals[0]
    assert now_active.effective_at.ToMicroseconds() == lapsed["expires_at_us"]
    assert now_active.expires_at.ToMicroseconds() <= add_years(now_active.effective_at.ToMicroseconds(), 2)

    too_late = await refused(stub.RenewSeal(vehicle_pb2.RenewSealRequest(
        idempotency_key="k-b-renew-late", case=COURT_B, seal_id=second.seal_id, expires_at=clock.later(YEAR))))
    assert too_late.code() == grpc.StatusCode.FAILED_PRECONDITION and "lapsed" in too_late.details()

    too_long = await refused(stub.RenewSeal(vehicle_pb2.RenewSealRequest(
        idempotency_key="k-c-renew-long", case=COURT_C, seal_id=third.seal_id,
        expires_at=clock.later(2 * YEAR + 2 * DAY))))
    assert too_long.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert too_long.details().startswith("expires_at: ") and "2 year" in too_long.details()
    earlier = await refused(stub.RenewSeal(vehicle_pb2.RenewSealRequest(
        idempotency_key="k-c-renew-early", case=COURT_C, seal_id=third.seal_id, expires_at=clock.later(DAY))))
    assert earlier.code() == grpc.StatusCode.FAILED_PRECONDITION and "later than" in earlier.details()
    new_end = clock.later(2 * YEAR - DAY)
    renewed = await stub.RenewSeal(vehicle_pb2.RenewSealRequest(
        idempotency_key="k-c-renew", case=COURT_C, seal_id=third.seal_id, expires_at=new_end), timeout=10)
    assert (renewed.state, renewed.expires_at) == (ACTIVE, new_end)

    await stub.ReleaseSeal(vehicle_pb2.ReleaseSealRequest(
        idempotency_key="k-c-release", case=COURT_C, seal_id=third.seal_id), timeout=10)
    vehicle = await vehicle_of(vehicles, owner, plate)
    assert (vehicle.status, list(vehicle.seals)) == (registered_status, [])

    # One line per call, with the key and seal; subject IDs only masked.
    seal_lines = [line for line in vehicles.service.output if "Seal key=k-a1 " in line]
    assert len(seal_lines) == 1 and first.seal_id in seal_lines[0] and mask_id(owner.id_number) in seal_lines[0]
    assert any("RenewSeal key=k-b-renew " in line and "PERMISSION_DENIED" in line for line in vehicles.service.output)
    assert not any(owner.id_number in line for line in vehicles.service.output)


async def test_property_transfer_by_the_active_seal_holder(properties, clock):
    generated = list(datagen.properties(SEED, population(), "hefei-rer"))
    target = next((p for p in generated if p.mortgages and len(p.owners) > 1), generated[0])
    other = next(p for p in generated if p.certificate_number != target.certificate_number)
    debtor = as_subject(target.owners[0])
    owner_ids = {o.id_number for p in generated for o in p.owners}
    buyer = as_subject(next(s for s in population() if s.id_number not in owner_ids))
    stub, cert = properties.stub, target.certificate_number

    def seal(key, court, certificate=cert, subject=debtor):
        return stub.Seal(realestate_pb2.SealRequest(
            idempotency_key=key, case=court, subject=subject, certificate_number=certificate,
            expires_at=clock.later(3 * YEAR)), timeout=10)

    def transfer(key, court, certificate=cert):
        return stub.Transfer(realestate_pb2.TransferRequest(
            idempotency_key=key, case=court, certificate_number=certificate, buyer=buyer,
            ruling_number="(2024)皖01执101号之二", price_fen=123_456_700), timeout=10)

    async def query(subject):
        response = await stub.QueryProperties(
            realestate_pb2.QueryPropertiesRequest(request_id="q", case=COURT_A, subject=subject), timeout=10)
        return {p.certificate_number: p for p in response.properties}

    held = await seal("p-a1", COURT_A)
    queued = await seal("p-b1", COURT_B)
    assert [(held.state, held.queue_position), (queued.state, queued.queue_position)] == [(ACTIVE, 0), (QUEUED, 1)]
    assert [s.seal_id for s in (await query(debtor))[cert].seals] == [held.seal_id, queued.seal_id]
    stranger = await refused(seal("p-x", COURT_C, subject=buyer))
    assert stranger.code() == grpc.StatusCode.FAILED_PRECONDITION and "owner" in stranger.details()

    no_seal = await refused(transfer("t-c", COURT_C))
    assert no_seal.code() == grpc.StatusCode.PERMISSION_DENIED and "340100" in no_seal.details()
    only_queued = await refused(transfer("t-b", COURT_B))
    assert only_queued.code() == grpc.StatusCode.FAILED_PRECONDITION and "queued" in only_queued.details()
    unsealed = await refused(transfer("t-other", COURT_A, other.certificate_number))
    assert unsealed.code() == grpc.StatusCode.FAILED_PRECONDITION and "no active seal" in unsealed.details()

    done = await transfer("t-a", COURT_A)
    assert re.fullmatch(r"皖\(\d{4}\)合肥市不动产权第9\d{6}号", done.new_certificate_number)
    assert (done.certificate_number, done.buyer, done.price_fen) == (cert, buyer, 123_456_700)
    assert list(done.ended_seal_ids) == [held.seal_id, queued.seal_id]
    assert await transfer("t-a", COURT_A) == done
    assert count(properties.db, "SELECT COUNT(*) FROM transfers") == 1
    for seal_id in done.ended_seal_ids:
        row = seal_row(properties.db, seal_id)
        assert (row["state"], row["ended_at_us"]) == (TRANSFERRED, done.transferred_at.ToMicroseconds())

    # The buyer alone owns it now, free of mortgages and seals; the debtor no longer does.
    bought = (await query(buyer))[done.new_certificate_number]
    assert [(o.subject, o.share_bp) for o in bought.owners] == [(buyer, 10_000)]
    assert (list(bought.mortgages), list(bought.seals)) == ([], [])
    assert (bought.address, bought.unit_number) == (target.address, target.unit_number)
    assert not {cert, done.new_certificate_number} & set(await query(debtor))

    gone = await refused(seal("p-a2", COURT_A))
    assert gone.code() == grpc.StatusCode.NOT_FOUND and done.new_certificate_number in gone.details()
    ended = await refused(stub.ReleaseSeal(realestate_pb2.ReleaseSealRequest(
        idempotency_key="p-b-release", case=COURT_B, seal_id=queued.seal_id)))
    assert ended.code() == grpc.StatusCode.FAILED_PRECONDITION and "transferred" in ended.details()
    # The new certificate can be sealed in the buyer's own cases.
    assert (await seal("p-c-new", COURT_C, done.new_certificate_number, buyer)).state == ACTIVE
    assert any("Transfer key=t-a " in line and done.new_certificate_number in line
               for line in properties.service.output)
    assert not any(buyer.id_number in line for line in properties.service.output)


async def test_same_key_gives_the_same_answer_and_one_effect(vehicles, clock):
    sealable = sealable_vehicles()
    plate, owner, _ = sealable[0]
    plate2, owner2, _ = next(v for v in sealable if v[1] != owner)
    stub = vehicles.stub
    request = seal_request("k-once", COURT_A, owner, plate, clock.later(YEAR))
    first = await stub.Seal(request, timeout=10)
    assert await stub.Seal(request, timeout=10) == first
    assert [s.seal_id for s in (await vehicle_of(vehicles, owner, plate)).seals] == [first.seal_id]

    # Eight identical requests at once, one key: one seal, one answer.
    burst = seal_request("k-burst", COURT_B, owner2, plate2, clock.later(YEAR))
    answers = await asyncio.gather(*(stub.Seal(burst, timeout=10) for _ in range(8)))
    assert all(a == answers[0] for a in answers)
    assert [s.seal_id for s in (await vehicle_of(vehicles, owner2, plate2)).seals] == [answers[0].seal_id]

    reused = await refused(stub.Seal(seal_request("k-once", COURT_A, owner, plate, clock.later(YEAR - DAY))))
    assert reused.code() == grpc.StatusCode.ALREADY_EXISTS and reused.details().startswith("idempotency_key: ")
    # A refusal is recorded too: the retry is refused the same way.
    wrong_owner = seal_request("k-wrong", COURT_C, owner2, plate, clock.later(YEAR))
    errors = [await refused(stub.Seal(wrong_owner)) for _ in range(2)]
    assert {(e.code(), e.details()) for e in errors} == {(grpc.StatusCode.FAILED_PRECONDITION, errors[0].details())}
    assert count(vehicles.db, "SELECT COUNT(*) FROM seals") == 2


async def test_bad_input_is_invalid_argument_and_leaves_nothing(vehicles, properties, clock):
    plate, owner, _ = sealable_vehicles()[0]
    nameless = common_pb2.Subject(type=owner.type, id_number=owner.id_number)
    bad = [
        ("plate", seal_request("k-bad", COURT_A, owner, "皖A1234I", clock.later(YEAR))),
        ("idempotency_key", seal_request("", COURT_A, owner, plate, clock.later(YEAR))),
        ("expires_at", seal_request("k-bad", COURT_A, owner, plate, clock.later(-60))),
        ("expires_at", seal_request("k-bad", COURT_A, owner, plate, clock.later(2 * YEAR + 2 * DAY))),
        ("expires_at", seal_request("k-bad", COURT_A, owner, plate, Timestamp())),
        ("subject.name", seal_request("k-bad", COURT_A, nameless, plate, clock.later(YEAR))),
    ]
    for field, request in bad:
        error = await refused(vehicles.stub.Seal(request, timeout=10))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert error.details().startswith(f"{field}: "), (field, error.details())
    bad_renew = await refused(vehicles.stub.RenewSeal(vehicle_pb2.RenewSealRequest(
        idempotency_key="k-bad", case=COURT_A, seal_id="", expires_at=clock.later(DAY))))
    assert bad_renew.details().startswith("seal_id: ")
    assert count(vehicles.db, "SELECT COUNT(*) FROM seals") == 0
    assert count(vehicles.db, "SELECT COUNT(*) FROM idempotency") == 0
    # Nothing was recorded under the key: the corrected request succeeds with it.
    fixed = await vehicles.stub.Seal(seal_request("k-bad", COURT_A, owner, plate, clock.later(YEAR)), timeout=10)
    assert fixed.state == ACTIVE

    target = next(iter(datagen.properties(SEED, population(), "hefei-rer")))
    debtor = as_subject(target.owners[0])
    await properties.stub.Seal(realestate_pb2.SealRequest(
        idempotency_key="p-seal", case=COURT_A, subject=debtor, certificate_number=target.certificate_number,
        expires_at=clock.later(YEAR)), timeout=10)
    buyer = common_pb2.Subject(type=owner.type, id_number=owner.id_number, name=owner.name)
    transfer = dict(
        idempotency_key="t-bad", case=COURT_A, certificate_number=target.certificate_number, buyer=buyer,
        ruling_number="(2024)皖01执101号之二", price_fen=100_000_00,
    )
    for field, changes in [
        ("buyer.name", {"buyer": nameless}),
        ("price_fen", {"price_fen": 0}),
        ("ruling_number", {"ruling_number": ""}),
        ("certificate_number", {"certificate_number": "合肥-123"}),
        ("idempotency_key", {"idempotency_key": ""}),
    ]:
        error = await refused(properties.stub.Transfer(realestate_pb2.TransferRequest(**{**transfer, **changes})))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert error.details().startswith(f"{field}: "), (field, error.details())
    assert count(properties.db, "SELECT COUNT(*) FROM transfers") == 0
    assert count(properties.db, "SELECT COUNT(*) FROM idempotency WHERE idempotency_key = 't-bad'") == 0
    assert count(properties.db, "SELECT COUNT(*) FROM seals WHERE state = ?", ACTIVE) == 1


async def test_replay_after_the_requested_expiry_still_gets_the_stored_answer(vehicles, clock):
    plate, owner, _ = sealable_vehicles()[0]
    request = seal_request("replay-late", COURT_A, owner, plate, clock.later(DAY))
    first = await vehicles.stub.Seal(request)
    # Two days on, expires_at is in the past: a new request would be invalid,
    # but a retry of the recorded one must get its answer, not an error.
    clock.advance(2 * DAY)
    assert await vehicles.stub.Seal(request) == first

    # A key rejected for a past expires_at stays free for a corrected request.
    stale = seal_request("fixed-later", COURT_B, owner, plate, clock.later(-DAY))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await vehicles.stub.Seal(stale)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "expires_at" in refused.value.details()
    fixed = seal_request("fixed-later", COURT_B, owner, plate, clock.later(DAY))
    assert (await vehicles.stub.Seal(fixed)).state == ACTIVE
