"""Control-action metrics: actions by kind and outcome, money frozen and deducted, actions pending."""

from prometheus_client import Counter, Gauge

ACTIONS = Counter(
    "chakong_gateway_actions_total",
    "Control actions by kind and outcome: succeeded or refused (by the agency), rejected (by validation or"
    " the gateway's rules, nothing recorded), pending (a drive ended with no answer; re-driven later).",
    ["kind", "outcome"],
)
FROZEN_FEN = Counter(
    "chakong_gateway_frozen_fen_total",
    "Fen frozen by freezes that succeeded (what the banks actually froze).",
)
DEDUCTED_FEN = Counter(
    "chakong_gateway_deducted_fen_total",
    "Fen deducted to court accounts by deductions that succeeded.",
)
ACTIONS_PENDING = Gauge(
    "chakong_gateway_actions_pending",
    "Actions in the ledger still PENDING (awaiting an agency's answer or re-driving), as of the last sweep.",
    # Every worker sweeps the one ledger: the latest sweep is the answer.
    multiprocess_mode="livemostrecent",
)

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
