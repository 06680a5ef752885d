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
