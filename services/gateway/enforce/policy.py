"""The enforcement policy file (ENFORCE_POLICY, default config/enforcement.toml): freezing order, seals,
four eyes, court accounts.

Read once at start; a bad value stops the start with a message naming it.
"""

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from services.common.settings import SettingsError
from services.common.validation import MAX_NAME_CHARS
from services.gateway.enforce.planner import ACCOUNT_TYPES, DEFAULT_ORDER, SEAL_POLICIES, Policy

FREEZE_POLICIES = ("keep", "release")
DEFAULT_THRESHOLD_FEN = 5_000_000  # ¥50,000


@dataclass(frozen=True)
class CourtAccount:
    bank_name: str
    account_number: str
    account_name: str


@dataclass(frozen=True)
class CourtPolicy:
    approval_threshold_fen: int
    court_account: CourtAccount | None


@dataclass(frozen=True)
class EnforcePolicy:
    order: tuple[tuple[str, ...], ...] = DEFAULT_ORDER
    seal: str = "short"
    approval_threshold_fen: int = DEFAULT_THRESHOLD_FEN
    approval_expires_s: float = 72 * 3600.0
    on_reject: str = "keep"
    on_expiry: str = "keep"
    courts: dict[str, CourtPolicy] = field(default_factory=dict)

    def court(self, court_code: str) -> CourtPolicy:
        return self.courts.get(court_code) or CourtPolicy(self.approval_threshold_fen, None)

    def planner_policy(self, court_code: str) -> Policy:
        return Policy(self.order, self.seal, self.court(court_code).approval_threshold_fen)

    @property
    def order_labels(self) -> list[str]:
        return ["+".join(types) for types in self.order]


def _fail(path: Path, what: str) -> SettingsError:
    return SettingsError(f"ENFORCE_POLICY {path}: {what}")


def load_policy(path: Path) -> EnforcePolicy:
    """The policy in `path`; the defaults (no court accounts: no deductions) when it does not exist."""
    if not path.is_file():
        return EnforcePolicy()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise _fail(path, f"unreadable: {exc}") from None
    plan, approval = data.get("plan", {}), data.get("approval", {})
    order = tuple(tuple(group) for group in plan.get("order", [list(g) for g in DEFAULT_ORDER]))
    seen = [t for group in order for t in group]
    if not order or any(not group for group in order) or any(t not in ACCOUNT_TYPES for t in seen) \
            or len(set(seen)) != len(seen):
        raise _fail(path, f"plan.order: a list of lists of distinct account types from {', '.join(ACCOUNT_TYPES)}")
    seal = plan.get("seal", "short")
    if seal not in SEAL_POLICIES:
        raise _fail(path, f"plan.seal: one of {', '.join(SEAL_POLICIES)}")
    threshold = _fen(path, "approval.threshold_fen", approval.get("threshold_fen", DEFAULT_THRESHOLD_FEN))
    expires_s = approval.get("expires_after_seconds", 72 * 3600)
    if not isinstance(expires_s, (int, float)) or isinstance(expires_s, bool) or not 1 <= expires_s <= 90 * 86400:
        raise _fail(path, "approval.expires_after_seconds: 1 to 7776000 (90 days)")
    on_reject, on_expiry = approval.get("on_reject", "keep"), approval.get("on_expiry", "keep")
    for name, value in (("on_reject", on_reject), ("on_expiry", on_expiry)):
        if value not in FREEZE_POLICIES:
            raise _fail(path, f"approval.{name}: keep or release (the plan's freezes)")
    courts = {}
    for code, court in data.get("courts", {}).items():
        account = court.get("court_account")
        if account is not None:
            for name in ("bank_name", "account_number", "account_name"):
                value = account.get(name)
                if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME_CHARS:
                    raise _fail(path, f"courts.{code}.court_account.{name}: 1 to {MAX_NAME_CHARS} characters")
            account = CourtAccount(account["bank_name"], account["account_number"], account["account_name"])
        courts[code] = CourtPolicy(
            _fen(path, f"courts.{code}.approval_threshold_fen", court.get("approval_threshold_fen", threshold)),
            account,
        )
    return EnforcePolicy(order, seal, threshold, float(expires_s), on_reject, on_expiry, courts)


def _fen(path: Path, name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10**15:
        raise _fail(path, f"{name}: a whole number of fen, 0 to 10^15")
    return value
