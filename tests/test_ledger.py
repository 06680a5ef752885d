"""The gateway ledger on SQLite and PostgreSQL: migrations, cases, intents
under the case lock, leases, and outcomes recorded exactly once."""

import asyncio
import dataclasses
import re
from pathlib import Path

import pytest

from services.gateway.ledger import (
    PENDING,
    SUCCEEDED,
    CaseConflict,
    CaseRecord,
    DebtorRecord,
    Draft,
    HoldChange,
    HoldRecord,
    Ledger,
    Planned,
    Snapshot,
)
from services.gateway.ledger import store
from services.gateway.ledger.migrations import MIGRATIONS

NOW = 1_800_000_000_000_000
FREEZE = 1


async def open_ledger(url: str) -> Ledger:
    return await Ledger.open(url, Path("unused.db"), NOW)


@pytest.fixture
async def ledger(ledger_url):
    opened = await open_ledger(ledger_url)
    try:
        yield opened
    finally:
        await opened.close()


def case_record(number: int = 1, owed: int = 100, costs: int = 0, digest: str = "d1") -> CaseRecord:
    return CaseRecord(
        case_number=f"(2024)皖01执{number}号", court_code="340100", executor_id="E1", document_number="doc",
        amount_owed_fen=owed, costs_fen=costs, content_digest=digest, registered_at_us=NOW,
    )


DEBTORS = [DebtorRecord(0, 1, "340104198811230027", "张三")]


def draft(key: str, case: CaseRecord, action_id: str | None = None, hold_id: str = "") -> Draft:
    return Draft(
        action_id=action_id or f"fz-{key}", idempotency_key=key, request_digest=f"digest-{key}", kind=FREEZE,
        case_number=case.case_number, court_code=case.court_code, executor_id="E1", document_number="doc",
        hold_id=hold_id,
    )


def freeze_plan(amount: int, key: str):
    """A plan with the excess-seizure rule: refuses what the case may not freeze."""

    def plan(snap: Snapshot) -> Planned:
        if snap.case is None:
            raise LookupError("case not registered")
        room = snap.case.amount_owed_fen + snap.case.costs_fen - snap.totals.deducted_fen - snap.totals.frozen_fen
        if amount > room:
            raise OverflowError(f"may freeze at most {room}")
        return Planned(
            agency_id="icbc", amount_fen=amount, claim_fen=amount, asset_id="6222", subject_type=1,
            subject_id="340104198811230027", subject_name="张三", agency_method="bank.Freeze",
            agency_request="{}", agency_key=f"gw.fz-{key}",
        )

    return plan


async def intent(ledger: Ledger, case: CaseRecord, key: str, amount: int, *, lease_until: int = NOW + 10):
    return await ledger.record_intent(
        draft(key, case), freeze_plan(amount, key), now_us=NOW, lease_owner="gw-a", lease_until_us=lease_until
    )


async def test_migrations_apply_once_even_when_gateways_start_together(ledger_url):
    opened = await asyncio.gather(*(open_ledger(ledger_url) for _ in range(3)))
    try:
        async with opened[0].db.transaction(write=False) as tx:
            rows = await tx.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [(r["version"], r["name"]) for r in rows] == [(v, n) for v, n, _ in MIGRATIONS]
    finally:
        for ledger in opened:
            await ledger.close()
    again = await open_ledger(ledger_url)
    await again.close()


async def test_a_case_registers_once_and_refuses_other_content(ledger):
    case = case_record()
    assert await ledger.register_case(case, DEBTORS) == (case, True)
    later = dataclasses.replace(case, registered_at_us=NOW + 5, executor_id="E2")
    assert await ledger.register_case(later, DEBTORS) == (case, False)
    with pytest.raises(CaseConflict):
        await ledger.register_case(dataclasses.replace(case, content_digest="other"), DEBTORS)
    view = await ledger.case_view(case.case_number, NOW)
    assert view.case == case and view.debtors == tuple(DEBTORS) and view.actions == ()


async def test_intent_is_recorded_once_per_key_and_refusals_write_nothing(ledger):
    case = case_record(owed=100)
    await ledger.register_case(case, DEBTORS)
    first, created = await intent(ledger, case, "k1", 60)
    assert created and first.state == PENDING and first.claim_fen == 60 and first.lease_owner == "gw-a"
    again, created = await intent(ledger, case, "k1", 60)
    assert not created and again == first
    with pytest.raises(OverflowError, match="at most 40"):
        await intent(ledger, case, "k2", 41)
    assert await ledger.action_by_key("k2") is None
    with pytest.raises(LookupError):
        await intent(ledger, case_record(number=2), "k3", 1)
    view = await ledger.case_view(case.case_number, NOW)
    assert [a.action_id for a in view.actions] == [first.action_id]
    assert view.totals.pending_fen == 60 and view.totals.frozen_fen == 60


async def test_concurrent_freezes_on_one_case_never_exceed_what_it_may_hold(ledger):
    # Ten gateways' worth of requests at once, 30 fen each against 100 owed:
    # the case lock lets exactly three through, whatever the interleaving.
    case = case_record(owed=100)
    await ledger.register_case(case, DEBTORS)
    results = await asyncio.gather(
        *(intent(ledger, case, f"c{i}", 30) for i in range(10)), return_exceptions=True
    )
    recorded = [r for r in results if isinstance(r, tuple)]
    assert len(recorded) == 3
    assert all(isinstance(r, OverflowError) for r in results if not isinstance(r, tuple))
    view = await ledger.case_view(case.case_number, NOW)
    assert view.totals.frozen_fen == 90


async def test_the_same_key_raced_from_two_cases_records_one_action(ledger):
    one, two = case_record(1), case_record(2)
    await ledger.register_case(one, DEBTORS)
    await ledger.register_case(two, DEBTORS)
    results = await asyncio.gather(intent(ledger, one, "shared", 10), intent(ledger, two, "shared", 10))
    assert sorted(created for _, created in results) == [False, True]
    assert results[0][0] == results[1][0]


async def test_a_lease_keeps_other_drivers_off_until_it_runs_out(ledger):
    case = case_record()
    await ledger.register_case(case, DEBTORS)
    action, _ = await intent(ledger, case, "lease", 10, lease_until=NOW + 1000)
    assert await ledger.claim(action.action_id, owner="gw-b", now_us=NOW, lease_until_us=NOW + 5,
                              unowned_ok=True) is None
    assert await ledger.due_actions(NOW, 10) == []
    assert [a.action_id for a in await ledger.due_actions(NOW + 1000, 10)] == [action.action_id]
    claimed = await ledger.claim(action.action_id, owner="gw-b", now_us=NOW + 1000, lease_until_us=NOW + 2000,
                                 unowned_ok=False)
    assert claimed.lease_owner == "gw-b"
    # A failed drive hands it back: no one drives it while it waits to be retried...
    await ledger.record_failure(claimed, owner="gw-b", error_code="UNAVAILABLE", error_message="down",
                                attempts=3, retry_at_us=NOW + 5000, now_us=NOW + 1500)
    waiting = await ledger.action(action.action_id)
    assert (waiting.state, waiting.attempts, waiting.lease_owner, waiting.error_code) == (
        PENDING, 3, "", "UNAVAILABLE")
    # ...the re-driver waits for the retry time, a caller asking again need not.
    assert await ledger.claim(action.action_id, owner="gw-c", now_us=NOW + 1600, lease_until_us=NOW + 9000,
                              unowned_ok=False) is None
    assert await ledger.claim(action.action_id, owner="gw-c", now_us=NOW + 1600, lease_until_us=NOW + 9000,
                              unowned_ok=True) is not None
    assert await ledger.pending_count() == 1
    assert await ledger.release_leases("gw-c") == 1
    assert [a.action_id for a in await ledger.due_actions(NOW + 1600, 10)] == [action.action_id]


async def test_an_outcome_and_its_hold_are_recorded_exactly_once(ledger):
    case = case_record(owed=100)
    await ledger.register_case(case, DEBTORS)
    action, _ = await intent(ledger, case, "once", 70)
    hold = HoldRecord(
        hold_id=action.action_id, case_number=case.case_number, hold_kind="freeze", agency_id="icbc",
        agency_kind="bank", agency_hold_id="fz-bank-1", asset_id="6222", subject_type=1,
        subject_id="340104198811230027", subject_name="张三", state=1, requested_fen=70, frozen_fen=50,
        deducted_fen=0, shortfall_fen=20, expires_at_us=NOW + 10**9, detail="{}", created_at_us=NOW,
        updated_at_us=NOW,
    )

    async def finish():
        return await ledger.record_outcome(
            action, state=SUCCEEDED, result="{}", error_code="", error_message="", attempts=1, now_us=NOW + 1,
            change=HoldChange(insert=hold),
        )

    outcomes = await asyncio.gather(finish(), finish(), finish())
    assert sum(o is not None for o in outcomes) == 1
    view = await ledger.case_view(case.case_number, NOW + 2)
    assert view.holds == (hold,)
    assert view.actions[0].state == SUCCEEDED and view.actions[0].attempts == 1
    # Frozen now counts what the bank froze (50), no longer what was asked (70).
    assert (view.totals.active_frozen_fen, view.totals.pending_fen, view.totals.frozen_fen) == (50, 0, 50)
    # Past its expiry, an active freeze holds nothing.
    later = await ledger.case_view(case.case_number, NOW + 10**9)
    assert later.totals.frozen_fen == 0


def test_the_ledgers_enum_numbers_are_the_protos():
    # The ledger keeps these numbers itself so it needs no generated code.
    from protos.common.v1.common_pb2 import HoldState
    from protos.gateway.v1.control_pb2 import ActionKind, ActionState

    assert (store.PENDING, store.SUCCEEDED, store.REFUSED) == (
        ActionState.ACTION_STATE_PENDING, ActionState.ACTION_STATE_SUCCEEDED, ActionState.ACTION_STATE_REFUSED,
    )
    assert (store.HOLD_ACTIVE, store.HOLD_QUEUED, store.HOLD_TRANSFERRED) == (
        HoldState.HOLD_STATE_ACTIVE, HoldState.HOLD_STATE_QUEUED, HoldState.HOLD_STATE_TRANSFERRED,
    )
    assert store.KIND_DEDUCT == ActionKind.ACTION_KIND_DEDUCT
    assert FREEZE == ActionKind.ACTION_KIND_FREEZE

    # SQL compares enum columns with bound constants, except migration 1's
    # partial index of pending actions (a shipped migration is never edited).
    literal = re.compile(r"\b(state|kind|subject_type)\s*(?:=|<>|!=|<=?|>=?|IN\b)\s*\(?\s*(\d+)", re.IGNORECASE)
    assert not literal.findall(Path(store.__file__).read_text())
    in_migrations = [
        (index.group(1) if (index := re.search(r"CREATE INDEX (\w+)", statement)) else statement, column, int(number))
        for _, _, statements in MIGRATIONS
        for statement in statements
        for column, number in literal.findall(statement)
    ]
    assert in_migrations == [("actions_pending", "state", ActionState.ACTION_STATE_PENDING)]


def test_the_lapsed_state_number_is_the_protos():
    from protos.common.v1.common_pb2 import HoldState

    assert store.HOLD_LAPSED == HoldState.HOLD_STATE_LAPSED


async def placed_hold(ledger: Ledger, case: CaseRecord, key: str, *, expires_at_us: int) -> HoldRecord:
    action, _ = await intent(ledger, case, key, 10)
    hold = HoldRecord(
        hold_id=action.action_id, case_number=case.case_number, hold_kind="freeze", agency_id="icbc",
        agency_kind="bank", agency_hold_id=f"bank-{key}", asset_id="6222", subject_type=1,
        subject_id="340104198811230027", subject_name="张三", state=store.HOLD_ACTIVE, requested_fen=10,
        frozen_fen=10, deducted_fen=0, shortfall_fen=0, expires_at_us=expires_at_us, detail="{}",
        created_at_us=NOW, updated_at_us=NOW,
    )
    await ledger.record_outcome(action, state=SUCCEEDED, result="{}", error_code="", error_message="", attempts=1,
                                now_us=NOW + 1, change=HoldChange(insert=hold))
    return hold


def reported(hold: HoldRecord, **changes) -> store.AgencyHold:
    fields = {"state": hold.state, "requested_fen": hold.requested_fen, "frozen_fen": hold.frozen_fen,
              "deducted_fen": hold.deducted_fen, "shortfall_fen": hold.shortfall_fen,
              "expires_at_us": hold.expires_at_us, "detail": "{}", **changes}
    return store.AgencyHold(hold.agency_hold_id, store.HoldUpdate(hold_id="", **fields))


async def test_an_older_deduction_reply_recorded_last_does_not_undo_a_newer_one(ledger):
    case = case_record(number=3, owed=100)
    await ledger.register_case(case, DEBTORS)
    hold = await placed_hold(ledger, case, "race", expires_at_us=NOW + 10**9)
    first, _ = await intent(ledger, case, "race-deduct-1", 4)
    second, _ = await intent(ledger, case, "race-deduct-2", 4)

    async def record(action, frozen, deducted):
        update = dataclasses.replace(reported(hold, frozen_fen=frozen, deducted_fen=deducted).update,
                                     hold_id=hold.hold_id)
        await ledger.record_outcome(action, state=SUCCEEDED, result="{}", error_code="", error_message="",
                                    attempts=1, now_us=NOW + 5, change=HoldChange(update=update))

    # The agency took 4 then 4 more; the gateway heard the second reply first.
    await record(second, frozen=2, deducted=8)
    await record(first, frozen=6, deducted=4)
    (held,) = (await ledger.case_view(case.case_number, NOW + 6)).holds
    assert (held.frozen_fen, held.deducted_fen) == (2, 8)


async def test_the_gateway_lapses_at_expiry_and_the_agency_confirms_or_wins(ledger):
    case = case_record(number=2, owed=100)
    await ledger.register_case(case, DEBTORS)
    confirmed = await placed_hold(ledger, case, "lapse-a", expires_at_us=NOW + 100)
    renewed = await placed_hold(ledger, case, "lapse-b", expires_at_us=NOW + 100)
    assert (await ledger.case_view(case.case_number, NOW + 2)).totals.frozen_fen == 20
    # The agency is silent; the gateway's clock passes the expiry.
    lapsed = await ledger.lapse_expired(NOW + 100)
    assert {h.hold_id for h in lapsed} == {confirmed.hold_id, renewed.hold_id}
    assert all(h.state == store.HOLD_LAPSED and h.lapsed_by_gateway == 1 and h.frozen_fen == 0 for h in lapsed)
    assert await ledger.lapse_expired(NOW + 200) == []
    assert (await ledger.case_view(case.case_number, NOW + 101)).totals.frozen_fen == 0
    # The agency reports one lapsed (confirmed) and the other renewed (the agency wins).
    synced = await ledger.apply_agency_holds("icbc", [
        reported(confirmed, state=store.HOLD_LAPSED, frozen_fen=0),
        reported(renewed, expires_at_us=NOW + 10**9),
    ], now_us=NOW + 150)
    after = {s.after.hold_id: s.after for s in synced}
    assert after[confirmed.hold_id].state == store.HOLD_LAPSED and after[confirmed.hold_id].lapsed_by_gateway == 0
    assert after[renewed.hold_id].state == store.HOLD_ACTIVE and after[renewed.hold_id].frozen_fen == 10
    assert (await ledger.case_view(case.case_number, NOW + 151)).totals.frozen_fen == 10
    # Reported again: nothing changes.
    assert await ledger.apply_agency_holds("icbc", [reported(after[renewed.hold_id])], now_us=NOW + 160) == []


async def test_a_feed_has_one_reader_and_its_cursor_moves_with_the_changes(ledger):
    case = case_record(number=3, owed=100)
    await ledger.register_case(case, DEBTORS)
    hold = await placed_hold(ledger, case, "feed", expires_at_us=NOW + 10**9)
    assert await ledger.claim_feed("icbc", owner="g1", now_us=NOW, lease_until_us=NOW + 50) == 0
    assert await ledger.claim_feed("icbc", owner="g2", now_us=NOW + 10, lease_until_us=NOW + 60) is None
    changes = [reported(hold, frozen_fen=4), store.AgencyHold("not-ours", reported(hold).update)]
    # Only the lease holder moves the cursor, and the page applies with it.
    assert await ledger.apply_agency_holds("icbc", changes, now_us=NOW + 11, owner="g2", cursor=7) is None
    synced = await ledger.apply_agency_holds("icbc", changes, now_us=NOW + 11, owner="g1", cursor=7)
    assert [(s.before.frozen_fen, s.after.frozen_fen) for s in synced] == [(10, 4)]
    # The lease runs out: the other gateway goes on from the stored cursor.
    assert await ledger.claim_feed("icbc", owner="g2", now_us=NOW + 51, lease_until_us=NOW + 100) == 7
    assert await ledger.release_feed_leases("g2") == 1
    assert await ledger.claim_feed("icbc", owner="g1", now_us=NOW + 52, lease_until_us=NOW + 100) == 7
