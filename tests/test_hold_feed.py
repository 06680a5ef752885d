"""The hold changes feed (ListFreezeChanges, ListSealChanges) and the case hold
listings (ListCaseFreezes, ListCaseSeals) of the mock agencies, over real gRPC
against `python -m services.bank|vehicle|realestate`: releases and the
promotions they cause, queue positions moving up, lapses at expiry with no call,
transfers, hand edits of the DB, lost events and deleted holds, paging and refusals.

Time moves by writing seconds into the agency's CLOCK_OFFSET_FILE.
"""

import itertools
import time

import aiohttp
import grpc
import pytest

from protos.bank.v1 import bank_pb2, bank_pb2_grpc
from protos.common.v1 import common_pb2
from protos.realestate.v1 import realestate_pb2, realestate_pb2_grpc
from protos.vehicle.v1 import vehicle_pb2, vehicle_pb2_grpc
from tests.support.agencies import BANK, PROPERTIES, VEHICLES, start_agencies
from tests.support.agency_db import agency_db, delete_hold, edit_hold, hold_changes, lose_event
from tests.support.control import COURT_ACCOUNT, debtors, full_debtors
from tests.support.feeds import DAY_S, AgencyClock, hold_id, hold_of, read_all, read_page

ACTIVE, QUEUED = common_pb2.HOLD_STATE_ACTIVE, common_pb2.HOLD_STATE_QUEUED
RELEASED, LAPSED = common_pb2.HOLD_STATE_RELEASED, common_pb2.HOLD_STATE_LAPSED
DEDUCTED, TRANSFERRED = common_pb2.HOLD_STATE_DEDUCTED, common_pb2.HOLD_STATE_TRANSFERRED


def case(number: str, court: str) -> common_pb2.CaseRef:
    return common_pb2.CaseRef(case_number=number, court_code=court, executor_id="E0001",
                              document_number=f"{number}协助执行通知书")


COURT_A = case("(2024)皖01执101号", "340100")
COURT_B = case("(2024)皖02执202号", "340200")
COURT_C = case("(2025)皖03执303号", "340300")
_keys = itertools.count(1)


def key() -> str:
    return f"feed-{next(_keys)}"


def states(changes) -> list[tuple[str, int]]:
    return [(hold_id(hold_of(c)), hold_of(c).state) for c in changes]


async def refused(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


@pytest.fixture
def clock(tmp_path) -> AgencyClock:
    return AgencyClock(tmp_path / "clock-offset")


@pytest.fixture
async def bank(start_service, clock):
    (agency,) = start_agencies(start_service, (BANK, "bank", {"profile": "bank", **clock.env}))
    async with grpc.aio.insecure_channel(agency.address) as channel:
        yield agency, bank_pb2_grpc.BankStub(channel)


class Freezes:
    """Court calls on one debtor's account."""

    def __init__(self, stub, clock: AgencyClock, debtor):
        self.stub, self.clock, self.debtor = stub, clock, debtor

    async def freeze(self, court, amount_fen: int, days: float = 180) -> bank_pb2.AccountFreeze:
        return await self.stub.Freeze(bank_pb2.FreezeRequest(
            idempotency_key=key(), case=court, subject=self.debtor.subject, account_number=self.debtor.account,
            amount_fen=amount_fen, expires_at=self.clock.later(days * DAY_S)), timeout=10)

    async def release(self, court, freeze: bank_pb2.AccountFreeze) -> bank_pb2.AccountFreeze:
        return await self.stub.ReleaseFreeze(bank_pb2.ReleaseFreezeRequest(
            idempotency_key=key(), case=court, freeze_id=freeze.freeze_id), timeout=10)

    async def deduct_direct(self, court, amount_fen: int) -> bank_pb2.Deduction:
        return await self.stub.Deduct(bank_pb2.DeductRequest(
            idempotency_key=key(), case=court, account_number=self.debtor.account, subject=self.debtor.subject,
            amount_fen=amount_fen, court_account=bank_pb2.CourtAccount(**COURT_ACCOUNT)), timeout=10)


async def test_a_release_and_the_promotion_it_causes_reach_the_feed_in_cursor_order(bank, clock):
    """Issue 16's sequence: court A's freeze takes the account, court B's
    ¥5,000 waits (轮候), A releases, and B's freeze holds ¥5,000 at once."""
    _, stub = bank
    debtor = debtors()[0]
    calls = Freezes(stub, clock, debtor)
    started_us = clock.now_us()
    a = await calls.freeze(COURT_A, debtor.balance_fen)
    b = await calls.freeze(COURT_B, 500_000)
    assert (a.state, a.frozen_fen, b.state, b.queue_position) == (ACTIVE, debtor.balance_fen, QUEUED, 1)
    placed, mark = await read_all(stub.ListFreezeChanges)
    assert states(placed) == [(a.freeze_id, ACTIVE), (b.freeze_id, QUEUED)]

    released = await calls.release(COURT_A, a)
    page = await read_page(stub.ListFreezeChanges, mark)
    assert states(page.changes) == [(a.freeze_id, RELEASED), (b.freeze_id, ACTIVE)]
    promoted = page.changes[1].freeze
    assert (promoted.frozen_fen, promoted.shortfall_fen, promoted.queue_position) == (500_000, 0, 0)
    assert promoted.effective_at == released.ended_at
    # The same messages the control RPCs return.
    assert page.changes[0].freeze == released
    cursors = [c.cursor for c in placed + list(page.changes)]
    assert cursors == sorted(set(cursors)) and cursors[0] > 0 and page.last_cursor == cursors[-1]
    for change in page.changes:
        assert started_us <= change.changed_at.ToMicroseconds() <= clock.now_us()

    # Nothing after the last cursor, and the cursor stays put.
    empty = await read_page(stub.ListFreezeChanges, page.last_cursor)
    assert (list(empty.changes), empty.last_cursor) == ([], page.last_cursor)
    # From 0 again: every change, each carrying its hold's current state.
    again, last = await read_all(stub.ListFreezeChanges)
    assert ([c.cursor for c in again], last) == (cursors, page.last_cursor)
    assert states(again) == [(a.freeze_id, RELEASED), (b.freeze_id, ACTIVE)] * 2


async def test_holds_queued_behind_one_that_leaves_the_queue_move_up_in_the_feed(bank, clock):
    """C's row never changes when B's queued freeze is released, but its
    queue position does: the feed reports C too."""
    _, stub = bank
    debtor = debtors()[1]
    calls = Freezes(stub, clock, debtor)
    a = await calls.freeze(COURT_A, debtor.balance_fen)
    b = await calls.freeze(COURT_B, debtor.balance_fen)
    c = await calls.freeze(COURT_C, 100_000)
    assert (b.queue_position, c.queue_position) == (1, 2)
    _, mark = await read_all(stub.ListFreezeChanges)

    await calls.release(COURT_B, b)
    page = await read_page(stub.ListFreezeChanges, mark)
    assert states(page.changes) == [(b.freeze_id, RELEASED), (c.freeze_id, QUEUED)]
    assert page.changes[1].freeze.queue_position == 1

    await calls.release(COURT_A, a)
    page = await read_page(stub.ListFreezeChanges, page.last_cursor)
    assert states(page.changes) == [(a.freeze_id, RELEASED), (c.freeze_id, ACTIVE)]
    assert page.changes[1].freeze.frozen_fen == 100_000


async def test_a_lapse_at_expiry_reaches_the_feed_with_no_call_by_any_court(bank, clock):
    _, stub = bank
    debtor = debtors()[2]
    calls = Freezes(stub, clock, debtor)
    a = await calls.freeze(COURT_A, debtor.balance_fen, days=10)
    b = await calls.freeze(COURT_B, 500_000, days=100)
    _, mark = await read_all(stub.ListFreezeChanges)

    clock.advance(11 * DAY_S)
    page = await read_page(stub.ListFreezeChanges, mark)
    assert states(page.changes) == [(a.freeze_id, LAPSED), (b.freeze_id, ACTIVE)]
    lapsed, promoted = (c.freeze for c in page.changes)
    assert (lapsed.ended_at, lapsed.frozen_fen) == (a.expires_at, 0)
    # B took effect at A's expiry, for the 100 days it asked for from then.
    assert promoted.effective_at == a.expires_at
    assert promoted.expires_at.ToMicroseconds() - a.expires_at.ToMicroseconds() == (
        b.expires_at.ToMicroseconds() - b.registered_at.ToMicroseconds())
    # Stamped by the agency's clock when it settled: never before the lapse.
    for change in page.changes:
        assert a.expires_at.ToMicroseconds() <= change.changed_at.ToMicroseconds() <= clock.now_us()
    assert list((await read_page(stub.ListFreezeChanges, page.last_cursor)).changes) == []


async def test_a_promotion_and_a_transfer_on_the_property_registry(start_service, clock):
    (agency,) = start_agencies(start_service, (PROPERTIES, "realestate", clock.env))
    debtor, buyer = full_debtors()[0], full_debtors()[1]
    certificate = debtor.certificate
    async with grpc.aio.insecure_channel(agency.address) as channel:
        stub = realestate_pb2_grpc.RealEstateRegistryStub(channel)

        async def seal(court):
            return await stub.Seal(realestate_pb2.SealRequest(
                idempotency_key=key(), case=court, subject=debtor.subject, certificate_number=certificate,
                expires_at=clock.later(700 * DAY_S)), timeout=10)

        a, b, c = [await seal(court) for court in (COURT_A, COURT_B, COURT_C)]
        assert [s.queue_position for s in (a, b, c)] == [0, 1, 2]
        _, mark = await read_all(stub.ListSealChanges)

        await stub.ReleaseSeal(realestate_pb2.ReleaseSealRequest(
            idempotency_key=key(), case=COURT_A, seal_id=a.seal_id), timeout=10)
        page = await read_page(stub.ListSealChanges, mark)
        assert states(page.changes) == [(a.seal_id, RELEASED), (b.seal_id, ACTIVE), (c.seal_id, QUEUED)]
        assert page.changes[2].seal.queue_position == 1

        done = await stub.Transfer(realestate_pb2.TransferRequest(
            idempotency_key=key(), case=COURT_B, certificate_number=certificate, buyer=buyer.subject,
            ruling_number="(2024)皖02执202号之一", price_fen=150_000_000), timeout=10)
        page = await read_page(stub.ListSealChanges, page.last_cursor)
        # A transfer ends every seal on the property.
        assert states(page.changes) == [(b.seal_id, TRANSFERRED), (c.seal_id, TRANSFERRED)]
        assert all(ch.seal.ended_at == done.transferred_at for ch in page.changes)
        listed = await stub.ListCaseSeals(common_pb2.CaseHoldsRequest(case=COURT_C), timeout=10)
        assert [(s.seal_id, s.state) for s in listed.seals] == [(c.seal_id, TRANSFERRED)]


async def test_a_hand_edit_of_the_db_reaches_the_feed_and_a_lost_event_only_the_case_listing(bank, clock):
    agency, stub = bank
    debtor = debtors()[3]
    db = agency_db(agency)
    a = await Freezes(stub, clock, debtor).freeze(COURT_A, 100_000)
    _, mark = await read_all(stub.ListFreezeChanges)

    edit_hold(db, a.freeze_id, frozen_fen=40_000)
    page = await read_page(stub.ListFreezeChanges, mark)
    assert [(c.freeze.freeze_id, c.freeze.frozen_fen) for c in page.changes] == [(a.freeze_id, 40_000)]
    # No agency clock behind a hand edit: the database's wall clock.
    assert abs(page.changes[0].changed_at.ToMicroseconds() - time.time_ns() // 1000) < 60_000_000
    # A column no message reports is not a change.
    edit_hold(db, a.freeze_id, period_us=30 * DAY_S * 1_000_000)
    assert list((await read_page(stub.ListFreezeChanges, page.last_cursor)).changes) == []

    assert lose_event(db, a.freeze_id, frozen_fen=30_000) == 1
    assert hold_changes(db)[-1]["cursor"] == page.last_cursor
    assert list((await read_page(stub.ListFreezeChanges, page.last_cursor)).changes) == []
    listed = await stub.ListCaseFreezes(common_pb2.CaseHoldsRequest(request_id="rec", case=COURT_A), timeout=10)
    assert [(f.freeze_id, f.frozen_fen) for f in listed.freezes] == [(a.freeze_id, 30_000)]
    # The lost cursor is never issued again.
    edit_hold(db, a.freeze_id, frozen_fen=20_000)
    page = await read_page(stub.ListFreezeChanges, page.last_cursor)
    assert [c.cursor for c in page.changes] == [hold_changes(db)[-1]["cursor"]]
    assert page.changes[0].cursor == page.last_cursor > hold_changes(db)[-2]["cursor"] + 1


async def test_a_hold_deleted_by_hand_leaves_the_feed_and_those_behind_it_move_up(bank, clock):
    agency, stub = bank
    debtor = debtors()[6]
    calls = Freezes(stub, clock, debtor)
    a = await calls.freeze(COURT_A, debtor.balance_fen)
    b = await calls.freeze(COURT_B, 100_000)
    c = await calls.freeze(COURT_C, 100_000)
    _, mark = await read_all(stub.ListFreezeChanges)

    delete_hold(agency_db(agency), b.freeze_id)
    page = await read_page(stub.ListFreezeChanges, mark)
    assert [(ch.freeze.freeze_id, ch.freeze.queue_position) for ch in page.changes] == [(c.freeze_id, 1)]
    everything, _ = await read_all(stub.ListFreezeChanges)
    assert [ch.freeze.freeze_id for ch in everything] == [a.freeze_id, c.freeze_id, c.freeze_id]
    listed = await stub.ListCaseFreezes(common_pb2.CaseHoldsRequest(case=COURT_B), timeout=10)
    assert list(listed.freezes) == []


async def test_case_listings_show_the_court_s_holds_of_the_case_ended_ones_too(start_service, clock):
    bank_agency, vehicles = start_agencies(
        start_service, (BANK, "bank", {"profile": "bank", **clock.env}), (VEHICLES, "vehicle", clock.env)
    )
    first, second = debtors()[4], debtors()[5]
    # The same case number at another court is another case.
    other_court = case(COURT_A.case_number, "340200")
    other_case = case("(2024)皖01执102号", COURT_A.court_code)
    full_width = case(COURT_A.case_number.replace("(", "（").replace(")", "）"), COURT_A.court_code)
    async with grpc.aio.insecure_channel(bank_agency.address) as channel:
        stub = bank_pb2_grpc.BankStub(channel)
        on_first, on_second = Freezes(stub, clock, first), Freezes(stub, clock, second)
        released = await on_first.release(COURT_A, await on_first.freeze(COURT_A, 100_000))
        theirs = await on_first.freeze(other_court, 100_000)
        active = await on_second.freeze(COURT_A, 200_000)
        elsewhere = await on_second.freeze(other_case, 50_000)
        deduction = await on_first.deduct_direct(COURT_A, 10_000)

        expected = [(released.freeze_id, RELEASED), (active.freeze_id, ACTIVE), (deduction.freeze_id, DEDUCTED)]
        for ref in (COURT_A, full_width):
            listed = await stub.ListCaseFreezes(common_pb2.CaseHoldsRequest(case=ref), timeout=10)
            assert [(f.freeze_id, f.state) for f in listed.freezes] == expected
        assert listed.freezes[1] == active
        for ref, hold in ((other_court, theirs), (other_case, elsewhere)):
            listed = await stub.ListCaseFreezes(common_pb2.CaseHoldsRequest(case=ref), timeout=10)
            assert [f.freeze_id for f in listed.freezes] == [hold.freeze_id]

        no_court = common_pb2.CaseRef()
        no_court.CopyFrom(COURT_A)
        no_court.court_code = ""
        bad = await refused(stub.ListCaseFreezes(common_pb2.CaseHoldsRequest(case=no_court), timeout=10))
        assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT and bad.details().startswith("case.court_code")
        bad = await refused(stub.ListCaseFreezes(
            common_pb2.CaseHoldsRequest(request_id="a b", case=COURT_A), timeout=10))
        assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT and bad.details().startswith("request_id")

    plate_owner = next(d for d in full_debtors() if d.plate)
    async with grpc.aio.insecure_channel(vehicles.address) as channel:
        stub = vehicle_pb2_grpc.VehicleRegistryStub(channel)
        placed = [
            await stub.Seal(vehicle_pb2.SealRequest(
                idempotency_key=key(), case=court, subject=plate_owner.subject, plate=plate_owner.plate,
                expires_at=clock.later(300 * DAY_S)), timeout=10)
            for court in (full_width, COURT_B)
        ]
        mine = await stub.ListCaseSeals(common_pb2.CaseHoldsRequest(case=COURT_A), timeout=10)
        assert list(mine.seals) == [placed[0]]
        theirs = await stub.ListCaseSeals(common_pb2.CaseHoldsRequest(case=COURT_B), timeout=10)
        assert [(s.seal_id, s.state, s.queue_position) for s in theirs.seals] == [(placed[1].seal_id, QUEUED, 1)]


async def test_pages_keep_to_the_limit_and_bad_reads_are_refused(start_service, clock):
    (agency,) = start_agencies(start_service, (VEHICLES, "vehicle", clock.env))
    owners = [d for d in full_debtors() if d.plate][:5]
    async with grpc.aio.insecure_channel(agency.address) as channel:
        stub = vehicle_pb2_grpc.VehicleRegistryStub(channel)
        for owner in owners:
            await stub.Seal(vehicle_pb2.SealRequest(
                idempotency_key=key(), case=COURT_A, subject=owner.subject, plate=owner.plate,
                expires_at=clock.later(300 * DAY_S)), timeout=10)

        everything, last = await read_all(stub.ListSealChanges)
        assert len(everything) == 5 and [c.seal.asset_id for c in everything] == [o.plate for o in owners]
        sizes, cursor = [], 0
        for _ in range(10):
            page = await read_page(stub.ListSealChanges, cursor, limit=2)
            if not page.changes:
                break
            sizes.append(len(page.changes))
            cursor = page.last_cursor
        assert (sizes, cursor) == ([2, 2, 1], last)
        assert list((await read_page(stub.ListSealChanges, limit=1000)).changes) == everything

        too_many = await refused(read_page(stub.ListSealChanges, limit=1001))
        assert too_many.code() == grpc.StatusCode.INVALID_ARGUMENT and too_many.details().startswith("limit")
        bad_id = await refused(read_page(stub.ListSealChanges, request_id="新"))
        assert bad_id.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_id.details().startswith("request_id")
        # A cursor this feed never issued: its records were rebuilt; the
        # reader must start again and reconcile rather than wait.
        for ahead in (last + 1, 2**64 - 1):
            lost = await refused(read_page(stub.ListSealChanges, ahead))
            assert lost.code() == grpc.StatusCode.FAILED_PRECONDITION and "reconcile" in lost.details()

    # Registered like every other method: counted by final code.
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://{agency.process.endpoints['metrics']}/metrics") as response:
            text = await response.text()
    handled = [line for line in text.splitlines()
               if line.startswith("grpc_server_handled_total") and 'grpc_method="ListSealChanges"' in line]
    for code in ("OK", "INVALID_ARGUMENT", "FAILED_PRECONDITION"):
        assert any(f'grpc_code="{code}"' in line for line in handled), (code, handled)
