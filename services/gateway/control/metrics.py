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


# Holds kept in step with the agencies (holdsync.py)

# What an agency's report did to one of the ledger's holds; "confirmed":
# the agency confirmed a lapse the gateway had concluded itself.
HOLD_EVENT_KINDS = (
    "promoted", "lapsed", "released", "deducted", "transferred", "reduced", "changed", "confirmed",
)
HOLD_EVENTS = Counter(
    "chakong_gateway_hold_events_total",
    "Changes to the ledger's holds made by the agencies' hold changes feeds, by what happened: promoted (from"
    " the queue), lapsed, released, deducted, transferred, reduced (less held), changed (anything else, such as"
    " a renewal), confirmed (a lapse the gateway had concluded itself).",
    ["event"],
)
for _kind in HOLD_EVENT_KINDS:
    HOLD_EVENTS.labels(_kind)
HOLD_FEED_LAG_SECONDS = Gauge(
    "chakong_gateway_hold_feed_lag_seconds",
    "For the last feed page applied: seconds from the agency committing its newest change to the gateway"
    " applying it; 0 when the last read found nothing new.",
    ["agency"],
    multiprocess_mode="livemax",
)
HOLD_FEED_SYNCED = Gauge(
    "chakong_gateway_hold_feed_synced_timestamp_seconds",
    "When the gateway last read the agency's hold changes feed to its end (Unix time).",
    ["agency"],
    multiprocess_mode="livemax",
)
HOLD_REPAIRS = Counter(
    "chakong_gateway_hold_repairs_total",
    "Holds reconciliation found different at the agency and repaired: each one means a change was lost.",
    ["agency"],
)
HOLDS = Gauge(
    "chakong_gateway_holds",
    "The ledger's holds by state, as of the last sweep.",
    ["state"],
    multiprocess_mode="livemostrecent",
)
