"""Batch metrics: items by state (every batch in the ledger), answers stored by status, items in flight here.

Every series exists at zero from the start: the states and statuses are fixed sets.
"""

from prometheus_client import Counter, Gauge

from services.gateway.ledger.batches import ITEM_STATES

# An answer as a batch stores it: the AgencyStatus name without its prefix.
ANSWER_STATUSES = ("OK", "TIMEOUT", "UNAVAILABLE", "ERROR")

BATCH_ITEMS = Gauge(
    "chakong_gateway_batch_items",
    "Batch items in the ledger by state (PENDING, DONE, CANCELLED), as of this gateway's last count.",
    ["state"],
    multiprocess_mode="livemostrecent",
)
BATCH_ANSWERS = Counter(
    "chakong_gateway_batch_answers_total",
    "Agency answers to batch items stored by this gateway, by agency status (OK, TIMEOUT, UNAVAILABLE, ERROR).",
    ["status"],
)
BATCH_IN_FLIGHT = Gauge(
    "chakong_gateway_batch_items_in_flight",
    "Batch items this gateway is asking its agencies about now.",
    multiprocess_mode="livesum",
)
for _state in ITEM_STATES:
    BATCH_ITEMS.labels(_state)
for _status in ANSWER_STATUSES:
    BATCH_ANSWERS.labels(_status)
