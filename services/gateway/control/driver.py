"""Driving a recorded action: call its agency until it answers, record the outcome once; re-drive what is left PENDING.

A drive holds the action's lease in the ledger. It retries only UNAVAILABLE
and DEADLINE_EXCEEDED at once, with the same agency key (a call that timed
out may have taken effect; the key makes the retry safe), within the control
deadline. When no answer came, or the answer breaks the contract
(services/common/answers.py reply_problem: a freeze without freeze_id would
leave a hold nobody can act on), the action stays PENDING and says why; the
re-driver takes it up again with the same key, at start-up and periodically,
under a lease so that two gateways sharing a ledger rarely drive the same
action at once (and, when they do, the agency's key makes it harmless).
"""

import asyncio
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable

import grpc
from google.protobuf import json_format
from tenacity.wait import wait_random_exponential

from services.common.answers import INVALID_RESPONSE, reply_problem
from services.common.logs import request_id_var
from services.gateway.agencies.calls import InvalidResponse, NoTimeLeft, RetryPolicy
from services.gateway.agencies.clients import AgencyClients
from services.gateway.agencies.methods import CONTROL_METHODS
from services.gateway.config import GatewaySettings
from services.gateway.control.messages import kind_label, to_json
from services.gateway.control.metrics import ACTIONS_PENDING, count_action
from services.gateway.control.outcomes import count_money, hold_change
from services.gateway.ledger import PENDING, REFUSED, SUCCEEDED, ActionRecord, Ledger

logger = logging.getLogger(__name__)

# Codes by which an agency refuses: a rule, not a fault; retrying cannot help.
REFUSAL_CODES = frozenset({
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.UNIMPLEMENTED,
})
# Codes retried at once with the same key. DEADLINE_EXCEEDED may have taken
# effect: only the key makes its retry safe. Every other code (INTERNAL,
# UNKNOWN, RESOURCE_EXHAUSTED, ...) leaves the action for the re-driver.
CONTROL_RETRIES = RetryPolicy(
    max_attempts=5,
    min_attempt_s=0.05,
    backoff=wait_random_exponential(multiplier=0.05, max=1.0),
    codes=frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}),
)
# The re-driver waits longer after each drive that got no answer, up to this.
MAX_REDRIVE_BACKOFF_S = 300.0
REDRIVE_BATCH = 100


class CrashPoint:
    """CHAKONG_CRASH_AT, for tests only: SIGKILL this process the first time
    it reaches the named point, to prove that a crash between intent and
    outcome loses and doubles nothing. Never set it in production."""

    def __init__(self, point: str):
        self.point = point
        if point:
            logger.critical(
                "TEST ONLY: CHAKONG_CRASH_AT=%s: this gateway will kill itself (SIGKILL) at %s of its first"
                " action. Never set this outside tests.", point, point,
            )

    def __call__(self, name: str, action_id: str) -> None:
        if name == self.point:
            logger.critical("TEST ONLY: CHAKONG_CRASH_AT=%s reached for action %s: SIGKILL now", name, action_id)
            for handler in logging.getLogger().handlers:
                handler.flush()
            os.kill(os.getpid(), signal.SIGKILL)



class Driver:
    """Drives this gateway's actions and re-drives what is due; `start()` begins re-driving, `close()` stops it."""

    def __init__(self, ledger: Ledger, clients: AgencyClients, settings: GatewaySettings, now_us: Callable[[], int]):
        self.ledger = ledger
        self.clients = clients
        self.settings = settings
        self.now_us = now_us
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_us = int(settings.lease_seconds * 1_000_000)
        self.deadline_s = settings.control_deadline_ms / 1000
        self.attempt_timeout_s = settings.control_attempt_timeout_ms / 1000
        self.crash = CrashPoint(settings.crash_at)
        # One drive per action in this process; callers of the same action share it.
        self._driving: dict[str, asyncio.Task] = {}
        self._redriver: asyncio.Task | None = None

    async def start(self) -> None:
        self._redriver = asyncio.create_task(self._redrive_loop(), name="ledger re-driver")

    async def close(self) -> None:
        if self._redriver is not None:
            self._redriver.cancel()
            await asyncio.gather(self._redriver, return_exceptions=True)
            self._redriver = None
        drives = list(self._driving.values())
        if drives:
            # Whatever has not finished stays PENDING; another gateway (or
            # this one, restarted) drives it again with the same key.
            _, unfinished = await asyncio.wait(drives, timeout=self.settings.grace_seconds)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        try:
            released = await self.ledger.release_leases(self.owner)
            if released:
                logger.info("handed %d pending action(s) back for re-driving", released)
        except Exception:
            logger.warning("could not release this gateway's leases; they run out by themselves", exc_info=True)

    async def drive(self, record: ActionRecord, *, leased: bool) -> ActionRecord:
        """Drive a PENDING action, join the drive of it already running here,
        or wait for whoever holds its lease; the drive survives the caller
        going away. `leased`: this gateway holds the lease already.

        Only a lease holder registers a drive, so a caller that is merely
        waiting is never mistaken for the driver."""
        task = self._driving.get(record.action_id)
        if task is None and not leased:
            now_us = self.now_us()
            claimed = await self.ledger.claim(
                record.action_id, owner=self.owner, now_us=now_us, lease_until_us=now_us + self.lease_us,
                unowned_ok=True,
            )
            task = self._driving.get(record.action_id)
            if task is None:
                if claimed is None:
                    return await self._wait_for_outcome(record)
                record = claimed
        if task is None:
            task = asyncio.create_task(self._drive(record), name=f"drive {record.action_id}")
            self._driving[record.action_id] = task
            task.add_done_callback(lambda _, action_id=record.action_id: self._driving.pop(action_id, None))
        return await asyncio.shield(task)

    async def _drive(self, record: ActionRecord) -> ActionRecord:
        """Call the agency until it answers; record the outcome. Holds the lease."""
        # Its own task: the action ID is what the agency logs (x-request-id) and
        # what the call's duration carries as its exemplar.
        request_id_var.set(record.action_id)
        label = kind_label(record.kind)
        method = CONTROL_METHODS[record.agency_method]
        client = self.clients.by_id.get(record.agency_id)
        if client is None:
            return await self._still_pending(
                record, 0, "UNAVAILABLE", f"agency {record.agency_id} is not in the agency registry"
            )
        call = client.call(method)
        if client.health.ejected:
            # PENDING, not REFUSED: the agency has not seen the call; the re-driver makes it later.
            call.skipped()
            return await self._still_pending(record, 0, "UNAVAILABLE", client.health.refusal())
        request = json_format.Parse(record.agency_request, method.request_type())
        deadline = time.monotonic() + self.deadline_s
        attempts = 0

        async def attempt():
            nonlocal attempts
            timeout = min(self.attempt_timeout_s, deadline - time.monotonic())
            if timeout < CONTROL_RETRIES.min_attempt_s:
                raise NoTimeLeft
            attempts += 1
            try:
                # wait_for_ready: a channel reconnecting after a reset waits
                # (within the timeout) instead of failing the attempt at once.
                return await call(
                    request, timeout=timeout, metadata=(("x-request-id", record.action_id),), wait_for_ready=True,
                    check=lambda reply: reply_problem(method.method_name, request, reply),
                )
            except grpc.aio.AioRpcError as exc:
                if CONTROL_RETRIES.retryable(exc):
                    logger.info("action %s: %s attempt %d: %s %s; retrying with the same key",
                                record.action_id, record.agency_id, record.attempts + attempts,
                                exc.code().name, exc.details())
                raise

        try:
            response = await CONTROL_RETRIES.run(attempt, deadline)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code not in REFUSAL_CODES:
                return await self._still_pending(record, attempts, code.name, exc.details() or "")
            self.crash("after_agency_call", record.action_id)
            done = await self.ledger.record_outcome(
                record, state=REFUSED, result="", error_code=code.name, error_message=exc.details() or "",
                attempts=attempts, now_us=self.now_us(),
            )
            if done is not None:
                count_action(label, "refused", record.court_code)
                logger.info("action %s (%s) REFUSED by %s: %s %s", record.action_id, label, record.agency_id,
                            code.name, exc.details(), extra={"action_id": record.action_id})
        except InvalidResponse as exc:
            # Nothing is confirmed by a reply that breaks the contract: PENDING,
            # and the re-driver asks again with the same key.
            return await self._still_pending(
                record, attempts, INVALID_RESPONSE, f"the agency answered with an invalid response: {exc.problem}"
            )
        except NoTimeLeft:
            return await self._still_pending(
                record, attempts, "DEADLINE_EXCEEDED", f"no answer within the control deadline of {self.deadline_s:g} s"
            )
        else:
            self.crash("after_agency_call", record.action_id)
            done = await self.ledger.record_outcome(
                record, state=SUCCEEDED, result=to_json(response), error_code="", error_message="",
                attempts=attempts, now_us=self.now_us(), change=hold_change(record, response, self.clients),
            )
            if done is not None:
                count_action(label, "succeeded", record.court_code)
                count_money(record, response)
                logger.info("action %s (%s) SUCCEEDED at %s after %d attempt(s)", record.action_id, label,
                            record.agency_id, record.attempts + attempts, extra={"action_id": record.action_id})
        self.crash("after_outcome", record.action_id)
        # None: another driver recorded it first; the ledger has the one outcome.
        return done if done is not None else await self.ledger.action(record.action_id)

    async def _still_pending(self, record: ActionRecord, attempts: int, code: str, message: str) -> ActionRecord:
        total = record.attempts + attempts
        backoff_s = min(MAX_REDRIVE_BACKOFF_S, self.settings.redrive_interval_seconds * 2 ** min(total, 16))
        now_us = self.now_us()
        await self.ledger.record_failure(
            record, owner=self.owner, error_code=code, error_message=message, attempts=attempts,
            retry_at_us=now_us + int(backoff_s * 1_000_000), now_us=now_us,
        )
        count_action(kind_label(record.kind), "pending", record.court_code)
        logger.warning(
            "action %s (%s) still PENDING after %d attempt(s): %s %s; re-driven in %.1f s with the same key",
            record.action_id, kind_label(record.kind), total, code, message, backoff_s,
            extra={"action_id": record.action_id},
        )
        return await self.ledger.action(record.action_id) or record

    async def _wait_for_outcome(self, record: ActionRecord) -> ActionRecord:
        """Another gateway is driving it: wait for its outcome, within the control deadline."""
        deadline = time.monotonic() + self.deadline_s
        while True:
            current = await self.ledger.action(record.action_id)
            if current is None or current.state != PENDING or time.monotonic() > deadline:
                return current or record
            await asyncio.sleep(0.05)

    # Re-driving what a crash or an outage left PENDING

    async def _redrive_loop(self) -> None:
        while True:
            try:
                await self.redrive_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("re-driver: sweep failed; trying again in %.1f s",
                               self.settings.redrive_interval_seconds, exc_info=True)
            await asyncio.sleep(self.settings.redrive_interval_seconds)

    async def redrive_once(self) -> int:
        """Drive every PENDING action whose lease or retry wait is over; returns how many."""
        now_us = self.now_us()
        due = await self.ledger.due_actions(now_us, REDRIVE_BATCH)
        tasks = []
        for record in due:
            if record.action_id in self._driving:
                continue
            claimed = await self.ledger.claim(
                record.action_id, owner=self.owner, now_us=now_us, lease_until_us=now_us + self.lease_us,
                unowned_ok=False,
            )
            if claimed is None:
                continue
            logger.info(
                "re-driving action %s (%s, case %s, %d attempt(s) so far) with key %s",
                claimed.action_id, kind_label(claimed.kind), claimed.case_number, claimed.attempts,
                claimed.agency_key, extra={"action_id": claimed.action_id},
            )
            # Started now, not at the gather: registered as driving at once.
            tasks.append(asyncio.ensure_future(self.drive(claimed, leased=True)))
        if tasks:
            for result in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(result, BaseException):
                    logger.warning("re-driver: a drive failed: %r", result)
        ACTIONS_PENDING.set(await self.ledger.pending_count())
        return len(tasks)

