"""Holds follow the agency: the ledger's holds kept in step with what each agency reports.

The agency is the source of truth for a hold: another court's release
promotes a queued freeze, a freeze lapses at expiry, a transfer ends every
seal on a property, a shortfall reduces what is held. The gateway learns of
these three ways:

- **The feed.** Each agency's hold changes feed (ListFreezeChanges,
  ListSealChanges; the contract is in protos/common/v1/common.proto) is
  read every HOLD_SYNC_SECONDS by one gateway at a time (a lease per agency
  in the ledger, shared by every gateway on it), from the cursor stored in
  the ledger, and each page is applied and the cursor advanced in one
  transaction: after a restart or a lost lease the next reader goes on
  where the last one stopped, and a change applied twice changes nothing.
- **Time.** An ACTIVE hold past its expiry is marked LAPSED by the gateway
  itself, so the case view and the seizure cap are right while the agency
  is down; the agency's own report later confirms it, or wins (and the
  conflict is logged).
- **Reconciliation.** Every HOLD_RECONCILE_SECONDS the live holds in the
  ledger are compared with the agency's listing of the case's holds
  (ListCaseFreezes, ListCaseSeals); a difference is repaired, counted and
  logged, because it means a change was lost.
"""

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable

import grpc
from google.protobuf.message import Message

from protos.common.v1 import common_pb2
from services.gateway.agencies.clients import AgencyClient, AgencyClients
from services.gateway.agencies.methods import CASE_HOLDS, HOLD_CHANGES
from services.gateway.config import GatewaySettings
from services.gateway.control.messages import ACTIVE, LAPSED, QUEUED, hold_state_label, timestamp_us
from services.gateway.control.metrics import (
    HOLD_EVENTS,
    HOLD_FEED_LAG_SECONDS,
    HOLD_FEED_SYNCED,
    HOLD_REPAIRS,
    HOLDS,
)
from services.gateway.control.outcomes import freeze_update, seal_update
from services.gateway.ledger import AgencyHold, CaseRecord, HoldRecord, Ledger, SyncedHold, same_state

logger = logging.getLogger(__name__)

PAGE = 500
# Pages read from one feed per round before the other agencies get their turn.
MAX_PAGES_PER_ROUND = 20
_ENDED_EVENTS = {
    common_pb2.HOLD_STATE_LAPSED: "lapsed",
    common_pb2.HOLD_STATE_RELEASED: "released",
    common_pb2.HOLD_STATE_DEDUCTED: "deducted",
    common_pb2.HOLD_STATE_TRANSFERRED: "transferred",
}


def event_of(synced: SyncedHold) -> str:
    """What the agency's report did to the hold, as the metrics count it."""
    before, after = synced.before, synced.after
    if before.lapsed_by_gateway:
        return "confirmed" if after.state == LAPSED else "changed"
    if before.state == QUEUED and after.state == ACTIVE:
        return "promoted"
    if after.state != before.state and after.state in _ENDED_EVENTS:
        return _ENDED_EVENTS[after.state]
    if after.state == before.state and after.frozen_fen < before.frozen_fen:
        return "reduced"
    return "changed"


def held(answer: Message) -> Message:
    """The hold a feed change carries, or the holds a case listing carries: freezes at a bank, seals elsewhere."""
    field = {"FreezeChange": "freeze", "SealChange": "seal", "CaseFreezes": "freezes", "CaseSeals": "seals"}
    return getattr(answer, field[type(answer).DESCRIPTOR.name])


def reported(hold: Message) -> AgencyHold:
    """An agency's AccountFreeze or Seal as the ledger applies it."""
    if isinstance(hold, common_pb2.Seal):
        return AgencyHold(hold.seal_id, seal_update("", hold))
    return AgencyHold(hold.freeze_id, freeze_update("", hold))


class HoldSync:
    """Reads every agency's feed, lapses what time has ended, reconciles; `start()` and `close()`."""

    def __init__(
        self, ledger: Ledger, clients: AgencyClients, settings: GatewaySettings, *, owner: str,
        now_us: Callable[[], int],
    ):
        self.ledger = ledger
        self.clients = clients
        self.settings = settings
        self.owner = owner
        self.now_us = now_us
        self.lease_us = int(settings.lease_seconds * 1_000_000)
        self.timeout_s = settings.control_attempt_timeout_ms / 1000
        self._tasks: list[asyncio.Task] = []
        # Agencies that answered UNIMPLEMENTED (not on the feed yet): asked again after this (monotonic).
        self._unsupported: dict[str, float] = {}
        # The feeds this gateway holds the lease of: agency -> (lease until, cursor). The lease is
        # renewed in the ledger only when half of it has run out, not on every read.
        self._leases: dict[str, tuple[int, int]] = {}

    def _create_series(self) -> None:
        """Every bounded series at zero from the start (an agency added by a reload gets its own at its first read)."""
        for state in common_pb2.HoldState.values():
            if state:
                HOLDS.labels(hold_state_label(state))
        for client in self.clients.all:
            for metric in (HOLD_FEED_LAG_SECONDS, HOLD_FEED_SYNCED, HOLD_REPAIRS):
                metric.labels(client.id)

    async def start(self) -> None:
        self._create_series()
        if self.settings.hold_sync_seconds <= 0:
            logger.warning("hold sync off (HOLD_SYNC_SECONDS=0): holds change in the ledger only by own actions")
            return
        self._tasks = [
            asyncio.create_task(self._every(self.settings.hold_sync_seconds, self.sync_once), name="hold sync"),
            asyncio.create_task(
                self._every(self.settings.hold_reconcile_seconds, self.reconcile_once, first_after=True),
                name="hold reconcile",
            ),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._leases.clear()
        try:
            await self.ledger.release_feed_leases(self.owner)
        except Exception:
            logger.warning("could not release the hold feed leases; they run out by themselves", exc_info=True)

    async def _every(self, seconds: float, sweep, *, first_after: bool = False) -> None:
        if first_after:
            await asyncio.sleep(seconds)
        while True:
            try:
                await sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("%s failed; trying again in %.1f s", sweep.__name__, seconds, exc_info=True)
            await asyncio.sleep(seconds)

    # The feeds

    async def sync_once(self) -> int:
        """One round: lapse what has expired, then read each admitted agency's feed to its end; holds changed."""
        changed = len(await self.lapse_expired())
        results = await asyncio.gather(
            *(self._read_feed(client) for client in self.clients.all if not client.health.ejected),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                logger.warning("hold feed: %r", result)
            else:
                changed += result
        counts = await self.ledger.hold_state_counts()
        for state in common_pb2.HoldState.values():
            if state:
                HOLDS.labels(hold_state_label(state)).set(counts.get(state, 0))
        return changed

    async def _read_feed(self, client: AgencyClient) -> int:
        if self._unsupported.get(client.id, 0.0) > time.monotonic():
            return 0
        now_us = self.now_us()
        lease_until, cursor = self._leases.get(client.id, (0, 0))
        if now_us > lease_until - self.lease_us // 2:
            cursor = await self.ledger.claim_feed(
                client.id, owner=self.owner, now_us=now_us, lease_until_us=now_us + self.lease_us
            )
            if cursor is None:
                self._leases.pop(client.id, None)
                return 0  # another gateway reads this one
            self._leases[client.id] = (now_us + self.lease_us, cursor)
        method = HOLD_CHANGES[client.config.kind]
        call = client.call(method)
        changed = 0
        for _ in range(MAX_PAGES_PER_ROUND):
            try:
                page = await call(
                    common_pb2.HoldChangesRequest(after_cursor=cursor, limit=PAGE), timeout=self.timeout_s
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                    # The agency's feed starts afresh (its records were rebuilt): read it from the start and
                    # compare the live holds, since changes between the old and the new feed are lost.
                    logger.warning("hold feed of %s was reset (%s); reading it from the start and reconciling",
                                   client.id, exc.details())
                    if await self.ledger.reset_feed(client.id, owner=self.owner, now_us=self.now_us()):
                        self._leases.pop(client.id, None)
                        return changed + await self._reconcile(client)
                    return changed
                if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                    if client.id not in self._unsupported:
                        logger.warning("agency %s serves no hold changes feed (%s); its holds change in the ledger"
                                       " by this gateway's own actions and reconciliation only", client.id, method.name)
                    self._unsupported[client.id] = time.monotonic() + self.settings.hold_reconcile_seconds
                else:
                    logger.info("hold feed of %s: %s %s", client.id, exc.code().name, exc.details())
                return changed
            if not page.changes:
                HOLD_FEED_LAG_SECONDS.labels(client.id).set(0)
                HOLD_FEED_SYNCED.labels(client.id).set(time.time())
                return changed
            holds = [reported(held(change)) for change in page.changes]
            applied_us = self.now_us()
            synced = await self.ledger.apply_agency_holds(
                client.id, holds, now_us=applied_us, owner=self.owner, cursor=page.last_cursor
            )
            if synced is None:
                logger.info("hold feed of %s: lease lost to another gateway", client.id)
                self._leases.pop(client.id, None)
                return changed
            newest = max(timestamp_us(change.changed_at) for change in page.changes)
            HOLD_FEED_LAG_SECONDS.labels(client.id).set(max(0.0, (applied_us - newest) / 1_000_000))
            self._count(client.id, synced, why="feed")
            changed += len(synced)
            cursor = page.last_cursor
            self._leases[client.id] = (self._leases[client.id][0], cursor)
        return changed

    def _count(self, agency_id: str, synced: list[SyncedHold], *, why: str) -> None:
        for change in synced:
            event = event_of(change)
            HOLD_EVENTS.labels(event).inc()
            before, after = change.before, change.after
            if before.lapsed_by_gateway and after.state != LAPSED:
                logger.warning(
                    "hold %s (case %s): the gateway had it LAPSED at its expiry, %s reports %s; the agency wins",
                    after.hold_id, after.case_number, agency_id, hold_state_label(after.state),
                    extra={"hold_id": after.hold_id, "case_number": after.case_number},
                )
            logger.info(
                "hold %s (case %s) %s by %s %s: %s -> %s, held %d -> %d fen",
                after.hold_id, after.case_number, event, agency_id, why, hold_state_label(before.state),
                hold_state_label(after.state), before.frozen_fen, after.frozen_fen,
                extra={"hold_id": after.hold_id, "case_number": after.case_number},
            )

    # Time

    async def lapse_expired(self) -> list[HoldRecord]:
        lapsed = await self.ledger.lapse_expired(self.now_us())
        for hold in lapsed:
            logger.info(
                "hold %s (case %s) LAPSED at its expiry, by the gateway's clock; %s has not reported it yet",
                hold.hold_id, hold.case_number, hold.agency_id,
                extra={"hold_id": hold.hold_id, "case_number": hold.case_number},
            )
        return lapsed

    # Reconciliation

    async def reconcile_once(self) -> int:
        """Compare every live hold with its agency's listing of the case; repairs made."""
        repairs = 0
        for client in self.clients.all:
            if client.health.ejected:
                continue
            try:
                repairs += await self._reconcile(client)
            except grpc.aio.AioRpcError as exc:
                logger.info("reconciliation with %s: %s %s", client.id, exc.code().name, exc.details())
        return repairs

    async def _reconcile(self, client: AgencyClient) -> int:
        live = await self.ledger.live_holds(client.id)
        if not live or not await self._drifted(client, live):
            return 0
        # A change may be in the feed and not applied yet: catch up first, then
        # compare with a fresh listing; only what still differs was lost.
        await self._read_feed(client)
        repairs = 0
        for case, holds in _by_case(await self.ledger.live_holds(client.id)).items():
            listed = {hold.agency_hold_id: hold for hold in await self._listing(client, case)}
            synced = await self.ledger.apply_agency_holds(
                client.id, [listed[hold.agency_hold_id] for hold in holds if hold.agency_hold_id in listed],
                now_us=self.now_us(),
            )
            for change in synced:
                if change.before.lapsed_by_gateway and change.after.state == LAPSED:
                    continue  # the agency confirms the gateway's own conclusion: nothing was lost
                HOLD_REPAIRS.labels(client.id).inc()
                repairs += 1
                logger.warning(
                    "reconciliation repaired hold %s (case %s) from %s: %s -> %s, held %d -> %d fen;"
                    " a change was lost on the way",
                    change.after.hold_id, case.case_number, client.id, hold_state_label(change.before.state),
                    hold_state_label(change.after.state), change.before.frozen_fen, change.after.frozen_fen,
                    extra={"hold_id": change.after.hold_id, "case_number": case.case_number},
                )
            self._count(client.id, synced, why="reconciliation")
            for hold in holds:
                if hold.agency_hold_id not in listed:
                    # Not for the gateway to guess how it ended: counted and left for a person to look at.
                    HOLD_REPAIRS.labels(client.id).inc()
                    repairs += 1
                    logger.error(
                        "reconciliation: %s no longer lists hold %s (its %s) of case %s; the ledger keeps it %s",
                        client.id, hold.hold_id, hold.agency_hold_id, case.case_number,
                        hold_state_label(hold.state), extra={"hold_id": hold.hold_id, "case_number": case.case_number},
                    )
        return repairs

    async def _drifted(self, client: AgencyClient, live: list[tuple[HoldRecord, CaseRecord]]) -> bool:
        for case, holds in _by_case(live).items():
            listed = {hold.agency_hold_id: hold.update for hold in await self._listing(client, case)}
            for hold in holds:
                update = listed.get(hold.agency_hold_id)
                if update is None or not same_state(hold, update) or hold.lapsed_by_gateway:
                    return True
        return False

    async def _listing(self, client: AgencyClient, case: CaseRecord) -> list[AgencyHold]:
        # Asked in the case's name, as registered: its court, executor and ruling.
        ref = common_pb2.CaseRef(case_number=case.case_number, court_code=case.court_code,
                                 executor_id=case.executor_id, document_number=case.document_number)
        listing = await client.call(CASE_HOLDS[client.config.kind])(
            common_pb2.CaseHoldsRequest(case=ref), timeout=self.timeout_s
        )
        return [reported(hold) for hold in held(listing)]


def _by_case(live: list[tuple[HoldRecord, CaseRecord]]) -> dict[CaseRecord, list[HoldRecord]]:
    by_case: dict[CaseRecord, list[HoldRecord]] = defaultdict(list)
    for hold, case in live:
        by_case[case].append(hold)
    return by_case
