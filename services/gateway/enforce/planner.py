"""The 查冻扣 planner and triage: pure functions of what a case owes, what its debtors hold and the policy.

`outline` decides a plan's steps ("资金足够的直接划扣,资金不足的继续分流"):

- **Freeze** at most the case's cap (owed + costs − deducted − already
  frozen, queued or pending: control/messages.py `freezable_fen`), one
  freeze per account with available funds, never more than an account's
  available balance, in the policy's order of account classes (by default
  demand deposits and payment balances, then securities cash, then time
  deposits and wealth products), largest available first within a class.
  An account the case already freezes is left alone (the bank refuses a
  second freeze of it by the same case).
- **Deduct** when what the case then holds deductibly (its own active
  freezes plus the plan's) covers what is still owed: from each of those
  freezes in turn, to exactly what is owed, so never more than owed + costs.
  Otherwise the funds stay frozen.
- **Seal** the debtors' vehicles and properties by the policy's `seal`:
  "short" (when the funds do not cover what is owed), "always" or "never".

`classify` puts an executed plan in exactly one triage class. Both are
checked against a simple model by tests/test_enforce_planner.py (hypothesis).
"""

from collections.abc import Sequence
from dataclasses import dataclass

FREEZE, DEDUCT, SEAL, RELEASE = "freeze", "deduct", "seal", "release_freeze"
SETTLED, PARTIAL, NO_ASSETS, WAITING_APPROVAL, FAILED = (
    "SETTLED", "PARTIAL", "NO_ASSETS", "WAITING_APPROVAL", "FAILED",
)
SEAL_POLICIES = ("short", "always", "never")
# The account types a bank reports (chakong.bank.v1.AccountType, lower case).
ACCOUNT_TYPES = ("demand_deposit", "payment_balance", "securities_cash", "time_deposit", "wealth_management")
DEFAULT_ORDER: tuple[tuple[str, ...], ...] = (
    ("demand_deposit", "payment_balance"),
    ("securities_cash",),
    ("time_deposit", "wealth_management"),
)


@dataclass(frozen=True)
class Account:
    """An account a query found, as the planner needs it."""

    agency_id: str
    subject_id: str
    account_number: str
    account_type: str
    available_fen: int


@dataclass(frozen=True)
class Asset:
    """A vehicle or property a query found."""

    agency_id: str
    subject_id: str
    asset_id: str
    kind: str  # "vehicle" or "realestate"


@dataclass(frozen=True)
class HeldFreeze:
    """An ACTIVE freeze of the case itself: deductible up to what it holds."""

    hold_id: str
    agency_id: str
    subject_id: str
    account_number: str
    frozen_fen: int


@dataclass(frozen=True)
class Funds:
    """What the case owes and holds, as the ledger has it."""

    owed_fen: int
    costs_fen: int
    deducted_fen: int
    # Active, queued and pending freezes of the case (what counts against the cap).
    frozen_fen: int

    @property
    def remaining_fen(self) -> int:
        """Still owed: owed + costs − deducted."""
        return max(0, self.owed_fen + self.costs_fen - self.deducted_fen)

    @property
    def cap_fen(self) -> int:
        """What the case may still freeze."""
        return max(0, self.remaining_fen - self.frozen_fen)


@dataclass(frozen=True)
class Policy:
    order: tuple[tuple[str, ...], ...] = DEFAULT_ORDER
    seal: str = "short"
    # Deductions of a plan above this wait for an approver (four eyes).
    approval_threshold_fen: int = 0

    def class_of(self, account_type: str) -> int | None:
        for i, types in enumerate(self.order):
            if account_type in types:
                return i
        return None


@dataclass(frozen=True)
class Step:
    """One planned action. A deduction names the freeze it takes from: a
    held one (`hold_id`) or one of the plan's freezes (`from_step`, 1-based)."""

    kind: str
    agency_id: str
    subject_id: str
    target: str
    amount_fen: int
    reason: str
    account_type: str = ""
    hold_id: str = ""
    from_step: int = 0


@dataclass(frozen=True)
class Outline:
    steps: tuple[Step, ...]
    # The class the plan ends in if every step does as planned.
    expected: str
    reason: str
    remaining_fen: int
    cap_fen: int
    freeze_fen: int
    deduct_fen: int
    needs_approval: bool


def order_accounts(accounts: Sequence[Account], policy: Policy) -> list[Account]:
    """The accounts the policy freezes, in its order: class, then largest available, then a stable key."""
    eligible = [a for a in accounts if a.available_fen > 0 and policy.class_of(a.account_type) is not None]
    return sorted(eligible, key=lambda a: (policy.class_of(a.account_type), -a.available_fen, a.agency_id,
                                           a.account_number))


def outline(
    funds: Funds,
    accounts: Sequence[Account],
    assets: Sequence[Asset],
    held: Sequence[HeldFreeze],
    policy: Policy,
    *,
    frozen_accounts: frozenset[tuple[str, str]] = frozenset(),
    sealed_assets: frozenset[tuple[str, str]] = frozenset(),
    unanswered: Sequence[str] = (),
) -> Outline:
    """The plan's steps; see the module docstring. `frozen_accounts` and
    `sealed_assets` are (agency, account or asset) the case already holds;
    `unanswered`, "agency (debtor): why" for each agency the query missed."""
    remaining, cap = funds.remaining_fen, funds.cap_fen
    steps: list[Step] = []
    left = cap
    for account in order_accounts(accounts, policy):
        if left == 0:
            break
        if (account.agency_id, account.account_number) in frozen_accounts:
            continue
        amount = min(account.available_fen, left)
        left -= amount
        steps.append(Step(
            FREEZE, account.agency_id, account.subject_id, account.account_number, amount,
            f"{account.account_type} (class {policy.class_of(account.account_type) + 1} of {len(policy.order)}),"
            f" largest available first: {amount} of {account.available_fen} fen available"
            + (f"; the cap leaves {amount + left} fen" if amount < account.available_fen else ""),
            account_type=account.account_type,
        ))
    freeze_fen = cap - left
    deductible = sum(h.frozen_fen for h in held if h.frozen_fen > 0)
    covered = remaining > 0 and deductible + freeze_fen >= remaining
    deduct_fen = 0
    if covered:
        to_take = remaining
        sources = [(h.frozen_fen, h.hold_id, 0, h) for h in held if h.frozen_fen > 0]
        sources += [(s.amount_fen, "", i + 1, s) for i, s in enumerate(steps)]
        for holds, hold_id, from_step, source in sources:
            if to_take == 0:
                break
            amount = min(holds, to_take)
            to_take -= amount
            deduct_fen += amount
            where = f"this case's freeze {hold_id}" if hold_id else f"the freeze of step {from_step}"
            steps.append(Step(
                DEDUCT, source.agency_id, source.subject_id,
                source.account_number if hold_id else source.target, amount,
                f"funds held cover what is owed ({deductible + freeze_fen} ≥ {remaining} fen): deduct {amount} fen"
                f" from {where} to the court's account",
                hold_id=hold_id, from_step=from_step,
            ))
    # Nothing owed, nothing sealed, whatever the policy.
    if remaining > 0 and (policy.seal == "always" or (policy.seal == "short" and not covered)):
        why = "policy: seal always" if policy.seal == "always" else (
            f"funds fall short ({deductible + freeze_fen} of {remaining} fen owed can be held): seal")
        for asset in assets:
            if (asset.agency_id, asset.asset_id) in sealed_assets:
                continue
            steps.append(Step(SEAL, asset.agency_id, asset.subject_id, asset.asset_id, 0,
                              f"{why} the {'vehicle' if asset.kind == 'vehicle' else 'property'}"))
    needs_approval = deduct_fen > policy.approval_threshold_fen
    if remaining == 0:
        expected, reason = SETTLED, "nothing is owed any more"
    elif covered:
        expected = WAITING_APPROVAL if needs_approval else SETTLED
        reason = f"deducts {deduct_fen} fen, all that is owed" + (
            f"; above the court's approval threshold of {policy.approval_threshold_fen} fen" if needs_approval else "")
    elif steps or deductible or funds.frozen_fen or funds.deducted_fen:
        expected = PARTIAL
        reason = (f"can hold {deductible + freeze_fen} of {remaining} fen owed (cap {cap} fen);"
                  f" keeps it frozen, {sum(1 for s in steps if s.kind == SEAL)} seal(s)")
    elif unanswered:
        expected, reason = FAILED, _unanswered(unanswered)
    else:
        expected, reason = NO_ASSETS, "no funds, vehicles or properties found to act on"
    return Outline(tuple(steps), expected, reason, remaining, cap, freeze_fen, deduct_fen,
                   covered and needs_approval)


@dataclass(frozen=True)
class Result:
    """A finished step, as triage sees it."""

    kind: str
    state: str  # "succeeded", "failed", "skipped", "waiting", "pending"
    agency_id: str
    amount_fen: int  # deducted, for a deduction; frozen now, for a freeze
    hold_id: str = ""
    why: str = ""


@dataclass(frozen=True)
class Triage:
    triage_class: str
    reason: str
    deducted_fen: int
    frozen_fen: int
    owed_fen: int
    seized: tuple[str, ...]
    agency_id: str = ""


def classify(funds: Funds, results: Sequence[Result], unanswered: Sequence[str] = (),
             holds_anything: bool = False, note: str = "") -> Triage:
    """The one class of an executed plan. `funds` are the case's after the
    plan; `holds_anything`: the case holds a freeze or seal of its own.
    `note` explains a rejection or an expiry."""
    deducted = sum(r.amount_fen for r in results if r.kind == DEDUCT and r.state == "succeeded")
    frozen = sum(r.amount_fen for r in results if r.kind == FREEZE and r.state == "succeeded")
    seized = tuple(r.hold_id for r in results if r.kind in (FREEZE, SEAL) and r.state == "succeeded" and r.hold_id)
    owed = funds.remaining_fen

    def triage(cls: str, reason: str, agency_id: str = "") -> Triage:
        return Triage(cls, reason, deducted, frozen, owed, seized, agency_id)

    failed = next((r for r in results if r.state == "failed"), None)
    if failed is not None:
        return triage(FAILED, f"{failed.agency_id} refused the {failed.kind.replace('_', ' ')}: {failed.why}",
                      failed.agency_id)
    if any(r.state == "waiting" for r in results):
        return triage(WAITING_APPROVAL, f"freezes in place ({frozen} fen); the deductions wait for an approver")
    if owed == 0:
        return triage(SETTLED, f"paid in full by deduction ({deducted} fen by this plan)")
    # A plan whose deductions were rejected or expired found assets, even when its freezes were released.
    if deducted or frozen or seized or holds_anything or note:
        seals = sum(1 for r in results if r.kind == SEAL and r.state == "succeeded")
        reason = note or f"deducted {deducted} fen, frozen {frozen} fen, {seals} seal(s); {owed} fen still owed"
        return triage(PARTIAL, reason)
    if unanswered:
        return triage(FAILED, _unanswered(unanswered), unanswered[0].split(" ", 1)[0])
    return triage(NO_ASSETS, note or "no funds, vehicles or properties found; a candidate for the ordinary procedure")


def _unanswered(unanswered: Sequence[str]) -> str:
    return f"no assets found, but not every agency answered: {unanswered[0]}"
