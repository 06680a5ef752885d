"""The bank's control side over real gRPC: freeze, renew, release and deduct,
queues (轮候), lapses and idempotency, against `python -m services.bank`.

Time moves by writing seconds into the process's CLOCK_OFFSET_FILE.
"""

import asyncio
import itertools
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import Message

from protos.bank.v1 import bank_pb2, bank_pb2_grpc
from protos.common.v1 import common_pb2
from services import datagen
from services.agency.store import timestamp
from services.bank import ledger
from services.common.logs import mask_id

SEED = 7
SUBJECTS = 300
DAY_US = 86_400 * 1_000_000
ACTIVE, QUEUED, RELEASED = ledger.ACTIVE, ledger.QUEUED, ledger.RELEASED
LAPSED, DEDUCTED = ledger.LAPSED, ledger.DEDUCTED


def case(number: str, court: str) -> common_pb2.CaseRef:
    return common_pb2.CaseRef(case_number=number, court_code=court, executor_id="E0001", document_number=f"{number}-通知")


COURT_A = case("(2024)皖01执101号", "340100")
COURT_B = case("(2024)皖02执202号", "340200")
COURT_C = case("(2025)皖03执303号", "340300")
COURT_ACCOUNT = bank_pb2.CourtAccount(
    bank_name="中国工商银行合肥分行", account_number="1302010119024567890", account_name="合肥市中级人民法院"
)


@dataclass(frozen=True)
class Debtor:
    subject: common_pb2.Subject
    account_number: str
    balance_fen: int


def debtors() -> list[Debtor]:
    """Account holders with large normal accounts, largest first, one account each."""
    people = {s.id_number: s for s in datagen.subjects(SEED, SUBJECTS)}
    seen, found = set(), []
    accounts = sorted(datagen.bank_accounts(SEED, list(people.values()), "icbc", "中国工商银行", "bank"),
                      key=lambda a: -a.balance_fen)
    for a in accounts:
        if a.status == bank_pb2.ACCOUNT_STATUS_NORMAL and a.owner_id_number not in seen:
            seen.add(a.owner_id_number)
            p = people[a.owner_id_number]
            found.append(Debtor(common_pb2.Subject(type=p.subject_type, id_number=p.id_number, name=p.name),
                                a.account_number, a.balance_fen))
    return found


DEBTORS = debtors()


class Bank:
    """One running bank, a stub to it and the knobs a test turns."""

    def __init__(self, service, channel: grpc.aio.Channel, clock_file: Path, db_path: Path):
        self.service = service
        self.stub = bank_pb2_grpc.BankStub(channel)
        self.clock_file = clock_file
        self.db_path = db_path
        self.offset_s = 0.0
        self._keys = itertools.count(1)

    def key(self) -> str:
        return f"key-{next(self._keys)}"

    def now_us(self) -> int:
        return time.time_ns() // 1000 + int(self.offset_s * 1_000_000)

    def advance(self, days: float) -> None:
        self.offset_s += days * 86_400
        self.clock_file.write_text(str(self.offset_s))

    def in_days(self, days: float) -> object:
        return timestamp(self.now_us() + int(days * DAY_US))

    async def freeze(self, debtor: Debtor, amount_fen: int, *, court=COURT_A, days: float = 180, key=None,
                     account_number=None, subject=None):
        return await self.stub.Freeze(bank_pb2.FreezeRequest(
            idempotency_key=key or self.key(), case=court, subject=subject or debtor.subject,
            account_number=account_number or debtor.account_number, amount_fen=amount_fen,
            expires_at=self.in_days(days)), timeout=10)

    async def renew(self, freeze_id: str, *, court=COURT_A, days: float = 300, key=None):
        return await self.stub.RenewFreeze(bank_pb2.RenewFreezeRequest(
            idempotency_key=key or self.key(), case=court, freeze_id=freeze_id, expires_at=self.in_days(days)),
            timeout=10)

    async def release(self, freeze_id: str, amount_fen: int = 0, *, court=COURT_A, key=None):
        return await self.stub.ReleaseFreeze(bank_pb2.ReleaseFreezeRequest(
            idempotency_key=key or self.key(), case=court, freeze_id=freeze_id, amount_fen=amount_fen), timeout=10)

    async def deduct(self, freeze_id: str, amount_fen: int, *, court=COURT_A, key=None):
        return await self.stub.Deduct(bank_pb2.DeductRequest(
            idempotency_key=key or self.key(), case=court, freeze_id=freeze_id, amount_fen=amount_fen,
            court_account=COURT_ACCOUNT), timeout=10)

    async def deduct_direct(self, debtor: Debtor, amount_fen: int, *, court=COURT_A, key=None):
        return await self.stub.Deduct(bank_pb2.DeductRequest(
            idempotency_key=key or self.key(), case=court, account_number=debtor.account_number,
            subject=debtor.subject, amount_fen=amount_fen, court_account=COURT_ACCOUNT), timeout=10)

    async def account(self, debtor: Debtor) -> bank_pb2.Account:
        response = await self.stub.QueryAccounts(
            bank_pb2.QueryAccountsRequest(request_id="q", case=COURT_A, subject=debtor.subject), timeout=10)
        return next(a for a in response.accounts if a.account_number == debtor.account_number)

    def conservation(self) -> list[str]:
        conn = sqlite3.connect(self.db_path)
        conn.row_factory = sqlite3.Row
        try:
            return ledger.check_conservation(conn)
        finally:
            conn.close()


async def refused(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def log_lines(bank: Bank, marker: str, count: int) -> list[str]:
    """The service's log lines containing `marker`, once `count` have arrived
    (its output is read by a thread, a moment behind the answers)."""
    for _ in range(100):
        lines = [line for line in bank.service.output if marker in line]
        if len(lines) >= count:
            return lines
        await asyncio.sleep(0.02)
    return lines


@pytest.fixture
async def bank(start_service, tmp_path):
    clock_file = tmp_path / "clock-offset"
    clock_file.write_text("0")
    service = start_service(
        "services.bank",
        GRPC_ADDRESS="127.0.0.1:0", METRICS_ADDRESS="127.0.0.1:0", SEED=str(SEED), SUBJECTS=str(SUBJECTS),
        LOG_FORMAT="text", CLOCK_OFFSET_FILE=str(clock_file),
    )
    async with grpc.aio.insecure_channel(service.endpoints["grpc"]) as channel:
        yield Bank(service, channel, clock_file, tmp_path / "icbc.db")


def states(account: bank_pb2.Account) -> list[tuple[str, int, int, int]]:
    return [(f.freeze_id, f.state, f.frozen_fen, f.queue_position) for f in account.freezes]


async def test_freeze_deduct_part_then_release_the_rest(bank):
    debtor = DEBTORS[0]
    balance = debtor.balance_fen
    amount = balance // 4

    frozen = await bank.freeze(debtor, amount)
    assert (frozen.state, frozen.requested_fen, frozen.frozen_fen, frozen.shortfall_fen, frozen.queue_position) == (
        ACTIVE, amount, amount, 0, 0)
    assert frozen.account_number == debtor.account_number and frozen.court_code == COURT_A.court_code
    assert frozen.effective_at == frozen.registered_at and not frozen.HasField("ended_at")
    account = await bank.account(debtor)
    assert (account.balance_fen, account.frozen_fen, account.available_balance_fen) == (
        balance, amount, balance - amount)
    assert states(account) == [(frozen.freeze_id, ACTIVE, amount, 0)]

    part = amount // 3
    deduction = await bank.deduct(frozen.freeze_id, part)
    assert (deduction.amount_fen, deduction.freeze_id, deduction.account_number) == (part, frozen.freeze_id,
                                                                                     debtor.account_number)
    assert deduction.court_account == COURT_ACCOUNT
    assert (deduction.freeze.state, deduction.freeze.frozen_fen, deduction.freeze.deducted_fen) == (
        ACTIVE, amount - part, part)
    account = await bank.account(debtor)
    assert (account.balance_fen, account.frozen_fen, account.available_balance_fen) == (
        balance - part, amount - part, balance - amount)

    released = await bank.release(frozen.freeze_id)
    assert (released.state, released.frozen_fen, released.deducted_fen) == (RELEASED, 0, part)
    assert released.HasField("ended_at")
    account = await bank.account(debtor)
    assert (account.balance_fen, account.frozen_fen, account.available_balance_fen) == (
        balance - part, 0, balance - part)
    assert list(account.freezes) == []
    assert bank.conservation() == []

    # One log line per action, with the key and the freeze, never the full ID.
    logged = await log_lines(bank, " key=key-", 3)
    assert len(logged) == 3 and all(frozen.freeze_id in line for line in logged), logged
    assert any(mask_id(debtor.subject.id_number) in line for line in logged)
    assert not any(debtor.subject.id_number in line for line in bank.service.output)


async def test_shortfall_then_queue_takes_effect_in_registration_order(bank):
    debtor = DEBTORS[1]
    balance = debtor.balance_fen

    first = await bank.freeze(debtor, balance + 5_000, court=COURT_A)
    assert (first.state, first.frozen_fen, first.shortfall_fen) == (ACTIVE, balance, 5_000)
    # Nothing is left: other courts' freezes wait in line (轮候).
    second = await bank.freeze(debtor, balance - 100, court=COURT_B, days=90)
    third = await bank.freeze(debtor, 500, court=COURT_C, days=30)
    assert [(f.state, f.frozen_fen, f.queue_position) for f in (second, third)] == [(QUEUED, 0, 1), (QUEUED, 0, 2)]
    assert not second.HasField("effective_at")
    account = await bank.account(debtor)
    assert (account.frozen_fen, account.available_balance_fen) == (balance, 0)
    assert states(account) == [(first.freeze_id, ACTIVE, balance, 0), (second.freeze_id, QUEUED, 0, 1),
                               (third.freeze_id, QUEUED, 0, 2)]
    # The same case cannot freeze the same account twice.
    duplicate = await refused(bank.freeze(debtor, 100, court=COURT_B))
    assert duplicate.code() == grpc.StatusCode.ALREADY_EXISTS and second.freeze_id in duplicate.details()

    released = await bank.release(first.freeze_id, court=COURT_A)
    assert released.state == RELEASED
    account = await bank.account(debtor)
    promoted = {f.freeze_id: f for f in account.freezes}
    # The first in line takes what it asked for, the next what is left.
    assert states(account) == [(second.freeze_id, ACTIVE, balance - 100, 0), (third.freeze_id, ACTIVE, 100, 0)]
    assert promoted[third.freeze_id].shortfall_fen == 400
    # A queued freeze's period starts when it takes effect.
    for queued, days in ((second, 90), (third, 30)):
        now = promoted[queued.freeze_id]
        asked = queued.expires_at.ToMicroseconds() - queued.registered_at.ToMicroseconds()
        assert now.effective_at.ToMicroseconds() == released.ended_at.ToMicroseconds()
        assert now.expires_at.ToMicroseconds() - now.effective_at.ToMicroseconds() == asked
        assert abs(asked - days * DAY_US) < 60_000_000
    assert (account.frozen_fen, account.available_balance_fen) == (balance, 0)
    assert bank.conservation() == []


async def test_same_key_same_answer_and_one_effect(bank):
    debtor = DEBTORS[2]
    request = bank_pb2.FreezeRequest(
        idempotency_key="retry-1", case=COURT_A, subject=debtor.subject, account_number=debtor.account_number,
        amount_fen=10_000, expires_at=bank.in_days(100))
    first = await bank.stub.Freeze(request, timeout=10)
    again = await bank.stub.Freeze(request, timeout=10)
    assert again == first
    account = await bank.account(debtor)
    assert (account.frozen_fen, len(account.freezes)) == (10_000, 1)

    changed = bank_pb2.FreezeRequest()
    changed.CopyFrom(request)
    changed.amount_fen = 20_000
    reused = await refused(bank.stub.Freeze(changed, timeout=10))
    assert reused.code() == grpc.StatusCode.ALREADY_EXISTS and reused.details().startswith("idempotency_key: ")
    # A refusal is an answer too: a retry gets the same refusal.
    deduct = bank.deduct(first.freeze_id, 10_001, key="retry-2")
    first_refusal = await refused(deduct)
    second_refusal = await refused(bank.deduct(first.freeze_id, 10_001, key="retry-2"))
    assert (first_refusal.code(), first_refusal.details()) == (second_refusal.code(), second_refusal.details())
    assert first_refusal.code() == grpc.StatusCode.FAILED_PRECONDITION

    # Eight copies of one request at once: one freeze, eight identical answers.
    other = DEBTORS[3]
    burst = bank_pb2.FreezeRequest(
        idempotency_key="burst-1", case=COURT_B, subject=other.subject, account_number=other.account_number,
        amount_fen=7_000, expires_at=bank.in_days(100))
    answers = await asyncio.gather(*(bank.stub.Freeze(burst, timeout=10) for _ in range(8)))
    assert len({a.SerializeToString(deterministic=True) for a in answers}) == 1
    account = await bank.account(other)
    assert [(f.freeze_id, f.frozen_fen) for f in account.freezes] == [(answers[0].freeze_id, 7_000)]
    assert bank.conservation() == []


async def test_concurrent_deductions_never_exceed_what_is_frozen(bank):
    debtor = DEBTORS[4]
    frozen = await bank.freeze(debtor, 100_000)
    results = await asyncio.gather(*(bank.deduct(frozen.freeze_id, 30_000) for _ in range(10)),
                                   return_exceptions=True)
    succeeded = [r for r in results if isinstance(r, bank_pb2.Deduction)]
    failed = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert (len(succeeded), len(failed)) == (3, 7)
    assert all(e.code() == grpc.StatusCode.FAILED_PRECONDITION and "10000 fen remains" in e.details() for e in failed)
    assert len({d.deduction_id for d in succeeded}) == 3
    account = await bank.account(debtor)
    assert (account.balance_fen, account.frozen_fen) == (debtor.balance_fen - 90_000, 10_000)
    assert states(account) == [(frozen.freeze_id, ACTIVE, 10_000, 0)]

    # Deducting the rest ends the freeze.
    last = await bank.deduct(frozen.freeze_id, 10_000)
    assert (last.freeze.state, last.freeze.frozen_fen, last.freeze.deducted_fen) == (DEDUCTED, 0, 100_000)
    account = await bank.account(debtor)
    assert (account.balance_fen, account.frozen_fen, list(account.freezes)) == (debtor.balance_fen - 100_000, 0, [])
    assert bank.conservation() == []


async def test_direct_deduction_takes_only_available_funds(bank):
    debtor = DEBTORS[5]
    balance = debtor.balance_fen
    held = await bank.freeze(debtor, balance - 50_000, court=COURT_B)
    too_much = await refused(bank.deduct_direct(debtor, 50_001))
    assert too_much.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "only 50000 fen is available" in too_much.details()
    deduction = await bank.deduct_direct(debtor, 20_000)
    recorded = deduction.freeze
    assert (deduction.amount_fen, recorded.state, recorded.deducted_fen, recorded.frozen_fen) == (
        20_000, DEDUCTED, 20_000, 0)
    assert recorded.effective_at == recorded.ended_at == deduction.deducted_at
    account = await bank.account(debtor)
    assert (account.balance_fen, account.frozen_fen, account.available_balance_fen) == (
        balance - 20_000, balance - 50_000, 30_000)
    assert states(account) == [(held.freeze_id, ACTIVE, balance - 50_000, 0)]

    stranger = DEBTORS[6]
    not_theirs = await refused(bank.freeze(debtor, 100, subject=stranger.subject))
    assert not_theirs.code() == grpc.StatusCode.FAILED_PRECONDITION and "does not belong" in not_theirs.details()
    unknown = await refused(bank.freeze(debtor, 100, account_number="6222020000000000000"))
    assert unknown.code() == grpc.StatusCode.NOT_FOUND
    assert bank.conservation() == []


async def test_expiry_lapses_and_promotes_the_queue_and_renewal_rules(bank):
    debtor = DEBTORS[7]
    first = await bank.freeze(debtor, debtor.balance_fen, court=COURT_A, days=30)
    waiting = await bank.freeze(debtor, 1_000, court=COURT_B, days=60)
    assert waiting.state == QUEUED

    # Renewed before expiry: extended; at most one year from now; never shorter.
    renewed = await bank.renew(first.freeze_id, days=40)
    assert renewed.expires_at.ToMicroseconds() > first.expires_at.ToMicroseconds()
    too_long = await refused(bank.renew(first.freeze_id, days=367))
    assert too_long.code() == grpc.StatusCode.INVALID_ARGUMENT and too_long.details().startswith("expires_at: ")
    shorter = await refused(bank.renew(first.freeze_id, days=35))
    assert shorter.code() == grpc.StatusCode.FAILED_PRECONDITION
    queued = await refused(bank.renew(waiting.freeze_id, court=COURT_B))
    assert queued.code() == grpc.StatusCode.FAILED_PRECONDITION and "not active" in queued.details()

    bank.advance(days=39)
    account = await bank.account(debtor)
    assert [f.freeze_id for f in account.freezes] == [first.freeze_id, waiting.freeze_id]

    bank.advance(days=2)
    account = await bank.account(debtor)
    (promoted,) = account.freezes
    assert (promoted.freeze_id, promoted.state, promoted.frozen_fen) == (waiting.freeze_id, ACTIVE, 1_000)
    # It took effect the moment the first lapsed, and its period runs from then.
    assert promoted.effective_at == renewed.expires_at
    period = waiting.expires_at.ToMicroseconds() - waiting.registered_at.ToMicroseconds()
    assert promoted.expires_at.ToMicroseconds() == promoted.effective_at.ToMicroseconds() + period
    assert (account.frozen_fen, account.available_balance_fen) == (1_000, debtor.balance_fen - 1_000)

    lapsed = await refused(bank.renew(first.freeze_id, days=100))
    assert lapsed.code() == grpc.StatusCode.FAILED_PRECONDITION and "lapsed" in lapsed.details()
    ended = await refused(bank.deduct(first.freeze_id, 1))
    assert ended.code() == grpc.StatusCode.FAILED_PRECONDITION and "LAPSED" in ended.details()
    assert bank.conservation() == []


async def test_only_the_placing_court_may_act_on_a_freeze(bank):
    debtor = DEBTORS[8]
    frozen = await bank.freeze(debtor, 50_000, court=COURT_A)
    for call in (bank.renew(frozen.freeze_id, court=COURT_B), bank.release(frozen.freeze_id, court=COURT_B),
                 bank.deduct(frozen.freeze_id, 1_000, court=COURT_B)):
        error = await refused(call)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED and "another court" in error.details()
    # The same court under another of its cases may not either.
    other_case = case("(2024)皖01执999号", COURT_A.court_code)
    error = await refused(bank.deduct(frozen.freeze_id, 1_000, court=other_case))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED and COURT_A.case_number in error.details()
    account = await bank.account(debtor)
    assert (account.balance_fen, account.frozen_fen) == (debtor.balance_fen, 50_000)
    assert states(account) == [(frozen.freeze_id, ACTIVE, 50_000, 0)]


async def test_bad_input_names_the_field_and_leaves_nothing_behind(bank):
    debtor = DEBTORS[9]
    valid = bank_pb2.FreezeRequest(
        idempotency_key="fix-me", case=COURT_A, subject=debtor.subject, account_number=debtor.account_number,
        amount_fen=5_000, expires_at=bank.in_days(30))

    def freeze_with(**changes) -> bank_pb2.FreezeRequest:
        request = bank_pb2.FreezeRequest()
        request.CopyFrom(valid)
        for name, value in changes.items():
            if value is None:
                request.ClearField(name)
            elif isinstance(value, Message):
                getattr(request, name).CopyFrom(value)
            else:
                setattr(request, name, value)
        return request

    deduct = bank_pb2.DeductRequest(idempotency_key="fix-me", case=COURT_A, account_number=debtor.account_number,
                                    subject=debtor.subject, amount_fen=1_000, court_account=COURT_ACCOUNT)

    def deduct_with(**changes) -> bank_pb2.DeductRequest:
        request = bank_pb2.DeductRequest()
        request.CopyFrom(deduct)
        for name in changes:
            request.ClearField(name)
        return request

    bad_calls = [
        ("amount_fen", bank.stub.Freeze(freeze_with(amount_fen=-5))),
        ("amount_fen", bank.stub.Freeze(freeze_with(amount_fen=0))),
        ("idempotency_key", bank.stub.Freeze(freeze_with(idempotency_key=None))),
        ("idempotency_key", bank.stub.Freeze(freeze_with(idempotency_key="has spaces"))),
        ("expires_at", bank.stub.Freeze(freeze_with(expires_at=None))),
        ("subject.name", bank.stub.Freeze(freeze_with(subject=common_pb2.Subject(
            type=debtor.subject.type, id_number=debtor.subject.id_number)))),
        ("account_number", bank.stub.Freeze(freeze_with(account_number=None))),
        ("case.case_number", bank.stub.Freeze(freeze_with(case=case("2024-1", "340100")))),
        ("court_account.bank_name", bank.stub.Deduct(deduct_with(court_account=None))),
        ("subject", bank.stub.Deduct(deduct_with(subject=None))),
        ("source", bank.stub.Deduct(deduct_with(account_number=None))),
        ("amount_fen", bank.stub.ReleaseFreeze(bank_pb2.ReleaseFreezeRequest(
            idempotency_key="fix-me", case=COURT_A, freeze_id="fz-x", amount_fen=-1))),
        ("freeze_id", bank.stub.RenewFreeze(bank_pb2.RenewFreezeRequest(
            idempotency_key="fix-me", case=COURT_A, expires_at=bank.in_days(10)))),
    ]
    for field, call in bad_calls:
        error = await refused(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, error.details())
        assert error.details().startswith(f"{field}: "), (field, error.details())

    account = await bank.account(debtor)
    assert (account.balance_fen, account.frozen_fen, list(account.freezes)) == (debtor.balance_fen, 0, [])
    # Nothing was recorded under the key: the corrected request goes through.
    frozen = await bank.stub.Freeze(valid, timeout=10)
    assert (frozen.state, frozen.frozen_fen) == (ACTIVE, 5_000)
    # An expiry beyond a year is refused naming the field.
    too_long = await refused(bank.freeze(debtor, 100, court=COURT_B, days=370))
    assert too_long.code() == grpc.StatusCode.INVALID_ARGUMENT and too_long.details().startswith("expires_at: ")

