"""An agency reached at several endpoints (its replicas, a bank's two data centres, say).

Each endpoint has its own channel and its own health (agencies/health.py):
one that fails repeatedly is ejected and probed back on its own, while the
others go on answering. A call of the agency's (`BalancedCall`) makes each
attempt at the next admitted endpoint in turn: queries spread over the
endpoints, and a control call goes to one endpoint per attempt, so a retry
(with the same idempotency key: control/driver.py) reaches whichever
endpoint is next. The agency counts as ejected, and its up gauge is 0, only
while every endpoint is ejected. An agency with one endpoint has none of
this: its endpoint's channel, health and calls are the agency's.
"""

from collections.abc import Sequence

import grpc

from services.gateway.agencies.calls import AgencyCall
from services.gateway.agencies.health import UP, AgencyHealth
from services.gateway.agencies.methods import AgencyMethod
from services.gateway.agencies.metrics import AGENCY_UP


class Endpoint:
    """One address of an agency: its channel, its health, its calls (made once each)."""

    __slots__ = ("address", "channel", "health", "_calls")

    def __init__(self, address: str, channel: grpc.aio.Channel, health: AgencyHealth):
        self.address = address
        self.channel = channel
        self.health = health
        self._calls: dict[tuple[str, bool], AgencyCall] = {}

    def call(self, agency_id: str, method: AgencyMethod, *, encoded: bool = False, quota=None) -> AgencyCall:
        key = (method.name, encoded)
        call = self._calls.get(key)
        if call is None:
            call = self._calls[key] = AgencyCall(agency_id, self.channel, self.health, method, encoded=encoded,
                                                 quota=quota)
        return call


class ReplicaHealth:
    """The agency's admission over its endpoints: admitted while any endpoint is."""

    def __init__(self, agency_id: str, endpoints: Sequence[Endpoint]):
        self.agency_id = agency_id
        self.endpoints = tuple(endpoints)
        self._up = AGENCY_UP.labels(agency_id)
        self._up.set(1)

    def changed(self) -> None:
        """An endpoint was ejected or readmitted."""
        self._up.set(0 if self.ejected else 1)

    @property
    def ejected(self) -> bool:
        return all(endpoint.health.ejected for endpoint in self.endpoints)

    @property
    def state(self) -> str:
        return self.endpoints[0].health.state if self.ejected else UP

    @property
    def ejected_until(self) -> str:
        """While every endpoint is ejected: when the first cool-down ends (RFC 3339); else ""."""
        if not self.ejected:
            return ""
        return min(endpoint.health.ejected_until for endpoint in self.endpoints)

    def refusal(self) -> str:
        return (f"UNAVAILABLE: agency {self.agency_id} ejected until {self.ejected_until}: all"
                f" {len(self.endpoints)} endpoints failed repeatedly")

    async def close(self, *, forget: bool = False) -> None:
        for i, endpoint in enumerate(self.endpoints):
            # The agency's series go once, with the last endpoint.
            await endpoint.health.close(forget=forget and i == len(self.endpoints) - 1)


class BalancedCall:
    """One method of an agency over its endpoints: each attempt at the next admitted one, in turn."""

    __slots__ = ("agency_id", "method", "calls", "_healths", "_next")

    def __init__(self, agency_id: str, method: AgencyMethod, endpoints: Sequence[Endpoint], *, encoded: bool,
                 quota=None):
        self.agency_id = agency_id
        self.method = method
        self.calls = tuple(endpoint.call(agency_id, method, encoded=encoded, quota=quota) for endpoint in endpoints)
        self._healths = tuple(endpoint.health for endpoint in endpoints)
        self._next = 0

    def pick(self, avoid: AgencyCall | None = None) -> AgencyCall:
        """The next admitted endpoint's call other than `avoid` (the attempt already out), if there is one."""
        calls, n = self.calls, len(self.calls)
        start = self._next
        fallback = None
        for step in range(n):
            i = (start + step) % n
            if self._healths[i].ejected:
                continue
            if calls[i] is avoid:
                fallback = calls[i]
                continue
            self._next = i + 1
            return calls[i]
        # Every endpoint ejected (the caller checks the agency first) or only `avoid` admitted.
        return fallback or calls[start % n]

    def skipped(self) -> None:
        self.calls[0].skipped()

    def __call__(self, request, **options):
        return self.pick()(request, **options)
