"""Control-action metrics: actions by kind, outcome and court, money frozen and deducted per court, actions pending.

Every kind, outcome and court series exists at zero from the start (a court
from when a case of it is registered: access/labels.py `COURTS`), so the
day's one deduction shows in `increase()`.
"""

from prometheus_client import Counter, Gauge

from protos.gateway.v1 import control_pb2
from services.gateway.access.labels import COURTS, DOOR_OUTCOMES, REJECTED

# As messages.kind_label names them: freeze, renew_freeze, ..., transfer.
KIND_LABELS = tuple(
    name.removeprefix("ACTION_KIND_").lower()
    for name, value in control_pb2.ActionKind.items()
    if value != control_pb2.ACTION_KIND_UNSPECIFIED
)
SUCCEEDED, REFUSED, PENDING = "succeeded", "refused", "pending"
OUTCOMES = (SUCCEEDED, REFUSED, REJECTED, PENDING, *DOOR_OUTCOMES)

ACTIONS = Counter(
    "chakong_gateway_actions_total",
    "Control actions by kind, outcome and court: succeeded or refused (by the agency), rejected (by validation or"
    " the gateway's rules, nothing recorded), pending (a drive ended with no answer; re-driven later), or refused"
    " at the door (unauthenticated, denied, rate_limited, unknown_case, unavailable).",
    ["kind", "outcome", "court"],
)
FROZEN_FEN = Counter(
    "chakong_gateway_frozen_fen_total",
    "Fen frozen by freezes that succeeded (what the banks actually froze), by court.",
    ["court"],
)
DEDUCTED_FEN = Counter(
    "chakong_gateway_deducted_fen_total",
    "Fen deducted to court accounts by deductions that succeeded, by court.",
    ["court"],
)
ACTIONS_PENDING = Gauge(
    "chakong_gateway_actions_pending",
    "Actions in the ledger still PENDING (awaiting an agency's answer or re-driving), as of the last sweep.",
    # Every worker sweeps the one ledger: the latest sweep is the answer.
    multiprocess_mode="livemostrecent",
)


def count_action(kind: str, outcome: str, court_code: str) -> None:
    """One action of `kind` (its label) ended with `outcome`, for the court its request names."""
    if outcome not in OUTCOMES or kind not in KIND_LABELS:
        raise ValueError(f"unknown action kind or outcome {kind!r}, {outcome!r}")
    ACTIONS.labels(kind, outcome, COURTS.label(court_code)).inc()


def door_counter(kind: str):
    """What the door calls when it refuses an action of `kind` (Operation.count); `court` is a label already."""

    def count(_api: str, outcome: str, court: str) -> None:
        ACTIONS.labels(kind, outcome, court).inc()

    return count


def _create_court(court: str) -> None:
    for kind in KIND_LABELS:
        for outcome in OUTCOMES:
            ACTIONS.labels(kind, outcome, court)
    FROZEN_FEN.labels(court)
    DEDUCTED_FEN.labels(court)


COURTS.subscribe(_create_court)
