"""Hedged queries: a second attempt at an agency that has not answered within its usual time; the first answer wins.

Only read-only calls are hedged (the agency's query: agencies/clients.py
wraps it); control calls never are. After the hedge delay, a second attempt
goes out, to another admitted endpoint where the agency has several
(agencies/replicas.py), otherwise on the same channel. Whichever answers
first is the answer; the other attempt is cancelled (the agency sees the
cancellation) and counted CANCELLED, with no blame on the agency's health.
If one attempt fails, the other may still answer.

The delay is a fixed `hedge_delay_ms` from the registry entry, or by
default the HEDGE_PERCENTILE of the agency's recent latencies (the last
`window` answers, recomputed every `refresh` of them; none before
`min_samples`). A budget caps the extra calls, like gRFC A6's retry
throttling: every query earns `budget_ratio` of a token (up to
`max_tokens`), a hedge spends one, and a failed or cut-off attempt takes
one away. So hedges stay below `budget_ratio` of the calls over any long
window, and an agency that is failing earns no hedges at all.

The common path costs one timer: the first attempt runs in the caller's
own task; only a hedge that goes out gets a task of its own. When it
answers first, it cancels the caller's wait for the first attempt (as
asyncio.timeout does), which cancels that call.
"""

import asyncio
import time
from dataclasses import dataclass

from services.gateway.agencies.calls import AgencyCall, blame_again, cancel_unblamed, unblamed, unblamed_outcome
from services.gateway.agencies.metrics import AGENCY_HEDGES
from services.gateway.agencies.quotas import INTERACTIVE, PRIORITY


@dataclass(frozen=True)
class HedgePolicy:
    # Hedge agencies whose registry entry does not say (its `hedge` field overrides).
    enabled: bool = True
    # The delay: this percentile of recent latencies. 0.97 hedges about 3% of calls, inside the budget.
    percentile: float = 0.97
    budget_ratio: float = 0.05
    max_tokens: float = 10.0
    window: int = 200
    refresh: int = 20
    min_samples: int = 50
    # Never hedge sooner than this: below it a second attempt costs more than it can save.
    min_delay_s: float = 0.002


def hedge_policy(settings) -> HedgePolicy:
    """From GatewaySettings."""
    return HedgePolicy(
        enabled=settings.hedge_queries,
        percentile=settings.hedge_percentile / 100,
        budget_ratio=settings.hedge_budget_percent / 100,
    )


class HedgeBudget:
    """Tokens for hedges: earned by calls, spent by hedges, lost to failures (gRFC A6's throttling, for hedges)."""

    __slots__ = ("ratio", "max_tokens", "tokens")

    def __init__(self, ratio: float, max_tokens: float):
        self.ratio = ratio
        self.max_tokens = max_tokens
        self.tokens = 0.0

    def earn(self) -> None:
        tokens = self.tokens + self.ratio
        self.tokens = tokens if tokens < self.max_tokens else self.max_tokens

    def failed(self) -> None:
        self.tokens = max(0.0, self.tokens - 1.0)

    def spend(self) -> bool:
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class LatencyWindow:
    """The last `window` answer times of an agency and a percentile of them, recomputed now and then."""

    __slots__ = ("_samples", "_size", "_next", "_count", "_refresh", "_percentile", "_min_samples", "_floor",
                 "value")

    def __init__(self, policy: HedgePolicy):
        self._samples: list[float] = []
        self._size = policy.window
        self._next = 0
        self._count = 0
        self._refresh = policy.refresh
        self._percentile = policy.percentile
        self._min_samples = policy.min_samples
        self._floor = policy.min_delay_s
        # None until there are enough samples: no hedging on a guess.
        self.value: float | None = None

    def add(self, seconds: float) -> None:
        samples = self._samples
        if len(samples) < self._size:
            samples.append(seconds)
        else:
            samples[self._next] = seconds
            self._next = (self._next + 1) % self._size
        self._count += 1
        if self._count % self._refresh == 0 and len(samples) >= self._min_samples:
            ordered = sorted(samples)
            self.value = max(self._floor, ordered[min(len(ordered) - 1, int(self._percentile * len(ordered)))])


class _Race:
    __slots__ = ("hedge", "settled", "won")

    def __init__(self):
        self.hedge: asyncio.Task | None = None
        # The first attempt has returned or failed: a hedge answering now must not interrupt the caller.
        self.settled = False
        self.won = False


class HedgedCall:
    """An agency's query with hedging; called like the AgencyCall (or BalancedCall) it wraps."""

    __slots__ = ("agency_id", "method", "_primary", "_pick", "_budget", "_latency", "_fixed_delay_s",
                 "_sent", "_won", "_exhausted")

    def __init__(self, primary, policy: HedgePolicy, *, fixed_delay_s: float = 0.0):
        # primary: an AgencyCall, or a BalancedCall whose pick() chooses the endpoint for each attempt.
        self.agency_id = primary.agency_id
        self.method = primary.method
        self._primary = primary
        self._pick = getattr(primary, "pick", None)
        self._budget = HedgeBudget(policy.budget_ratio, policy.max_tokens)
        self._latency = LatencyWindow(policy)
        self._fixed_delay_s = fixed_delay_s
        self._sent = AGENCY_HEDGES.labels(self.agency_id, "sent")
        self._won = AGENCY_HEDGES.labels(self.agency_id, "won")
        self._exhausted = AGENCY_HEDGES.labels(self.agency_id, "budget_exhausted")

    @property
    def delay_s(self) -> float | None:
        """How long the first attempt has before a hedge is due; None: no hedging yet."""
        return self._fixed_delay_s or self._latency.value

    def skipped(self) -> None:
        self._primary.skipped()

    async def __call__(self, request, *, timeout: float, **options):
        first: AgencyCall = self._pick() if self._pick is not None else self._primary
        if PRIORITY.get() != INTERACTIVE:
            # Hedges buy an executor's tail latency. Batch and late-answer calls
            # wait out their answer window instead, and a second call would
            # spend the agency's quota twice and ask a row's agency twice.
            return await first(request, timeout=timeout, **options)
        self._budget.earn()
        delay = self.delay_s
        start = time.perf_counter()
        if delay is None or delay >= timeout:
            try:
                response = await first(request, timeout=timeout, **options)
            except BaseException as exc:
                self._failed(exc)
                raise
            self._latency.add(time.perf_counter() - start)
            return response
        owner = asyncio.current_task()
        race = _Race()
        timer = asyncio.get_running_loop().call_later(
            delay, self._fire, race, owner, first, request, timeout - delay, options
        )
        try:
            try:
                response = await first(request, timeout=timeout, **options)
            except asyncio.CancelledError:
                if not race.won:
                    raise
                # The hedge answered first and cancelled this wait (and with it the first attempt).
                blame_again(owner)
                if owner.uncancel() > 0:
                    raise  # cancelled for another reason as well
                self._won.inc()
                self._latency.add(time.perf_counter() - start)
                return race.hedge.result()
            except Exception:
                race.settled = True
                hedge = race.hedge
                if hedge is None or hedge.done() and (hedge.cancelled() or hedge.exception() is not None):
                    raise
                # The first attempt failed; the hedge may still answer.
                self._budget.failed()
                response = await hedge
                self._won.inc()
                self._latency.add(time.perf_counter() - start)
                return response
            race.settled = True
            self._latency.add(time.perf_counter() - start)
            return response
        except BaseException as exc:
            self._failed(exc)
            raise
        finally:
            race.settled = True
            timer.cancel()
            hedge = race.hedge
            if hedge is not None and not hedge.done():
                # Lost the race, or the caller is gone: no blame. Cut off by the deadline: a timeout.
                if not owner.cancelling():
                    cancel_unblamed(hedge)
                else:
                    # As its caller's cancellation counts (calls.py cancel_unblamed).
                    outcome = unblamed_outcome(owner)
                    if outcome is None:
                        hedge.cancel()
                    else:
                        cancel_unblamed(hedge, outcome)

    def _fire(self, race: _Race, owner: asyncio.Task, first: AgencyCall, request, timeout: float, options) -> None:
        """The hedge delay passed with no answer: send the second attempt if the budget allows."""
        if race.settled:
            return
        if not self._budget.spend():
            self._exhausted.inc()
            return
        second = self._pick(avoid=first) if self._pick is not None else first
        self._sent.inc()
        race.hedge = hedge = asyncio.get_running_loop().create_task(second(request, timeout=timeout, **options))
        hedge.add_done_callback(lambda task: self._hedge_done(task, race, owner))

    def _hedge_done(self, hedge: asyncio.Task, race: _Race, owner: asyncio.Task) -> None:
        if hedge.cancelled():
            return
        if hedge.exception() is not None:
            if not race.settled:  # else the caller awaits it and counts the failure
                self._budget.failed()
            return
        if race.settled:
            return
        race.won = True
        cancel_unblamed(owner)

    def _failed(self, exc: BaseException) -> None:
        # A caller going away (an unblamed cancellation) says nothing about the agency.
        if not isinstance(exc, asyncio.CancelledError) or not unblamed(asyncio.current_task()):
            self._budget.failed()
