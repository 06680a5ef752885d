"""One instrumented agency call and the one retry policy shape, for queries and control actions alike.

`AgencyCall` is one method on one agency's channel: each attempt is
counted and timed in the agency's metric children (the request ID as the
duration's exemplar) and reported to its health (which ejects it after
repeated failures); a call not made because the agency is ejected is
counted too (`skipped`), and an answer its caller's check refuses counts
as INVALID_RESPONSE. `RetryPolicy` retries
only codes that prove the call did not take effect (or, for control calls,
that the idempotency key makes safe), and only while the caller's deadline
leaves room for another attempt.
"""

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from services.common.answers import INVALID_RESPONSE
from services.common.logs import request_id_var
from services.gateway.agencies.methods import AgencyMethod
from services.gateway.agencies.metrics import EJECTED, TIMEOUT, agency_call_metrics, exemplar


# Tasks cancelled with no blame on the agency, and what their calls count as: CANCELLED when the caller
# went away or another attempt answered first, TIMEOUT when a deadline shorter than the agency's own timeout
# cut them off. Such calls tell the agency's health nothing; any other cancellation is a TIMEOUT that does.
_UNBLAMED: "weakref.WeakKeyDictionary[asyncio.Task, str]" = weakref.WeakKeyDictionary()
CANCELLED = "CANCELLED"


def cancel_unblamed(task: asyncio.Task, outcome: str = CANCELLED) -> None:
    """Cancel `task`; the agency calls it is waiting for count as `outcome` and are not the agency's failure."""
    _UNBLAMED[task] = outcome
    task.cancel()


def unblamed(task: asyncio.Task | None) -> bool:
    return task in _UNBLAMED


def unblamed_outcome(task: asyncio.Task | None) -> str | None:
    """What an unblamed cancellation of `task` counts as; None if it was not one."""
    return _UNBLAMED.get(task)


def blame_again(task: asyncio.Task) -> None:
    """`task` goes on after an unblamed cancellation it caught (agencies/hedging.py): later ones are timeouts."""
    _UNBLAMED.pop(task, None)


class NoTimeLeft(Exception):
    """The deadline passed before a call could be made."""


class InvalidResponse(Exception):
    """The agency answered with a reply that breaks the contract: no answer at all, for the caller.

    `problem` says which rule ("<field path>: <rule>")."""

    def __init__(self, problem: str):
        super().__init__(problem)
        self.problem = problem


class StopNearDeadline(stop_base):
    """Stop retrying when the backoff would leave less than `min_attempt_s` for another call."""

    def __init__(self, deadline: float, min_attempt_s: float):
        self.deadline = deadline
        self.min_attempt_s = min_attempt_s

    def __call__(self, retry_state: RetryCallState) -> bool:
        return time.monotonic() + retry_state.upcoming_sleep + self.min_attempt_s > self.deadline


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    # A retry has to leave room for a round trip to be worth making.
    min_attempt_s: float
    backoff: wait_base
    codes: frozenset[grpc.StatusCode]

    def retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in self.codes

    async def run(
        self, attempt: Callable[[], Awaitable], deadline: float, *, first_error: BaseException | None = None
    ):
        """`attempt()` until it succeeds, fails for good, or the deadline (time.monotonic()) is near.

        `first_error`: an attempt already made and failed with it (the fast
        path tries once without tenacity); its count and backoff still apply.
        """
        already_failed = [first_error] if first_error is not None else []

        async def next_attempt():
            if already_failed:
                raise already_failed.pop()
            return await attempt()

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts) | StopNearDeadline(deadline, self.min_attempt_s),
            wait=self.backoff,
            retry=retry_if_exception(self.retryable),
            reraise=True,
        )
        return await retrying(next_attempt)


class AgencyCall:
    """One method on one agency's channel; calling it makes one instrumented attempt."""

    __slots__ = ("agency_id", "method", "_call", "_metrics", "_health", "_quota")

    def __init__(self, agency_id: str, channel: grpc.aio.Channel, health, method: AgencyMethod, *, encoded: bool,
                 quota=None):
        self.agency_id = agency_id
        self.method = method
        # encoded: the caller passes request bytes (a query, encoded once for every agency).
        self._call = channel.unary_unary(
            method.path,
            request_serializer=None if encoded else method.request_type.SerializeToString,
            response_deserializer=method.response_type.FromString,
            _registered_method=True,
        )
        self._metrics = agency_call_metrics(agency_id, method.method_name)
        self._health = health
        # The agency's quota and call priority (agencies/quotas.py), shared by its methods; None: no cap.
        self._quota = quota

    def skipped(self) -> None:
        """Count a call not made because the agency is ejected (no health report: nothing was heard)."""
        self._metrics.outcome(EJECTED).inc()

    async def __call__(self, request, *, timeout: float, check: Callable[[object], str | None] | None = None,
                       caller_deadline: bool = False, **call_options):
        """One attempt; `check(response)` returns what is wrong with an answer (InvalidResponse) or None.

        `caller_deadline`: `timeout` is what the caller's deadline left, less than the agency's own timeout,
        so a DEADLINE_EXCEEDED is the caller's short wait, not the agency's failure (its health is not told)."""
        quota = self._quota
        if quota is not None:
            await quota.acquire()
        metrics = self._metrics
        outcome = "UNKNOWN"
        blamed = True
        metrics.in_flight.inc()
        start = time.perf_counter()
        try:
            response = await self._call(request, timeout=timeout, **call_options)
            found = check(response) if check is not None else None
            if found is not None:
                outcome = INVALID_RESPONSE
                raise InvalidResponse(found)
            outcome = "OK"
            return response
        except grpc.aio.AioRpcError as exc:
            outcome = exc.code().name
            raise
        except asyncio.CancelledError:
            # Cut off by a query deadline (TIMEOUT), or not the agency's doing (cancel_unblamed).
            found = unblamed_outcome(asyncio.current_task())
            if found is None:
                outcome = TIMEOUT
            else:
                outcome, blamed = found, False
            raise
        finally:
            if quota is not None:
                quota.release()
            metrics.in_flight.dec()
            metrics.seconds.observe(time.perf_counter() - start, exemplar(request_id_var.get()))
            metrics.outcome(outcome).inc()
            if blamed and not (caller_deadline and outcome == "DEADLINE_EXCEEDED"):
                self._health.record(outcome)
