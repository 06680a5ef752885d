"""The serve skeleton every mock agency shares: seed, listen, announce, stop."""

import asyncio
import functools
import hashlib
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import grpc

from protos.testing.v1 import testing_pb2, testing_pb2_grpc
from services import datagen
from services.agency import faults, store
from services.agency.config import AgencySettings
from services.common.clock import Clock, clock_from_env
from services.agency.metrics import AGENCY_RECORDS
from services.agency.testing import AdjustableClock, AgencyTestingServicer, Fixtures
from services.common.grpc_server import GrpcServer, announce_ready, bound_address, install_shutdown_signals
from services.common.interceptors import server_interceptors
from services.common.metrics_http import start_metrics_server

logger = logging.getLogger(__name__)


@functools.cache
def datagen_version() -> str:
    """A digest of the generator's source: any change to it means new data.

    Safer than a hand-bumped version number nobody remembers to bump; the
    cost is a reseed after a cosmetic edit.
    """
    digest = hashlib.sha256()
    for source in sorted(Path(datagen.__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class AgencyKind:
    """What one kind of agency brings to the shared skeleton."""

    # "bank", "vehicle" or "realestate": names the process in READY and logs.
    kind: str
    # Fully qualified gRPC service name, for health and reflection.
    service_name: str
    # What its records are called in metrics: "accounts", "vehicles", "properties".
    records: str
    # CREATE statements of its own tables, and how to fill them from the
    # generator; returns how many records it stored.
    schema: str
    populate: Callable[[sqlite3.Connection, AgencySettings], int]
    # Its servicer class (built with the open DB, the settings and the
    # clock) and the generated add_..._to_server function.
    servicer: Callable[[sqlite3.Connection, AgencySettings, Clock], object]
    add_servicer: Callable[[object, grpc.aio.Server], None]
    # Its tables and fixture loader, for test mode.
    fixtures: Fixtures

    def seed_plan(self, settings: AgencySettings) -> store.SeedPlan:
        return store.SeedPlan(
            fingerprint={
                "kind": self.kind,
                "schema_version": store.SCHEMA_VERSION,
                "generator_version": datagen_version(),
                **settings.data_parameters,
            },
            schema=self.schema,
            # Test mode starts empty: the conformance kit loads what each case needs.
            populate=(lambda conn: 0) if settings.test_mode else (lambda conn: self.populate(conn, settings)),
        )


TESTING_SERVICE = testing_pb2.DESCRIPTOR.services_by_name["AgencyTesting"].full_name


@dataclass
class RunningAgency:
    settings: AgencySettings
    conn: sqlite3.Connection
    server: GrpcServer
    grpc_address: str
    metrics_address: str

    async def stop(self) -> None:
        await self.server.stop(self.settings.grace_seconds)
        self.conn.close()


def log_transport_security(settings: AgencySettings) -> None:
    tls = settings.tls
    if tls is None:
        logger.warning(
            "INSECURE PLAINTEXT: agency %s serves gRPC on %s without TLS: anyone who can reach the port can "
            "query and move assets. Development only; set TLS_CERT, TLS_KEY and TLS_CA (`chakong pki init`).",
            settings.agency_id,
            settings.grpc_address,
        )
        return
    names = tls.names
    if names is not None:
        days_left = (names.not_after - datetime.now(timezone.utc)).days
        logger.log(
            logging.WARNING if days_left < 30 else logging.INFO,
            "mutual TLS: serving as %s, certificate expires %s (%d days); clients allowed: %s",
            names.identity,
            names.not_after.strftime("%Y-%m-%d"),
            days_left,
            ", ".join(sorted(tls.allowed_clients)),
        )


def log_test_mode(settings: AgencySettings) -> None:
    if settings.test_mode:
        logger.warning(
            "TEST MODE: agency %s serves chakong.testing.v1.AgencyTesting on %s: anyone allowed to call it can wipe"
            " %s and move this agency's clock. For conformance runs only; unset AGENCY_TEST_MODE in production.",
            settings.agency_id, settings.grpc_address, settings.db_path,
        )


async def start_agency(settings: AgencySettings, agency: AgencyKind) -> RunningAgency:
    """Seed the DB if needed, then serve gRPC and metrics; returns once listening."""
    faults.activate(settings.deliberate_faults)
    outcome = await asyncio.to_thread(store.ensure_seeded, settings.db_path, agency.seed_plan(settings))
    AGENCY_RECORDS.labels(settings.agency_id, agency.records).set(outcome.records)
    log_transport_security(settings)
    log_test_mode(settings)
    conn = store.connect(settings.db_path)
    clock = AdjustableClock(clock_from_env()) if settings.test_mode else clock_from_env()

    def register(server: grpc.aio.Server) -> None:
        agency.add_servicer(agency.servicer(conn, settings, clock), server)
        if settings.test_mode:
            testing_pb2_grpc.add_AgencyTestingServicer_to_server(
                AgencyTestingServicer(conn, agency.fixtures, clock, settings.agency_id), server
            )

    services = [agency.service_name]
    if settings.test_mode:
        services.append(TESTING_SERVICE)
    try:
        metrics_port = start_metrics_server(settings.metrics_address)
        server = await GrpcServer.start(
            settings.grpc_address,
            register,
            services,
            interceptors=server_interceptors(settings.faults),
            tls=settings.tls,
            health_for_server=not faults.active("health_service_name_only"),
            check_peer=not faults.active("any_client_allowed"),
        )
    except BaseException:
        conn.close()
        raise
    return RunningAgency(
        settings=settings,
        conn=conn,
        server=server,
        grpc_address=bound_address(settings.grpc_address, server.port),
        metrics_address=bound_address(settings.metrics_address, metrics_port),
    )


async def serve_agency(settings: AgencySettings, agency: AgencyKind) -> None:
    """Run until SIGTERM or SIGINT, then stop within the grace period."""
    running = await start_agency(settings, agency)
    shutdown = install_shutdown_signals()
    announce_ready(
        agency.kind,
        agency_id=settings.agency_id,
        grpc=running.grpc_address,
        metrics=running.metrics_address,
        **({"test_mode": "1"} if settings.test_mode else {}),
    )
    try:
        await shutdown.wait()
        logger.info("stopping %s: finishing calls in flight (up to %.1f s)", settings.agency_id, settings.grace_seconds)
    finally:
        await running.stop()
    logger.info("stopped %s", settings.agency_id)
