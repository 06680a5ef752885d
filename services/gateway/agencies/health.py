"""Agency health as the gateway sees it: eject after consecutive failures, probe after a cool-down, readmit.

closed (admitted) --N consecutive UNAVAILABLE/DEADLINE_EXCEEDED/TIMEOUT--> ejected
closed (admitted) --no call for the idle interval, then a failed health Check--> ejected
ejected --cool-down over--> probe (gRPC health Check on the agency's channel)
probe SERVING --> admitted; probe failed --> ejected again, cool-down doubled up to the cap.

The idle probe is what makes an agency that dies at night show as down
(chakong_gateway_agency_up, the alert on it) before the next query finds out.

While ejected the fan-out answers UNAVAILABLE for the agency at once instead
of spending the query deadline on it, and control actions stay PENDING for
the re-driver.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.gateway.agencies.metrics import AGENCY_EJECTIONS, AGENCY_UP, TIMEOUT, forget_agency

logger = logging.getLogger(__name__)

# Outcomes that say the agency may be down; any answer at all (even a refusal) says it is up.
FAILURE_OUTCOMES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", TIMEOUT})
UP = "up"
EJECTED = "ejected"


@dataclass(frozen=True)
class EjectionPolicy:
    failures: int = 3
    cooldown_s: float = 5.0
    max_cooldown_s: float = 60.0
    # Health-check an admitted agency no call has reached for this long; 0: never.
    idle_probe_s: float = 10.0


def ejection_policy(settings) -> EjectionPolicy:
    """From GatewaySettings."""
    return EjectionPolicy(
        failures=settings.eject_after_failures,
        cooldown_s=settings.eject_cooldown_seconds,
        max_cooldown_s=max(settings.eject_cooldown_seconds, settings.eject_cooldown_max_seconds),
        idle_probe_s=settings.idle_probe_seconds,
    )


class AgencyHealth:
    """One agency's admission state; owned by its AgencyClient, kept across registry reloads."""

    def __init__(self, agency_id: str, channel: grpc.aio.Channel, timeout_s: float, policy: EjectionPolicy,
                 *, endpoint: str = "", on_change: Callable[[], None] | None = None):
        self.agency_id = agency_id
        # One endpoint of an agency with several (agencies/replicas.py): named in the logs, and the agency's
        # up gauge is theirs together (`on_change` is told of every ejection and readmission).
        self._who = f"{agency_id} endpoint {endpoint}" if endpoint else agency_id
        self._on_change = on_change
        self.policy = policy
        self._channel = channel
        self._probe_timeout_s = timeout_s
        self._failures = 0
        # Ejections in a row without a successful probe: the next cool-down doubles.
        self._streak = 0
        self._ejected_until = 0.0  # time.monotonic(); 0 while admitted
        self._ejected_until_wall = 0.0
        self._prober: asyncio.Task | None = None
        # Closed when the agency leaves the registry or is replaced: late outcomes no longer count.
        self._closed = False
        self._up = AGENCY_UP.labels(agency_id)
        self._ejections = AGENCY_EJECTIONS.labels(agency_id)
        if on_change is None:
            self._up.set(1)
        self._last_heard = time.monotonic()
        self._idle_watch: asyncio.Task | None = None
        if policy.idle_probe_s > 0:
            self._idle_watch = asyncio.get_running_loop().create_task(
                self._watch_idle(), name=f"idle probe {agency_id}"
            )

    @property
    def ejected(self) -> bool:
        return self._ejected_until != 0.0

    @property
    def state(self) -> str:
        return EJECTED if self.ejected else UP

    @property
    def ejected_until(self) -> str:
        """RFC 3339 UTC end of the current cool-down, or "" while admitted."""
        if not self.ejected:
            return ""
        return datetime.fromtimestamp(self._ejected_until_wall, timezone.utc).isoformat(timespec="milliseconds")

    def refusal(self) -> str:
        """The message for a call not made because the agency is ejected."""
        return f"UNAVAILABLE: agency {self.agency_id} ejected until {self.ejected_until} after repeated failures"

    def record(self, outcome: str) -> None:
        """Count one call's outcome (a gRPC code name, OK, or TIMEOUT)."""
        if self._closed:
            return
        self._last_heard = time.monotonic()
        if outcome not in FAILURE_OUTCOMES:
            self._failures = 0
            return
        self._failures += 1
        if not self.ejected and self._failures >= self.policy.failures:
            self._eject(f"{self._failures} consecutive failures, the last {outcome}")

    def _eject(self, why: str) -> None:
        cooldown = min(self.policy.max_cooldown_s, self.policy.cooldown_s * 2 ** min(self._streak, 16))
        self._streak += 1
        self._ejected_until = time.monotonic() + cooldown
        self._ejected_until_wall = time.time() + cooldown
        self._changed(0)
        self._ejections.inc()
        logger.warning(
            "agency %s ejected for %.1f s: %s", self._who, cooldown, why,
            extra={"agency": self.agency_id, "cooldown_s": cooldown},
        )
        if self._prober is None or self._prober.done():
            self._prober = asyncio.get_running_loop().create_task(
                self._probe_loop(), name=f"probe {self.agency_id}"
            )

    def _readmit(self) -> None:
        self._failures = 0
        self._streak = 0
        self._ejected_until = 0.0
        self._ejected_until_wall = 0.0
        self._changed(1)
        logger.info("agency %s readmitted: health check SERVING", self._who, extra={"agency": self.agency_id})

    def _changed(self, up: int) -> None:
        if self._on_change is None:
            self._up.set(up)
        else:
            self._on_change()

    async def _check(self, stub: health_pb2_grpc.HealthStub, *, wait_for_ready: bool) -> tuple[bool, str]:
        """(serving, what the health check said); raises grpc.aio.UsageError once the channel is closed."""
        try:
            answer = await stub.Check(
                health_pb2.HealthCheckRequest(service=""),
                timeout=max(self._probe_timeout_s, 0.5),
                wait_for_ready=wait_for_ready,
            )
        except grpc.aio.AioRpcError as exc:
            return False, f"health check {exc.code().name}"
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
        return answer.status == health_pb2.HealthCheckResponse.SERVING, f"health check {status}"

    async def _probe_loop(self) -> None:
        stub = health_pb2_grpc.HealthStub(self._channel)
        while self.ejected:
            await asyncio.sleep(max(0.0, self._ejected_until - time.monotonic()))
            try:
                # wait_for_ready: a channel in reconnect backoff connects for the probe
                # instead of failing it at once.
                serving, why = await self._check(stub, wait_for_ready=True)
            except grpc.aio.UsageError:  # the channel was closed: the agency left the registry
                return
            if serving:
                self._readmit()
            else:
                self._ejected_until = 0.0
                self._eject(f"probe failed: {why}")

    async def _watch_idle(self) -> None:
        """Health-check an admitted agency that no call has reached for the idle interval."""
        stub = health_pb2_grpc.HealthStub(self._channel)
        interval = self.policy.idle_probe_s
        while True:
            # Calls speak for the agency while they come; the prober while it is ejected.
            await asyncio.sleep(interval if self.ejected else max(0.0, self._last_heard + interval - time.monotonic()))
            if self._closed:
                return
            if self.ejected or time.monotonic() - self._last_heard < interval:
                continue
            try:
                # No wait_for_ready: a channel that cannot connect is the answer.
                serving, why = await self._check(stub, wait_for_ready=False)
            except grpc.aio.UsageError:
                return
            self._last_heard = time.monotonic()
            if not serving and not self.ejected and not self._closed:
                self._eject(f"idle probe failed: {why}")

    async def close(self, *, forget: bool = False) -> None:
        """Stop probing; `forget`: the agency left the registry, so drop its series too."""
        self._closed = True
        for task in (self._prober, self._idle_watch):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._prober = self._idle_watch = None
        if forget:
            forget_agency(self.agency_id)
