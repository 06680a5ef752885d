"""The seal ledger against a simple model: random seals by three courts,
renewals, releases, lapses as time passes, transfers and idempotent replays,
run in-process with a manual clock on a small seeded DB. After every step a
reader of the hold changes feed, paging on from its cursor, holds every seal
as the registry does."""

import asyncio
import re
import sqlite3
from dataclasses import dataclass
from itertools import count

import grpc
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from protos.common.v1 import common_pb2
from protos.realestate.v1 import realestate_pb2
from protos.vehicle.v1 import vehicle_pb2
from services import datagen
from services.agency import feed, seals
from services.agency.control import exactly_once
from services.common.clock import ManualClock
from services.common.periods import add_years
from services.agency.holds import seal_message
from services.agency.store import COMMON_SCHEMA, SEAL_HOLDS, timestamp
from services.realestate import store as realestate_store
from services.realestate import transfers
from services.vehicle import store as vehicle_store

ACTIVE, QUEUED, RELEASED = common_pb2.HOLD_STATE_ACTIVE, common_pb2.HOLD_STATE_QUEUED, common_pb2.HOLD_STATE_RELEASED
LAPSED, TRANSFERRED = common_pb2.HOLD_STATE_LAPSED, common_pb2.HOLD_STATE_TRANSFERRED
PENDING = (ACTIVE, QUEUED)
OK = "OK"

SECOND = 1_000_000
DAY = 86_400 * SECOND
T0 = 1_767_225_600_000_000 + 123_456  # 2026-01-01T00:00:00.123456Z

COURTS = ("340100", "340104", "340111")
# The third is the first written with full-width brackets: the same case.
CASES = ("(2024)皖01执1号", "(2024)皖01执2号", "（2024）皖01执1号")
CLOCK_STEPS = (SECOND, 3_600 * SECOND, DAY, DAY, 30 * DAY, 30 * DAY, 180 * DAY, 365 * DAY, 730 * DAY)
# Requested ends: mostly lawful periods, sometimes in the past, now, or one
# second beyond the statutory maximum ("max").
LAWFUL = (3_600 * SECOND, DAY, 30 * DAY, 30 * DAY, 180 * DAY, 365 * DAY, "max")
EXPIRIES = (-DAY, 0, "max+1s", *LAWFUL)

PEOPLE = [
    common_pb2.Subject(type=s.subject_type, id_number=s.id_number, name=s.name)
    for s in datagen.subjects(11, 8)[:4]
]
P1, P2, P3, BUYER = PEOPLE
IMPOSTOR = common_pb2.Subject(type=P1.type, id_number=P1.id_number, name=P1.name + "冒")

# Usually the court that placed the seal acts on it.
OWN = st.sampled_from((True, True, True, False))

SETTINGS = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def normal_case(case_number: str) -> str:
    return case_number.replace("（", "(").replace("）", ")")


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class AbortingContext:
    """What exactly_once needs of a gRPC context: abort raises."""

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details)


@dataclass
class ModelSeal:
    seal_id: str
    asset: str
    court: str
    case: str
    state: int
    registered: int
    effective: int | None
    expires: int
    ended: int | None
    # Start of the current period: taking effect, or the last renewal.
    anchor: int | None


@dataclass
class Call:
    method: str
    request: object
    response_type: type
    outcome: tuple


class LedgerMachine(RuleBasedStateMachine):
    """Shared by both registries; a subclass seeds its DB and builds requests."""

    ledger: seals.SealRules
    schema: str
    assets: tuple[str, ...]
    # Initial owners of each asset; assets missing here are unknown to the registry.
    owners: dict[str, tuple[str, ...]]
    # The registry's generated messages (SealRequest, RenewSealRequest, ...).
    pb: object

    def __init__(self):
        super().__init__()
        self.clock = ManualClock(T0)
        self.conn = sqlite3.connect(":memory:", isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.executescript(COMMON_SCHEMA + self.schema)
        self.seed(self.conn)
        seals.prepare(self.conn)
        self.runner = asyncio.Runner()
        self.keys = count(1)
        self.model: dict[str, ModelSeal] = {}
        self.order: list[str] = []
        self.asset_ids = list(self.assets)
        self.current_owners = dict(self.owners)
        self.holders = {p.id_number: (p.type, p.name) for p in (P1, P2, P3)}
        self.calls: list[Call] = []
        # What a reader of the feed knows: its cursor and every seal.
        self.feed_cursor = 0
        self.feed_view: dict[str, common_pb2.Seal] = {}

    def teardown(self):
        self.runner.close()
        self.conn.close()

    def seed(self, conn: sqlite3.Connection) -> None:
        raise NotImplementedError

    @property
    def years(self) -> int:
        return self.ledger.max_years

    # -- running calls the way the servicers do --------------------------

    def call(self, method, request, response_type, apply, *, record=True) -> tuple:
        coro = exactly_once(
            self.conn, AbortingContext(), method=method, request=request, court_code=request.case.court_code,
            response_type=response_type, apply=apply, now_us=self.clock.now_us(),
        )
        try:
            outcome = (OK, self.runner.run(coro))
        except Aborted as exc:
            outcome = (exc.code, exc.details)
        if record:
            self.calls.append(Call(method, request, response_type, outcome))
        return outcome

    def key(self) -> str:
        return f"k-{next(self.keys)}"

    def case_ref(self, court: str, case: str) -> common_pb2.CaseRef:
        return common_pb2.CaseRef(case_number=case, court_code=court, executor_id="E1", document_number="D1")

    def expiry(self, choice: int | str) -> int:
        now = self.clock.now_us()
        if choice == "max":
            return add_years(now, self.years)
        if choice == "max+1s":
            return add_years(now, self.years) + SECOND
        return now + choice

    # -- the model --------------------------------------------------------

    def in_order(self):
        return [self.model[i] for i in self.order]

    def pending_on(self, asset: str) -> list[ModelSeal]:
        return [s for s in self.in_order() if s.asset == asset and s.state in PENDING]

    def position(self, seal: ModelSeal) -> int:
        if seal.state != QUEUED:
            return 0
        queued = [s.seal_id for s in self.pending_on(seal.asset) if s.state == QUEUED]
        return queued.index(seal.seal_id) + 1

    def message(self, seal: ModelSeal) -> common_pb2.Seal:
        return common_pb2.Seal(
            seal_id=seal.seal_id, asset_id=seal.asset, case_number=seal.case, court_code=seal.court,
            state=seal.state, queue_position=self.position(seal), registered_at=timestamp(seal.registered),
            effective_at=timestamp(seal.effective), expires_at=timestamp(seal.expires),
            ended_at=timestamp(seal.ended),
        )

    def model_promote(self, asset: str, at: int) -> None:
        queued = [s for s in self.pending_on(asset) if s.state == QUEUED]
        if queued:
            s = queued[0]
            period = s.expires - s.registered
            s.state, s.effective, s.anchor = ACTIVE, at, at
            s.expires = min(at + period, add_years(at, self.years))

    def model_settle(self) -> None:
        now = self.clock.now_us()
        while due := [s for s in self.model.values() if s.state == ACTIVE and s.expires <= now]:
            s = min(due, key=lambda s: s.expires)
            s.state, s.ended = LAPSED, s.expires
            self.model_promote(s.asset, s.expires)

    def in_period(self, expires: int) -> bool:
        now = self.clock.now_us()
        return now < expires <= add_years(now, self.years)

    def asset_refusal(self, asset: str) -> grpc.StatusCode | None:
        if asset not in self.current_owners:
            return grpc.StatusCode.NOT_FOUND
        return None

    def own_seal_refusal(self, seal_id: str, court: str, case: str) -> grpc.StatusCode | None:
        seal = self.model.get(seal_id)
        if seal is None:
            return grpc.StatusCode.NOT_FOUND
        if seal.court != court or normal_case(seal.case) != normal_case(case):
            return grpc.StatusCode.PERMISSION_DENIED
        return None

    # -- rules --------------------------------------------------------------

    def subject(self, asset_id: str, who: int) -> common_pb2.Subject:
        """Mostly an owner of the asset; else a stranger, an impostor or the buyer."""
        owners = self.current_owners.get(asset_id, (P1.id_number,))
        if who < 5:
            id_number = owners[who % len(owners)]
            return next(p for p in PEOPLE if p.id_number == id_number)
        return (P3, IMPOSTOR, BUYER)[who - 5]

    @rule(
        asset=st.integers(0, 7), who=st.integers(0, 7), court=st.sampled_from(COURTS),
        case=st.sampled_from(CASES), end=st.sampled_from(EXPIRIES),
    )
    def seal(self, asset, who, court, case, end):
        asset_id = self.pick_asset(asset)
        self.place(asset_id, self.subject(asset_id, who), court, case, self.expiry(end))

    @rule(asset=st.integers(0, 5), court=st.sampled_from(COURTS), case=st.sampled_from(CASES),
          end=st.sampled_from(LAWFUL))
    def seal_by_owner(self, asset, court, case, end):
        """A lawful seal, the common case: more seals, so more queues."""
        asset_id = self.pick_asset(asset, self.sealable())
        self.place(asset_id, self.subject(asset_id, 0), court, case, self.expiry(end))

    def sealable(self) -> list[str]:
        return sorted(self.current_owners)

    def place(self, asset_id, subject, court, case, expires):
        now = self.clock.now_us()
        request = self.pb.SealRequest(
            idempotency_key=self.key(), case=self.case_ref(court, case), subject=subject,
            expires_at=timestamp(expires), **{self.ledger.asset_field: asset_id},
        )
        code, result = self.call("Seal", request, common_pb2.Seal, lambda conn: seal_message(*seals.seal(
            conn, self.ledger, asset_id=asset_id, subject=subject, case_number=case, court_code=court,
            expires_us=expires, now_us=now,
        )))

        if not self.in_period(expires):
            expected = grpc.StatusCode.INVALID_ARGUMENT
        elif (refusal := self.asset_refusal(asset_id)) is not None:
            expected = refusal
        elif subject.id_number not in self.current_owners[asset_id]:
            expected = grpc.StatusCode.FAILED_PRECONDITION
        elif self.holders.get(subject.id_number) != (subject.type, subject.name):
            expected = grpc.StatusCode.FAILED_PRECONDITION
        elif duplicate := [
            s for s in self.pending_on(asset_id) if s.court == court and normal_case(s.case) == normal_case(case)
        ]:
            expected = grpc.StatusCode.ALREADY_EXISTS
            assert code == expected and duplicate[0].seal_id in result, (code, result)
        else:
            assert code == OK, result
            assert result.seal_id not in self.model
            active = any(s.state == ACTIVE for s in self.pending_on(asset_id))
            seal = ModelSeal(
                result.seal_id, asset_id, court, case, QUEUED if active else ACTIVE, now,
                None if active else now, expires, None, None if active else now,
            )
            self.model[seal.seal_id] = seal
            self.order.append(seal.seal_id)
            assert result == self.message(seal)
            return
        assert code == expected, (code, result)

    def pick_asset(self, pick: int, candidates: list[str] | None = None) -> str:
        """Mostly a registered asset (or one of `candidates`); sometimes any
        asset ever named, unknown and transferred ones included."""
        candidates = candidates if candidates is not None else sorted(self.current_owners)
        if pick < 6 and candidates:
            return candidates[pick % len(candidates)]
        return self.asset_ids[pick % len(self.asset_ids)]

    def pick_seal(self, pick: int) -> str:
        """An active seal (ending one promotes the next) or a recent one;
        sometimes an unknown ID."""
        active = [s.seal_id for s in self.in_order() if s.state == ACTIVE]
        if not self.order or pick == 0:
            return f"{self.ledger.id_prefix}9999999999"
        if pick <= 5 and active:
            return active[pick % len(active)]
        return self.order[-1 - pick % len(self.order)]

    def pick_party(self, seal_id: str, own: bool, court: str, case: str) -> tuple[str, str]:
        """The placing court and case when `own`, else the drawn ones."""
        seal = self.model.get(seal_id)
        if not own or seal is None:
            return court, case
        # Sometimes the court writes its case number with the other brackets.
        if case == CASES[2] and normal_case(seal.case) == CASES[0]:
            return seal.court, CASES[0] if seal.case == CASES[2] else CASES[2]
        return seal.court, seal.case

    @precondition(lambda self: self.order)
    @rule(
        pick=st.integers(0, 12), own=OWN, court=st.sampled_from(COURTS), case=st.sampled_from(CASES),
        end=st.sampled_from(EXPIRIES),
    )
    def renew(self, pick, own, court, case, end):
        seal_id = self.pick_seal(pick)
        court, case = self.pick_party(seal_id, own, court, case)
        expires = self.expiry(end)
        now = self.clock.now_us()
        request = self.pb.RenewSealRequest(
            idempotency_key=self.key(), case=self.case_ref(court, case), seal_id=seal_id,
            expires_at=timestamp(expires),
        )
        code, result = self.call("RenewSeal", request, common_pb2.Seal, lambda conn: seal_message(*seals.renew(
            conn, self.ledger, seal_id=seal_id, case_number=case, court_code=court, expires_us=expires, now_us=now,
        )))

        seal = self.model.get(seal_id)
        if not self.in_period(expires):
            expected = grpc.StatusCode.INVALID_ARGUMENT
        elif (refusal := self.own_seal_refusal(seal_id, court, case)) is not None:
            expected = refusal
        elif seal.state != ACTIVE or expires <= seal.expires:
            expected = grpc.StatusCode.FAILED_PRECONDITION
        else:
            assert code == OK, result
            seal.expires, seal.anchor = expires, now
            assert result == self.message(seal)
            return
        assert code == expected, (code, result)

    @precondition(lambda self: self.order)
    @rule(pick=st.integers(0, 12), own=OWN, court=st.sampled_from(COURTS), case=st.sampled_from(CASES))
    def release(self, pick, own, court, case):
        seal_id = self.pick_seal(pick)
        court, case = self.pick_party(seal_id, own, court, case)
        now = self.clock.now_us()
        request = self.pb.ReleaseSealRequest(
            idempotency_key=self.key(), case=self.case_ref(court, case), seal_id=seal_id,
        )
        code, result = self.call("ReleaseSeal", request, common_pb2.Seal, lambda conn: seal_message(*seals.release(
            conn, self.ledger, seal_id=seal_id, case_number=case, court_code=court, now_us=now,
        )))

        seal = self.model.get(seal_id)
        if (refusal := self.own_seal_refusal(seal_id, court, case)) is not None:
            expected = refusal
        elif seal.state not in PENDING:
            expected = grpc.StatusCode.FAILED_PRECONDITION
        else:
            assert code == OK, result
            was = seal.state
            seal.state, seal.ended = RELEASED, now
            if was == ACTIVE:
                self.model_promote(seal.asset, now)
            assert result == self.message(seal)
            return
        assert code == expected, (code, result)

    @rule(step=st.sampled_from(CLOCK_STEPS))
    def advance(self, step):
        self.clock.now += step
        self.model_settle()

    @precondition(lambda self: self.calls)
    @rule(pick=st.integers(0, 100))
    def replay(self, pick):
        """The same key and request again: the first answer, no second effect."""
        earlier = self.calls[pick % len(self.calls)]
        before = self.snapshot()
        outcome = self.call(earlier.method, earlier.request, earlier.response_type, self.must_not_apply, record=False)
        assert outcome == earlier.outcome
        assert self.snapshot() == before

    @precondition(lambda self: self.calls)
    @rule(pick=st.integers(0, 100))
    def reuse_key(self, pick):
        """The same key with other parameters is refused and changes nothing."""
        earlier = self.calls[pick % len(self.calls)]
        changed = type(earlier.request)()
        changed.CopyFrom(earlier.request)
        changed.case.document_number += "-2"
        before = self.snapshot()
        code, _ = self.call(earlier.method, changed, earlier.response_type, self.must_not_apply, record=False)
        assert code == grpc.StatusCode.ALREADY_EXISTS
        assert self.snapshot() == before

    @staticmethod
    def must_not_apply(conn):
        raise AssertionError("a recorded key must not apply again")

    @rule(who=st.integers(0, 3))
    def query(self, who):
        self.check_query((P1, P2, P3, BUYER)[who].id_number)

    def check_query(self, id_number: str) -> None:
        """What a query shows after lazy settling: the subject's current
        assets with their pending seals, in order."""
        seals.settle_due(self.conn, self.ledger, self.clock.now_us())
        found = self.query_assets(id_number)
        assert set(found) == {a for a, owners in self.current_owners.items() if id_number in owners}
        for asset_id, shown in found.items():
            assert list(shown) == [self.message(s) for s in self.pending_on(asset_id)]

    # -- invariants ---------------------------------------------------------

    def snapshot(self) -> list[tuple]:
        return [tuple(row) for row in self.conn.execute("SELECT * FROM seals ORDER BY queue_seq")]

    def settled_rows(self) -> list[sqlite3.Row]:
        # Settle in a transaction rolled back afterwards, so that the next
        # operation still has to settle by itself.
        self.conn.execute("BEGIN")
        try:
            seals.settle(self.conn, self.ledger, self.clock.now_us())
            return self.conn.execute("SELECT * FROM seals ORDER BY queue_seq").fetchall()
        finally:
            self.conn.execute("ROLLBACK")

    @invariant()
    def ledger_matches_the_model(self):
        rows = self.settled_rows()
        assert [r["seal_id"] for r in rows] == self.order
        for row in rows:
            seal = self.model[row["seal_id"]]
            assert (
                row["asset_id"], row["court_code"], row["case_number"], row["state"], row["registered_at_us"],
                row["effective_at_us"], row["expires_at_us"], row["ended_at_us"],
            ) == (
                seal.asset, seal.court, seal.case, seal.state, seal.registered, seal.effective, seal.expires,
                seal.ended,
            ), row["seal_id"]

    @invariant()
    def the_feed_follows_the_ledger(self):
        # Read without settling, as the registry stands; what settling
        # changes enters the feed when an operation or a query settles.
        def render(conn, seal_id):
            return seal_message(*seals.view(conn, seal_id))

        for _ in range(100):
            changes, last = feed.read_changes(self.conn, SEAL_HOLDS, render, after_cursor=self.feed_cursor, limit=3)
            if last == self.feed_cursor:
                assert changes == []
                break
            assert [c.cursor for c in changes] == sorted({c.cursor for c in changes})
            assert changes[0].cursor > self.feed_cursor and changes[-1].cursor == last
            self.feed_view.update((c.hold.seal_id, c.hold) for c in changes)
            self.feed_cursor = last
        assert self.feed_view == {seal_id: render(self.conn, seal_id) for seal_id in self.order}

    @invariant()
    def one_active_seal_and_the_queue_in_registration_order(self):
        rows = self.settled_rows()
        now = self.clock.now_us()
        for asset in {r["asset_id"] for r in rows}:
            mine = [r for r in rows if r["asset_id"] == asset]
            active = [r for r in mine if r["state"] == ACTIVE]
            queued = [r for r in mine if r["state"] == QUEUED]
            assert len(active) <= 1
            if queued:
                assert active and active[0]["queue_seq"] < queued[0]["queue_seq"]
            # Seals took effect in registration order.
            effective = [r["effective_at_us"] for r in mine if r["effective_at_us"] is not None]
            assert effective == sorted(effective)
            if active:
                assert active[0]["expires_at_us"] > now
            for r in mine:
                if r["state"] == LAPSED:
                    assert r["ended_at_us"] == r["expires_at_us"]

    @invariant()
    def no_seal_longer_than_the_statute(self):
        for row in self.settled_rows():
            expires, registered = row["expires_at_us"], row["registered_at_us"]
            if row["effective_at_us"] is None:
                # Never in force: the period it asked for is within the statute.
                assert expires - registered <= add_years(registered, self.years) - registered
            else:
                # In force: at most the statutory period since it took effect
                # or was last renewed (the ledger does not store renewals).
                anchor = self.model[row["seal_id"]].anchor
                assert row["effective_at_us"] <= anchor < expires <= add_years(anchor, self.years)


class VehicleLedger(LedgerMachine):
    ledger = vehicle_store.SEAL_RULES
    schema = vehicle_store.SCHEMA
    # The third is scrapped; the fourth is not registered here.
    assets = ("皖A10001", "皖AD12345", "皖A10003", "皖A10009")
    owners = {"皖A10001": (P1.id_number,), "皖AD12345": (P2.id_number,), "皖A10003": (P1.id_number,)}
    pb = vehicle_pb2

    def seed(self, conn):
        conn.executemany(
            "INSERT INTO vehicles (plate, owner_id_number, vin, brand, model, plate_type, color, registered_on,"
            " status) VALUES (?, ?, ?, '比亚迪', '汉', '小型汽车', '白', '2020-01-01', ?)",
            [
                ("皖A10001", P1.id_number, "LGXC0000000000001", vehicle_pb2.VEHICLE_STATUS_NORMAL),
                ("皖AD12345", P2.id_number, "LGXC0000000000002", vehicle_pb2.VEHICLE_STATUS_MORTGAGED),
                ("皖A10003", P1.id_number, "LGXC0000000000003", vehicle_pb2.VEHICLE_STATUS_SCRAPPED),
            ],
        )
        conn.executemany("INSERT INTO holders VALUES (?, ?, ?)", [(p.id_number, p.type, p.name) for p in (P1, P2, P3)])

    def sealable(self):
        return [a for a in super().sealable() if a != "皖A10003"]

    def asset_refusal(self, asset):
        if asset == "皖A10003":
            return grpc.StatusCode.FAILED_PRECONDITION
        return super().asset_refusal(asset)

    def query_assets(self, id_number):
        vehicles = vehicle_store.vehicles_of(self.conn, id_number)
        for v in vehicles:
            active = any(s.state == ACTIVE for s in self.pending_on(v.plate))
            registered = self.conn.execute("SELECT status FROM vehicles WHERE plate = ?", (v.plate,)).fetchone()[0]
            assert v.status == (vehicle_pb2.VEHICLE_STATUS_SEALED if active else registered)
        return {v.plate: v.seals for v in vehicles}


CERT = "皖({})合肥市不动产权第{:07d}号"


class PropertyLedger(LedgerMachine):
    ledger = realestate_store.SEAL_RULES
    schema = realestate_store.SCHEMA
    # The second is owned jointly and holds the first number a transfer in
    # 2026 would issue; the fourth is not registered here.
    assets = (CERT.format(2019, 123), CERT.format(2026, 9_000_001), CERT.format(2021, 77), CERT.format(2018, 5))
    owners = {
        assets[0]: (P1.id_number,),
        assets[1]: (P1.id_number, P2.id_number),
        assets[2]: (P3.id_number,),
    }
    pb = realestate_pb2

    def __init__(self):
        super().__init__()
        self.transferred: dict[str, str] = {}

    def seed(self, conn):
        for i, (cert, owner_ids) in enumerate(self.owners.items()):
            conn.execute(
                "INSERT INTO properties VALUES (?, ?, '合肥市蜀山区某路1号', 89.5, 1, '2019-05-01')",
                (cert, f"3401040010010000{i}F0001000{i}"),
            )
            for position, id_number in enumerate(owner_ids):
                person = next(p for p in PEOPLE if p.id_number == id_number)
                conn.execute(
                    "INSERT INTO owners VALUES (?, ?, ?, ?, ?, ?)",
                    (cert, position, person.type, id_number, person.name, 10_000 // len(owner_ids)),
                )
        conn.execute("INSERT INTO mortgages VALUES (?, 0, '中国工商银行合肥分行', 50000000, '2019-05-01')", (self.assets[0],))
        conn.executemany("INSERT INTO holders VALUES (?, ?, ?)", [(p.id_number, p.type, p.name) for p in (P1, P2, P3)])

    def query_assets(self, id_number):
        found = realestate_store.properties_of(self.conn, id_number)
        for p in found:
            if p.certificate_number in self.transferred.values():
                assert list(p.mortgages) == [] and [o.share_bp for o in p.owners] == [10_000]
        return {p.certificate_number: p.seals for p in found}

    @rule(
        asset=st.integers(0, 7), holder=OWN, court=st.sampled_from(COURTS), case=st.sampled_from(CASES),
        who=st.integers(0, 2),
    )
    def transfer(self, asset, holder, court, case, who):
        sealed = sorted({s.asset for s in self.model.values() if s.state == ACTIVE})
        asset_id = self.pick_asset(asset, sealed)
        buyer = (BUYER, P3, common_pb2.Subject(type=P2.type, id_number=P2.id_number, name="别人"))[who]
        active = next((s for s in self.pending_on(asset_id) if s.state == ACTIVE), None)
        if holder and active is not None:
            court, case = active.court, active.case
        now = self.clock.now_us()
        request = realestate_pb2.TransferRequest(
            idempotency_key=self.key(), case=self.case_ref(court, case), certificate_number=asset_id, buyer=buyer,
            ruling_number="(2024)皖01执1号之一", price_fen=100_000_000,
        )
        code, result = self.call("Transfer", request, realestate_pb2.PropertyTransfer, lambda conn: transfers.transfer(
            conn, certificate_number=asset_id, buyer=buyer, case_number=case, court_code=court,
            ruling_number=request.ruling_number, price_fen=request.price_fen, now_us=now,
        ))

        mine = [s for s in self.pending_on(asset_id) if s.court == court and normal_case(s.case) == normal_case(case)]
        if asset_id not in self.current_owners:
            expected = grpc.StatusCode.NOT_FOUND
        elif active is None:
            expected = grpc.StatusCode.FAILED_PRECONDITION
        elif active not in mine:
            expected = grpc.StatusCode.FAILED_PRECONDITION if mine else grpc.StatusCode.PERMISSION_DENIED
        elif self.holders.get(buyer.id_number, (buyer.type, buyer.name)) != (buyer.type, buyer.name):
            expected = grpc.StatusCode.FAILED_PRECONDITION
        else:
            assert code == OK, result
            previous_owners = self.current_owners[asset_id]
            ended = self.pending_on(asset_id)
            for s in ended:
                s.state, s.ended = TRANSFERRED, now
            new = result.new_certificate_number
            assert re.fullmatch(r"皖\(\d{4}\)合肥市不动产权第9\d{6}号", new) and new not in self.asset_ids
            assert result == realestate_pb2.PropertyTransfer(
                transfer_id=result.transfer_id, certificate_number=asset_id, new_certificate_number=new,
                buyer=buyer, case_number=case, court_code=court, price_fen=request.price_fen,
                transferred_at=timestamp(now), ended_seal_ids=[s.seal_id for s in ended],
            )
            self.transferred[asset_id] = new
            del self.current_owners[asset_id]
            self.current_owners[new] = (buyer.id_number,)
            self.holders.setdefault(buyer.id_number, (buyer.type, buyer.name))
            self.asset_ids.append(new)
            # The buyer's query finds the new certificate; former owners' do not.
            for id_number in {buyer.id_number, *previous_owners}:
                self.check_query(id_number)
            return
        assert code == expected, (code, result)

    @invariant()
    def transferred_properties_hold_no_seals(self):
        for old in self.transferred:
            assert not self.pending_on(old)
            assert self.conn.execute(
                "SELECT COUNT(*) FROM seals WHERE asset_id = ? AND state IN (?, ?)", (old, *PENDING)
            ).fetchone()[0] == 0


TestVehicleLedger = VehicleLedger.TestCase
TestVehicleLedger.settings = SETTINGS
TestPropertyLedger = PropertyLedger.TestCase
TestPropertyLedger.settings = SETTINGS
