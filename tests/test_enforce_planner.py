"""The 查冻扣 planner against a simple model, driven by hypothesis: random debtors, accounts, balances,
the case's own freezes, what is owed and already deducted or frozen, and random freezing orders.

The model says what a careful executor would do by hand: walk the classes in
order, each class's accounts largest first, freeze what the account has
until the cap is reached; deduct everything owed when what is held covers
it; seal when short. The planner must agree with it, and on its own never
freeze beyond the cap or an account's available balance, never deduct
beyond owed + costs, and expect SETTLED exactly when its deductions cover
what is owed.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from services.gateway.enforce.planner import (
    ACCOUNT_TYPES,
    DEDUCT,
    FAILED,
    FREEZE,
    NO_ASSETS,
    PARTIAL,
    SEAL,
    SETTLED,
    WAITING_APPROVAL,
    Account,
    Asset,
    Funds,
    HeldFreeze,
    Policy,
    Result,
    classify,
    outline,
)

DEBTORS = ("D1", "D2", "D3")
BANKS = ("icbc", "alipay", "citic")

accounts = st.lists(
    st.builds(Account, st.sampled_from(BANKS), st.sampled_from(DEBTORS), st.text("0123456789", min_size=4, max_size=6),
              st.sampled_from(ACCOUNT_TYPES + ("unknown",)), st.integers(0, 2_000_000)),
    max_size=8, unique_by=lambda a: (a.agency_id, a.account_number),
)
assets = st.lists(
    st.builds(Asset, st.sampled_from(("hefei-vmo", "hefei-rer")), st.sampled_from(DEBTORS),
              st.text("ABCDEFGH0123", min_size=3, max_size=5), st.sampled_from(("vehicle", "realestate"))),
    max_size=4, unique_by=lambda a: (a.agency_id, a.asset_id),
)
held = st.lists(
    st.builds(HeldFreeze, st.text("abcdef", min_size=6, max_size=6).map(lambda s: f"fz-{s}"), st.sampled_from(BANKS),
              st.sampled_from(DEBTORS), st.text("0123456789", min_size=4, max_size=6), st.integers(0, 1_000_000)),
    max_size=3, unique_by=lambda h: h.hold_id,
)
# Any split of the known types into ordered classes (some types left out: never frozen).
orders = st.permutations(ACCOUNT_TYPES).flatmap(
    lambda types: st.lists(st.integers(1, 3), min_size=1, max_size=5).map(lambda sizes: _split(types, sizes)))


def _split(types, sizes):
    classes, i = [], 0
    for size in sizes:
        if i < len(types):
            classes.append(tuple(types[i:i + size]))
            i += size
    return tuple(classes)


@st.composite
def cases(draw):
    funds_held = draw(held)
    deductible = sum(h.frozen_fen for h in funds_held)
    owed = draw(st.integers(1, 5_000_000))
    costs = draw(st.integers(0, 100_000))
    deducted = draw(st.integers(0, owed + costs + 10))
    # Already frozen counts at least the case's own active freezes (plus queued and pending ones).
    frozen = deductible + draw(st.integers(0, 300_000))
    policy = Policy(draw(orders), draw(st.sampled_from(("short", "always", "never"))), draw(st.integers(0, 3_000_000)))
    return Funds(owed, costs, deducted, frozen), draw(accounts), draw(assets), funds_held, policy


def model_freezes(funds: Funds, accounts_, policy: Policy) -> list[tuple[str, str, int]]:
    left = funds.cap_fen
    chosen = []
    for types in policy.order:
        in_class = [a for a in accounts_ if a.account_type in types and a.available_fen > 0]
        for account in sorted(in_class, key=lambda a: -a.available_fen):
            take = min(left, account.available_fen)
            if take:
                chosen.append((account.agency_id, account.account_number, take))
                left -= take
    return chosen


@settings(max_examples=1000, deadline=None)
@given(cases())
def test_the_planner_agrees_with_the_model(case):
    funds, found, things, funds_held, policy = case
    plan = outline(funds, found, things, funds_held, policy)
    freezes = [s for s in plan.steps if s.kind == FREEZE]
    deductions = [s for s in plan.steps if s.kind == DEDUCT]
    seals = [s for s in plan.steps if s.kind == SEAL]
    by_account = {(a.agency_id, a.account_number): a for a in found}

    # Never beyond the cap, never beyond what an account has available; one freeze per account.
    assert sum(s.amount_fen for s in freezes) <= funds.cap_fen
    assert all(0 < s.amount_fen <= by_account[(s.agency_id, s.target)].available_fen for s in freezes)
    assert len({(s.agency_id, s.target) for s in freezes}) == len(freezes)
    # The order: the model's choice, amount for amount (equal balances may come in either order).
    model = model_freezes(funds, found, policy)
    assert sorted((s.agency_id, s.target, s.amount_fen) for s in freezes) == sorted(model)
    classes = [policy.class_of(s.account_type) for s in freezes]
    assert classes == sorted(classes)
    for a, b in zip(freezes, freezes[1:]):
        if policy.class_of(a.account_type) == policy.class_of(b.account_type):
            first, then = by_account[(a.agency_id, a.target)], by_account[(b.agency_id, b.target)]
            assert first.available_fen >= then.available_fen

    # Deductions: at most owed + costs (less what was deducted), each at most what its freeze holds.
    total = sum(s.amount_fen for s in deductions)
    assert funds.deducted_fen + total <= funds.owed_fen + funds.costs_fen or total == 0
    assert total <= funds.remaining_fen
    held_by_id = {h.hold_id: h for h in funds_held}
    for s in deductions:
        source = held_by_id[s.hold_id].frozen_fen if s.hold_id else plan.steps[s.from_step - 1].amount_fen
        assert 0 < s.amount_fen <= source
        assert not s.hold_id or s.from_step == 0
    covered = funds.remaining_fen > 0 and sum(h.frozen_fen for h in funds_held) + sum(m[2] for m in model) >= \
        funds.remaining_fen
    # Deduct all or nothing: only when what is held covers what is owed.
    assert (total == funds.remaining_fen > 0) == covered
    # SETTLED (or waiting to be, above the threshold) exactly when the deductions cover it.
    paid = funds.deducted_fen + total >= funds.owed_fen + funds.costs_fen
    assert (plan.expected in (SETTLED, WAITING_APPROVAL)) == paid
    assert (plan.expected == WAITING_APPROVAL) == (covered and total > policy.approval_threshold_fen)

    # Seals by policy.
    if policy.seal == "never" or funds.remaining_fen == 0:
        assert not seals
    elif policy.seal == "always":
        assert len(seals) == len(things)
    else:
        assert len(seals) == (0 if covered else len(things))
    if plan.expected == NO_ASSETS:
        assert not plan.steps and not funds.frozen_fen and not funds.deducted_fen
        # Unless an agency did not answer: then nothing found proves nothing.
        assert outline(funds, found, things, funds_held, policy, unanswered=["icbc (D1): UNAVAILABLE"]).expected \
            == FAILED


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 1_000_000), st.integers(0, 2_000_000),
    st.lists(st.tuples(st.sampled_from((FREEZE, DEDUCT, SEAL)),
                       st.sampled_from(("succeeded", "failed", "skipped", "waiting")),
                       st.integers(0, 500_000)), max_size=6),
    st.lists(st.text("abc", min_size=1, max_size=3), max_size=2), st.booleans(),
)
def test_triage_puts_a_plan_in_exactly_one_class(owed, deducted, outcomes, unanswered, holds):
    funds = Funds(owed, 0, deducted, 0)
    results = [Result(kind, state, "icbc", amount, hold_id=f"h{i}") for i, (kind, state, amount) in enumerate(outcomes)]
    triage = classify(funds, results, unanswered, holds)
    if any(state == "failed" for _, state, _ in outcomes):
        assert triage.triage_class == FAILED and triage.agency_id == "icbc"
    elif any(state == "waiting" for _, state, _ in outcomes):
        assert triage.triage_class == WAITING_APPROVAL
    else:
        assert (triage.triage_class == SETTLED) == (deducted >= owed)
        if triage.triage_class == NO_ASSETS:
            assert not holds and not unanswered and triage.deducted_fen == triage.frozen_fen == 0
        if triage.triage_class not in (SETTLED, NO_ASSETS):
            assert triage.triage_class in (PARTIAL, FAILED)
    assert triage.owed_fen == max(0, owed - deducted)
