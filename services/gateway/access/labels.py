"""Label values the door hands to per-request metrics: the outcome of a refusal, and the court.

A request the door refuses is counted with the outcome of its code
(`refusal_outcome`): unauthenticated, denied, rate_limited, unknown_case (a
case not registered) or unavailable (the audit trail or the ledger could not
be used); one it cannot parse is `rejected`, as the handlers' validation
counts the rest.

The `court` label: court codes are a bounded set and not personal data, so per-request counts
(queries, actions, money, denials) carry one. Bounded by what an admin did:
a court becomes known when a case of it is registered (here or, on a shared
ledger, by another gateway: read at start and whenever authorization looks a
case up). Any other code a request names is labelled `other`; a request
refused before its caller is known (no valid token) is labelled `unknown`.
Nothing a caller sends can add a label value.

Metrics with a court label subscribe (`COURTS.subscribe`) to create their
series at zero for each court as it becomes known, before it can count.
"""

import logging
import re
from collections.abc import Callable, Iterable

import grpc

logger = logging.getLogger(__name__)

REJECTED = "rejected"
# The door's refusals, by the code it refuses with.
REFUSALS = {
    grpc.StatusCode.UNAUTHENTICATED: "unauthenticated",
    grpc.StatusCode.PERMISSION_DENIED: "denied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "rate_limited",
    grpc.StatusCode.NOT_FOUND: "unknown_case",
    grpc.StatusCode.UNAVAILABLE: "unavailable",
}
DOOR_OUTCOMES = tuple(REFUSALS.values())


def refusal_outcome(code: grpc.StatusCode) -> str:
    # Any other code the door might one day refuse with is still a denial.
    return REFUSALS.get(code, "denied")


OTHER = "other"
UNKNOWN = "unknown"
# validation.py's rule for a court code; anything else is never a label.
_COURT_CODE = re.compile(r"[0-9A-Z]{3,12}")
# China has about 3,500 courts; past this, something is wrong: stop adding.
MAX_COURTS = 5_000


class CourtLabels:
    """The known court codes, and who creates series when one is added."""

    def __init__(self, limit: int = MAX_COURTS):
        self._known: set[str] = set()
        self._limit = limit
        self._subscribers: list[Callable[[str], None]] = []
        self._warned = False

    def label(self, court_code: str) -> str:
        """The `court` label of a request naming `court_code`."""
        return court_code if court_code in self._known else OTHER

    def __contains__(self, court_code: str) -> bool:
        return court_code in self._known

    def add(self, court_code: str) -> None:
        """A registered case's court: from now on its own label value."""
        if court_code in self._known or not _COURT_CODE.fullmatch(court_code):
            return
        if len(self._known) >= self._limit:
            if not self._warned:
                self._warned = True
                logger.warning("more than %d courts have registered cases; the rest are labelled %r", self._limit, OTHER)
            return
        self._known.add(court_code)
        for create_series in self._subscribers:
            create_series(court_code)

    def add_all(self, court_codes: Iterable[str]) -> None:
        for court_code in court_codes:
            self.add(court_code)

    def subscribe(self, create_series: Callable[[str], None]) -> None:
        """Call `create_series(label)` for OTHER, UNKNOWN and every court known now and later."""
        self._subscribers.append(create_series)
        for label in (OTHER, UNKNOWN, *sorted(self._known)):
            create_series(label)


# One per process, as the metrics are.
COURTS = CourtLabels()
