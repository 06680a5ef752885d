"""Enforcement plan metrics: plans by triage class and court, fen deducted and frozen by plans, approvals waiting
and the oldest one's age, and the share of triaged cases a plan settled.

The counters' court series exist at zero from when the court is known
(access/labels.py `COURTS`); the gauges are read from the ledger by the
plan resumer's sweep, so every gateway sharing it reports the same.
"""

from prometheus_client import Counter, Gauge

from services.gateway.access.labels import COURTS

TRIAGE_LABELS = ("settled", "partial", "no_assets", "waiting_approval", "failed")

PLANS = Counter(
    "chakong_gateway_plans_total",
    "Enforcement plans (查冻扣) by the triage class they reached (a plan that waited for approval counts"
    " waiting_approval, then its final class), by court.",
    ["triage", "court"],
)
PLAN_DEDUCTED_FEN = Counter(
    "chakong_gateway_plan_deducted_fen_total", "Fen deducted by enforcement plans' deductions, by court.", ["court"],
)
PLAN_FROZEN_FEN = Counter(
    "chakong_gateway_plan_frozen_fen_total",
    "Fen frozen by enforcement plans' freezes (what the banks froze), by court.",
    ["court"],
)
APPROVALS_WAITING = Gauge(
    "chakong_gateway_approvals_waiting",
    "Plans whose deductions wait for an approver, as of the last sweep.",
    multiprocess_mode="livemostrecent",
)
APPROVAL_OLDEST_SECONDS = Gauge(
    "chakong_gateway_approval_oldest_age_seconds",
    "How long the oldest approval still waiting has waited (0: none waits), as of the last sweep.",
    multiprocess_mode="livemostrecent",
)
SETTLED_SHARE = Gauge(
    "chakong_gateway_enforce_settled_ratio",
    "Of the cases an enforcement plan has triaged, the share a plan settled (paid in full by deduction); 0"
    " before the first.",
    multiprocess_mode="livemostrecent",
)


def count_triage(label: str, court_code: str) -> None:
    if label not in TRIAGE_LABELS:
        raise ValueError(f"unknown triage class {label!r}")
    PLANS.labels(label, COURTS.label(court_code)).inc()


def count_money(court_code: str, *, deducted_fen: int = 0, frozen_fen: int = 0) -> None:
    court = COURTS.label(court_code)
    if deducted_fen:
        PLAN_DEDUCTED_FEN.labels(court).inc(deducted_fen)
    if frozen_fen:
        PLAN_FROZEN_FEN.labels(court).inc(frozen_fen)


def set_stats(waiting: int, oldest_age_s: float, triaged: int, settled: int) -> None:
    APPROVALS_WAITING.set(waiting)
    APPROVAL_OLDEST_SECONDS.set(oldest_age_s)
    SETTLED_SHARE.set(settled / triaged if triaged else 0.0)


def _create_court(court: str) -> None:
    for label in TRIAGE_LABELS:
        PLANS.labels(label, court)
    PLAN_DEDUCTED_FEN.labels(court)
    PLAN_FROZEN_FEN.labels(court)


COURTS.subscribe(_create_court)
