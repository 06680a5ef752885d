"""Holds follow the agency: other courts' releases, lapses and lost changes reach the gateway's ledger.

Real agencies (the module's `agencies`), in-process gateways on both ledger
backends, two courts each with its own case on the same debtor.
"""

import asyncio
import contextlib
import time

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protos.bank.v1 import bank_pb2, bank_pb2_grpc
from protos.common.v1 import common_pb2
from services.gateway.control.metrics import HOLD_EVENTS, HOLD_REPAIRS
from services.gateway.server import Gateway
from tests.support.agencies import BANK
from tests.support.agency_db import agency_db, lose_event
from tests.support.auth import auth_headers, issue_token
from tests.support.control import (
    Debtor,
    Http,
    account_at_bank,
    bank_freezes,
    control_stack,
    gateway_settings,
    new_case_number,
    subject_json,
)

SYNC = {"hold_sync_seconds": 0.1, "lease_seconds": 2.0}
OWED = 100_000_000_00  # large: the tests are about holds, not the seizure cap


def court_case(case_number: str, court: str, executor: str) -> dict:
    return {"case_number": case_number, "court_code": court, "executor_id": executor,
            "document_number": f"{case_number}协助执行通知书"}


class Court:
    """One court's executor (and admin) with a case of its own on the debtor."""

    def __init__(self, http: Http, court: str, executor: str):
        self.http, self.court, self.executor = http, court, executor
        self.case_number = new_case_number().replace("皖01", f"皖{court[2:4]}")

    async def register(self, debtor: Debtor) -> None:
        reply = await self.http.post("/v1/cases", {
            "case": court_case(self.case_number, self.court, self.executor),
            "debtors": [subject_json(debtor.subject, name=True)],
            "amount_owed_fen": str(OWED), "costs_fen": "0",
        })
        assert reply.status == 201, reply.body

    async def freeze(self, debtor: Debtor, amount: int) -> dict:
        reply = await self.http.post("/v1/freezes", {
            "case": court_case(self.case_number, self.court, self.executor), "agency_id": BANK,
            "subject": subject_json(debtor.subject), "account_number": debtor.account, "amount_fen": str(amount),
        })
        assert reply.status == 200, reply.body
        return reply.body

    async def release(self, hold_id: str, amount: int = 0) -> dict:
        body = {"case": court_case(self.case_number, self.court, self.executor)}
        if amount:
            body["amount_fen"] = str(amount)
        reply = await self.http.post(f"/v1/freezes/{hold_id}/release", body)
        assert reply.status == 200, reply.body
        return reply.body

    async def holds(self) -> dict[str, dict]:
        return {hold["hold_id"]: hold for hold in (await self.http.case(self.case_number))["holds"]}


@contextlib.asynccontextmanager
async def other_court(stack, court: str = "340200", executor: str = "E0900"):
    token = issue_token(executor, court)
    async with stack.endpoints.session(headers=auth_headers(token)) as session:
        yield Court(Http(session), court, executor)


def events() -> dict[str, float]:
    return {sample.labels["event"]: sample.value for sample in HOLD_EVENTS.collect()[0].samples
            if sample.name.endswith("_total")}


async def until(predicate, what: str, timeout: float = 15.0):
    """Poll `predicate()` (async) until it returns something true; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        found = await predicate()
        if found:
            return found
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.05)


@pytest.fixture
async def stack(agencies, tmp_path, ledger_url):
    async with control_stack(tmp_path, agencies, ledger_url, **SYNC) as stack:
        yield stack


async def queued_behind_another_court(stack, debtor: Debtor):
    """Court A freezes everything available; court B's freeze waits behind it (轮候)."""
    available = (await account_at_bank(stack.agencies[BANK], debtor)).available_balance_fen
    a = Court(stack.http, "340100", "E0001")
    await a.register(debtor)
    first = await a.freeze(debtor, available)
    assert first["freeze"]["state"] == "HOLD_STATE_ACTIVE"
    return a, first, available


async def test_another_courts_release_promotes_the_queued_freeze_in_the_ledger(stack):
    debtor = stack.debtor(0)
    a, first, _ = await queued_behind_another_court(stack, debtor)
    async with other_court(stack) as b:
        await b.register(debtor)
        second = await b.freeze(debtor, 500_000)
        assert second["freeze"]["state"] == "HOLD_STATE_QUEUED"
        assert (await b.http.case(b.case_number))["freezable_fen"] == str(OWED - 500_000)
        before = events()
        released_at = time.monotonic()
        await a.release(first["hold_id"])

        async def promoted():
            hold = (await b.holds())[second["hold_id"]]["freeze"]
            return hold if hold["state"] == "HOLD_STATE_ACTIVE" else None

        # Court B has done nothing since its freeze was queued.
        hold = await until(promoted, "court B's queued freeze reads ACTIVE")
        print(f"promotion reached court B's case view {time.monotonic() - released_at:.3f} s after the release")
        assert hold["frozen_fen"] == "500000"
        assert events()["promoted"] - before["promoted"] == 1
        # The ledger agrees with the bank.
        at_bank = {row["freeze_id"]: row for row in bank_freezes(stack.agencies[BANK], b.case_number)}
        assert at_bank[hold["freeze_id"]]["state"] == common_pb2.HOLD_STATE_ACTIVE
        assert at_bank[hold["freeze_id"]]["frozen_fen"] == 500_000


async def test_a_lapse_at_expiry_frees_the_cap_without_any_call(stack):
    debtor = stack.debtor(1)
    a = Court(stack.http, "340100", "E0001")
    await a.register(debtor)
    expires = time.time() + 1.5
    reply = await a.http.post("/v1/freezes", {
        "case": court_case(a.case_number, a.court, a.executor), "agency_id": BANK,
        "subject": subject_json(debtor.subject), "account_number": debtor.account, "amount_fen": "300000",
        "expires_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(expires)) + f".{int(expires % 1 * 1000):03d}Z",
    })
    assert reply.status == 200, reply.body
    hold_id = reply.body["hold_id"]
    assert (await a.http.case(a.case_number))["freezable_fen"] == str(OWED - 300_000)

    async def lapsed():
        case = await a.http.case(a.case_number)
        hold = next(h for h in case["holds"] if h["hold_id"] == hold_id)["freeze"]
        return case if hold["state"] == "HOLD_STATE_LAPSED" else None

    case = await until(lapsed, "the freeze reads LAPSED")
    assert case["freezable_fen"] == str(OWED), case
    # The bank lapsed it too, and the ledger's state is the bank's.
    async def confirmed():
        rows = bank_freezes(stack.agencies[BANK], a.case_number)
        return rows if rows[0]["state"] == common_pb2.HOLD_STATE_LAPSED else None

    await until(confirmed, "the bank reports the lapse")
    core = stack.gateway.core
    await until(lambda: _settled(core), "the feed settles")
    holds = {h.hold_id: h for h, _case in await core.ledger.live_holds(BANK)}
    assert hold_id not in holds  # neither live nor waiting for the agency to confirm


async def _settled(core) -> bool:
    return await core.holds.sync_once() == 0


async def test_a_restarted_gateway_catches_up_from_its_cursor_and_repeats_nothing(agencies, tmp_path, ledger_url):
    async with control_stack(tmp_path, agencies, ledger_url, **SYNC) as stack:
        debtor = stack.debtor(2)
        a, first, _ = await queued_behind_another_court(stack, debtor)
        async with other_court(stack) as b:
            await b.register(debtor)
            second = await b.freeze(debtor, 400_000)
        assert second["freeze"]["state"] == "HOLD_STATE_QUEUED"
        await until(lambda: _settled(stack.gateway.core), "the feed settles")
        agency_freeze_id = first["freeze"]["freeze_id"]
    # The gateway is down: court A's freeze is released at the bank (by
    # another channel, as a counter clerk would).
    async with grpc.aio.insecure_channel(stack.agencies[BANK].address) as channel:
        released = await bank_pb2_grpc.BankStub(channel).ReleaseFreeze(bank_pb2.ReleaseFreezeRequest(
            idempotency_key=f"counter-{agency_freeze_id}",
            case=common_pb2.CaseRef(case_number=a.case_number, court_code="340100", executor_id="E0001",
                                    document_number="解除冻结通知书"),
            freeze_id=agency_freeze_id,
        ), timeout=5)
    assert released.state == common_pb2.HOLD_STATE_RELEASED
    before = events()
    async with control_stack(tmp_path, agencies, ledger_url, **SYNC) as again:
        async with other_court(again) as b_again:
            b_again.case_number = b.case_number

            async def promoted():
                return (await b_again.holds())[second["hold_id"]]["freeze"]["state"] == "HOLD_STATE_ACTIVE"

            await until(promoted, "court B's freeze reads ACTIVE after the restart")
        await until(lambda: _settled(again.gateway.core), "the feed settles")
        a_view = {h["hold_id"]: h for h in (await again.http.case(a.case_number))["holds"]}
        assert a_view[first["hold_id"]]["freeze"]["state"] == "HOLD_STATE_RELEASED"
    after = events()
    assert after["promoted"] - before["promoted"] == 1
    assert after["released"] - before["released"] == 1


async def test_two_gateways_on_one_ledger_apply_each_change_once(agencies, tmp_path, pg_ledger_url):
    ledger_url = pg_ledger_url
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
    async with control_stack(tmp_path / "one", agencies, ledger_url, **SYNC) as one:
        two = await Gateway(gateway_settings(tmp_path / "two", agencies, ledger_url, **SYNC)).start()
        try:
            debtor = one.debtor(3)
            a, first, _ = await queued_behind_another_court(one, debtor)
            async with other_court(one) as b:
                await b.register(debtor)
                second = await b.freeze(debtor, 300_000)
                assert second["freeze"]["state"] == "HOLD_STATE_QUEUED"
                await until(lambda: _settled(one.gateway.core), "the feed settles")
                before = events()
                await a.release(first["hold_id"])

                async def promoted():
                    return (await b.holds())[second["hold_id"]]["freeze"]["state"] == "HOLD_STATE_ACTIVE"

                await until(promoted, "court B's freeze reads ACTIVE")
                await asyncio.sleep(0.5)  # both gateways have had several rounds by now
            after = events()
            assert after["promoted"] - before["promoted"] == 1
        finally:
            await two.stop()


async def test_reconciliation_repairs_a_lost_change_and_counts_it(stack):
    debtor = stack.debtor(4)
    a = Court(stack.http, "340100", "E0001")
    await a.register(debtor)
    placed = await a.freeze(debtor, 200_000)
    core = stack.gateway.core
    await until(lambda: _settled(core), "the feed settles")
    # The bank released part of it, and the feed lost the change.
    lose_event(agency_db(stack.agencies[BANK]), placed["freeze"]["freeze_id"], frozen_fen=150_000)
    await until(lambda: _settled(core), "the feed settles")
    assert (await a.holds())[placed["hold_id"]]["freeze"]["frozen_fen"] == "200000"
    repairs_before = HOLD_REPAIRS.labels(BANK)._value.get()
    assert await core.holds.reconcile_once() == 1
    assert HOLD_REPAIRS.labels(BANK)._value.get() - repairs_before == 1
    assert (await a.holds())[placed["hold_id"]]["freeze"]["frozen_fen"] == "150000"
    assert await core.holds.reconcile_once() == 0


# After any sequence of actions by several courts on shared accounts, the
# ledger's holds equal the bank's once the feed has settled.

COURTS = (("340100", "E0001"), ("340200", "E0900"), ("340300", "E0700"))
step = st.one_of(
    # Freezes of a third, two thirds or all of the balance: the accounts run out and freezes queue (轮候).
    st.tuples(st.just("freeze"), st.integers(0, 2), st.integers(0, 1), st.sampled_from((1, 2, 3))),
    st.tuples(st.just("release"), st.integers(0, 2), st.integers(0, 5), st.just(0)),
    st.tuples(st.just("release_part"), st.integers(0, 2), st.integers(0, 5), st.integers(1, 5).map(lambda n: n * 10_000)),
)


@pytest.fixture
async def model_stack(agencies, tmp_path, ledger_url):
    """One stack for every example of the property test (each example has cases of its own)."""
    async with control_stack(tmp_path, agencies, ledger_url, **SYNC) as stack:
        yield stack


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=6))
async def test_the_ledgers_holds_equal_the_banks_after_any_sequence(model_stack, steps):
    stack = model_stack
    shared = [stack.debtor(10), stack.debtor(11)]
    async with contextlib.AsyncExitStack() as sessions:
        courts = []
        for court, executor in COURTS:
            session = await sessions.enter_async_context(
                stack.endpoints.session(headers=auth_headers(issue_token(executor, court))))
            c = Court(Http(session), court, executor)
            reply = await c.http.post("/v1/cases", {
                "case": court_case(c.case_number, court, executor),
                "debtors": [subject_json(d.subject, name=True) for d in shared],
                "amount_owed_fen": str(OWED), "costs_fen": "0",
            })
            assert reply.status == 201, reply.body
            courts.append(c)
        for verb, who, which, amount in steps:
            court = courts[who]
            if verb == "freeze":
                debtor = shared[which]
                reply = await court.http.post("/v1/freezes", {
                    "case": court_case(court.case_number, court.court, court.executor), "agency_id": BANK,
                    "subject": subject_json(debtor.subject), "account_number": debtor.account,
                    "amount_fen": str(debtor.balance_fen * amount // 3),
                })
                # A second pending freeze of one case on one account is the bank's refusal.
                assert reply.status in (200, 409), reply.body
            else:
                mine = [hold_id for hold_id, hold in (await court.holds()).items()
                        if hold["freeze"]["state"] in ("HOLD_STATE_ACTIVE", "HOLD_STATE_QUEUED")]
                if not mine:
                    continue
                hold_id = mine[which % len(mine)]
                body = {"case": court_case(court.case_number, court.court, court.executor)}
                if verb == "release_part":
                    body["amount_fen"] = str(amount)
                reply = await court.http.post(f"/v1/freezes/{hold_id}/release", body)
                # A partial release larger than what is held, or of a queued freeze, is the bank's refusal.
                assert reply.status in (200, 409), reply.body
            await until(lambda: _settled(stack.gateway.core), "the feed settles")
            for court in courts:
                at_bank = {row["freeze_id"]: row for row in bank_freezes(stack.agencies[BANK], court.case_number)}
                for hold in (await court.holds()).values():
                    freeze = hold["freeze"]
                    row = at_bank[freeze["freeze_id"]]
                    assert common_pb2.HoldState.Value(freeze["state"]) == row["state"], (freeze, dict(row))
                    assert int(freeze["frozen_fen"]) == row["frozen_fen"], (freeze, dict(row))
        # Leave the shared accounts free for the next example.
        for court in courts:
            for hold_id, hold in (await court.holds()).items():
                if hold["freeze"]["state"] in ("HOLD_STATE_ACTIVE", "HOLD_STATE_QUEUED"):
                    await court.http.post(f"/v1/freezes/{hold_id}/release",
                                          {"case": court_case(court.case_number, court.court, court.executor)})
