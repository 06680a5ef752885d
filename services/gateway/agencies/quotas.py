"""Agency quotas and call priority: the one place that decides when a call to an agency may start.

Banks cap the court queries they accept (DOMAIN.md, "Agency quotas"): a
registry entry may set `max_concurrent` (calls at once) and
`max_calls_per_second`. Every call to the agency (`AgencyCall`, queries
and control actions, interactive or batch) takes a slot here first, so the
agency never sees more than its caps from this gateway process. Waiting
calls are served by priority, then in arrival order: an executor's
interactive query goes before every batch call waiting for the same agency,
so a 10,000-case batch never stands between an executor and an answer.

The priority of a call is a context variable (`PRIORITY`), set once by whoever
starts the work (the batch runner sets BATCH for its items' tasks), so it
needs threading through no signature; tasks inherit it when they are made.

Metrics, created at zero for each agency with a quota: calls waiting by
priority, and the time spent waiting.
"""

import asyncio
import contextvars
import heapq
import itertools
import time

from prometheus_client import Gauge, Histogram

INTERACTIVE, BATCH = "interactive", "batch"
PRIORITIES = (INTERACTIVE, BATCH)
_RANK = {INTERACTIVE: 0, BATCH: 1}
PRIORITY: contextvars.ContextVar[str] = contextvars.ContextVar("agency_call_priority", default=INTERACTIVE)

QUOTA_QUEUE = Gauge(
    "chakong_gateway_agency_quota_queue_depth",
    "Calls waiting for a slot of the agency's quota (max_concurrent, max_calls_per_second), by priority.",
    ["agency_id", "priority"],
    multiprocess_mode="livesum",
)
QUOTA_WAIT_SECONDS = Histogram(
    "chakong_gateway_agency_quota_wait_seconds",
    "Time a call waited for a slot of the agency's quota before it was made, by priority.",
    ["agency_id", "priority"],
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)


class AgencyQuota:
    """At most `max_concurrent` calls at once and `per_second` calls a second (0: no such cap)."""

    def __init__(self, agency_id: str, max_concurrent: int = 0, per_second: float = 0.0):
        self.agency_id = agency_id
        self.max_concurrent = max_concurrent
        self.per_second = per_second
        self.in_use = 0
        # Token bucket: a burst of at most one second's worth.
        self._capacity = max(1.0, per_second)
        self._tokens = self._capacity
        self._refilled = time.monotonic()
        self._waiters: list[tuple[int, int, asyncio.Future]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._queue = {p: QUOTA_QUEUE.labels(agency_id, p) for p in PRIORITIES}
        self._waits = {p: QUOTA_WAIT_SECONDS.labels(agency_id, p) for p in PRIORITIES}

    @classmethod
    def of(cls, agency_id: str, max_concurrent: int, per_second: float) -> "AgencyQuota | None":
        """None where the entry sets no cap: such calls pay nothing here."""
        if max_concurrent <= 0 and per_second <= 0:
            return None
        return cls(agency_id, max_concurrent, per_second)

    def _refill(self, now: float) -> None:
        if self.per_second > 0:
            self._tokens = min(self._capacity, self._tokens + (now - self._refilled) * self.per_second)
        self._refilled = now

    def _free(self, now: float) -> bool:
        if self.max_concurrent and self.in_use >= self.max_concurrent:
            return False
        if self.per_second > 0:
            self._refill(now)
            return self._tokens >= 1.0
        return True

    def _take(self) -> None:
        self.in_use += 1
        if self.per_second > 0:
            self._tokens -= 1.0

    async def acquire(self) -> None:
        priority = PRIORITY.get()
        now = time.monotonic()
        if not self._waiters and self._free(now):
            self._take()
            self._waits[priority].observe(0.0)
            return
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (_RANK[priority], next(self._order), future))
        gauge = self._queue[priority]
        gauge.inc()
        try:
            self._dispatch()
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                # Granted in the same instant it was cancelled: hand the slot on.
                self.release()
            raise
        finally:
            gauge.dec()
            self._waits[priority].observe(time.monotonic() - now)

    def release(self) -> None:
        self.in_use -= 1
        self._dispatch()

    def _dispatch(self) -> None:
        """Grant slots to the first waiters while the quota has room; wake again when a token is due."""
        now = time.monotonic()
        while self._waiters:
            future = self._waiters[0][2]
            if future.done():  # cancelled while waiting
                heapq.heappop(self._waiters)
                continue
            if not self._free(now):
                break
            heapq.heappop(self._waiters)
            self._take()
            future.set_result(None)
        if self._waiters and self.per_second > 0 and (not self.max_concurrent or self.in_use < self.max_concurrent):
            if self._timer is None:
                delay = max(0.0, (1.0 - self._tokens) / self.per_second)
                self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch()
