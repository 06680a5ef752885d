"""The gateway's composition root: every resource opened in dependency order, closed in reverse.

    registry file (checked first) -> ledger -> agency admin (the agencies registered at run time)
    registry (file + admin) -> agency clients -> fan-out, registry reloader
    ledger, clients -> the courts known (metrics' court labels), control (and its re-driver),
                       hold sync (the agencies' hold changes feeds)
    ledger, fan-out, control, policy file -> enforcement plans (and their resumer)
    audit    -> its signed checkpoints, the door (which reads cases from the ledger), the store probe
    rate limits (memory or Redis) -> the door
    ledger, fan-out, door -> batches (their runner asks the agencies in the background)
    plans, batches' store, door -> plans for every case of a batch

`open_gateway(settings)` yields one `GatewayCore`; the gRPC servicers and
the HTTP app factory both receive it (server.py), and neither reaches into
the other. Batch workers and the console get it the same way.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from services.gateway.access.door import Door
from services.gateway.access.labels import COURTS
from services.gateway.access.stores import StoreProbe
from services.gateway.admin.service import AgencyAdmin
from services.gateway.reports.service import Reports
from services.gateway.agencies.clients import AgencyClients
from services.gateway.agencies.hedging import hedge_policy
from services.gateway.agencies.health import ejection_policy
from services.gateway.agencies.registry import load_registry
from services.gateway.agencies.reload import RegistryReloader, merge
from services.gateway.agencies.tls import agency_credentials
from services.gateway.batch.runner import BatchRunner
from services.gateway.batch.service import BatchService
from services.common.clock import clock_from_env
from services.gateway.config import GatewaySettings
from services.gateway.control.holdsync import HoldSync
from services.gateway.control.service import ControlService
from services.gateway.enforce.batches import BatchPlans
from services.gateway.enforce.policy import load_policy
from services.gateway.enforce.service import EnforceService
from services.gateway.ledger import Ledger, redact
from services.gateway.query.fanout import FanOut
from services.gateway.query.late import LateAnswers
from services.security.audit import open_audit_store
from services.security.checkpoints import Checkpointer, CheckpointLog, CheckpointSigner
from services.security.ratelimit import RateLimiter, RateLimits
from services.security.tokens import TokenVerifier

logger = logging.getLogger(__name__)

# Readiness must answer quickly even when the ledger hangs.
LEDGER_PING_TIMEOUT_S = 2.0


@dataclass
class Readiness:
    """What /readyz and gRPC health report; server.py sets grpc_serving once the gRPC server runs."""

    grpc_serving: bool = False


@dataclass
class GatewayCore:
    """Everything the adapters use, opened by `open_gateway`."""

    settings: GatewaySettings
    clients: AgencyClients
    fanout: FanOut
    reloader: RegistryReloader
    ledger: Ledger
    control: ControlService
    holds: HoldSync
    door: Door
    admin: AgencyAdmin
    enforce: EnforceService
    batches: BatchService
    batch_plans: BatchPlans
    reports: Reports
    readiness: Readiness = field(default_factory=Readiness)

    async def unready_reasons(self) -> list[str]:
        """Why the gateway should not get traffic now; empty when ready."""
        reasons = []
        if not self.readiness.grpc_serving:
            reasons.append("gRPC server not started")
        try:
            async with asyncio.timeout(LEDGER_PING_TIMEOUT_S):
                await self.ledger.ping()
        except Exception as exc:  # whatever the driver raises, the answer is "not reachable"
            logger.warning("readiness: ledger unreachable: %s", exc or type(exc).__name__)
            reasons.append(f"ledger unreachable: {type(exc).__name__}")
        return reasons


def open_checkpointer(settings: GatewaySettings, audit) -> Checkpointer | None:
    """The audit head's signed checkpoints, if they are on and a key is there (see config.py)."""
    key = settings.audit_checkpoint_key_path
    if settings.audit_checkpoint_seconds <= 0:
        logger.warning("audit checkpoints are off (AUDIT_CHECKPOINT_SECONDS=0): the audit chain is not anchored")
        return None
    if not settings.audit_checkpoint_key and not key.is_file():
        logger.warning("audit checkpoints are off: no key at %s (`chakong pki init` creates it; or set "
                       "AUDIT_CHECKPOINT_KEY): the audit chain is not anchored", key)
        return None
    log = CheckpointLog(settings.audit_checkpoint_path)
    logger.info("audit checkpoints: every %g s to %s", settings.audit_checkpoint_seconds, log.path)
    return Checkpointer(audit.head, CheckpointSigner.from_file(key), log, interval_s=settings.audit_checkpoint_seconds)


@contextlib.asynccontextmanager
async def open_gateway(settings: GatewaySettings) -> AsyncIterator[GatewayCore]:
    async with contextlib.AsyncExitStack() as stack:
        # The real clock, unless a test moves it (CLOCK_OFFSET_FILE, as for the mock agencies).
        clock = clock_from_env()
        # A broken registry file (or enforcement policy) stops the start before anything is opened.
        file_registry = load_registry(settings.agency_registry)
        policy = load_policy(settings.enforce_policy)
        # Then the ledger: it holds the agencies registered at run time, the rest of the registry.
        ledger = await Ledger.open(settings.ledger_url, settings.ledger_path, clock.now_us())
        stack.push_async_callback(ledger.close)
        logger.info("ledger: %s", redact(settings.ledger_url) or f"sqlite {settings.ledger_path}")
        admin = AgencyAdmin(ledger, clock.now_us)
        managed = await admin.managed()
        clients = AgencyClients(merge(file_registry, managed[1]), ejection_policy(settings),
                                credentials=agency_credentials(settings), hedging=hedge_policy(settings))
        stack.push_async_callback(clients.close)
        fanout = FanOut(clients, settings.query_deadline_ms)
        stack.push_async_callback(fanout.aclose)
        # Every query recorded, and the agencies a reply cut off asked on within their windows.
        late = fanout.late = LateAnswers(ledger.batches, fanout, default_window_ms=settings.answer_window_ms,
                                         cap_per_agency=settings.late_calls_per_agency, now_us=clock.now_us)
        stack.push_async_callback(late.close)
        # Late answers a stopped gateway was waiting for, past their windows: TIMEOUT.
        await ledger.batches.expire_answers(clock.now_us())
        reloader = admin.reloader = RegistryReloader(
            settings.agency_registry,
            clients,
            poll_s=settings.registry_poll_seconds,
            # Longer than any query or control drive that started before a reload.
            drain_s=max(settings.query_deadline_ms, settings.control_deadline_ms) / 1000 + 1.0,
            managed=admin.managed,
            file_ids=frozenset(config.id for config in file_registry),
            managed_state=managed,
        )
        reloader.start()
        stack.push_async_callback(reloader.close)

        # Every registered court's series at zero before the first request counts in one.
        COURTS.add_all(await ledger.court_codes())
        control = ControlService(ledger, clients, settings, now_us=clock.now_us)
        await control.start()
        stack.push_async_callback(control.close)
        holds = HoldSync(ledger, clients, settings, owner=control.driver.owner, now_us=clock.now_us)
        await holds.start()
        stack.push_async_callback(holds.close)
        enforce = EnforceService(ledger, fanout, control, settings, policy, now_us=clock.now_us)
        await enforce.start()
        # Closed before control: a plan's step in flight finishes (or stays PENDING) first.
        stack.push_async_callback(enforce.close)

        audit = await open_audit_store(settings.audit_store_url)
        stack.push_async_callback(audit.close)
        # Before the door, so that it closes after it: the last answers recorded are anchored at close.
        checkpointer = open_checkpointer(settings, audit)
        if checkpointer is not None:
            checkpointer.start()
            stack.push_async_callback(checkpointer.close)
        limits = RateLimits.from_env()
        limiter = RateLimiter(limits)
        stack.push_async_callback(limiter.close)
        if limits.redis_url:
            if await limiter.ping():
                logger.info("rate limits: shared in Redis (%s)", redact(limits.redis_url))
            else:
                logger.warning("rate limits: Redis (%s) does not answer yet: per process until it does",
                               redact(limits.redis_url))
        door = Door(TokenVerifier.from_env(), limiter, audit, ledger)
        stack.push_async_callback(door.close)
        probe = StoreProbe(ledger, audit)
        probe.start()
        stack.push_async_callback(probe.close)

        runner = BatchRunner(ledger.batches, fanout, settings, clock.now_us)
        runner.start()
        stack.push_async_callback(runner.close)
        batches = BatchService(ledger.batches, fanout, door, runner, settings.batch_max_rows, clock.now_us)

        # Plans for batches' cases: each case authorized and audited at the door.
        batch_plans = BatchPlans(enforce, ledger.batches, door)
        stack.push_async_callback(batch_plans.close)

        reports = Reports(ledger, audit, clock.now_us)
        yield GatewayCore(settings, clients, fanout, reloader, ledger, control, holds, door, admin, enforce, batches,
                          batch_plans, reports)
