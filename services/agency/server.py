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

from services import datagen
from services.agency import store
from services.agency.config import AgencySettings
from services.agency.metrics import AGENCY_RECORDS
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
    # Its servicer class (built with the open DB and the settings) and the
    # generated add_..._to_server function.
    servicer: Callable[[sqlite3.Connection, AgencySettings], object]
    add_servicer: Callable[[object, grpc.aio.Server], None]

    def seed_plan(self, settings: AgencySettings) -> store.SeedPlan:
        return store.SeedPlan(
            fingerprint={
                "kind": self.kind,
                "schema_version": store.SCHEMA_VERSION,
                "generator_version": datagen_version(),
                **settings.data_parameters,
            },
            schema=self.schema,
            populate=lambda conn: self.populate(conn, settings),
        )


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


async def start_agency(settings: AgencySettings, agency: AgencyKind) -> RunningAgency:
    """Seed the DB if needed, then serve gRPC and metrics; returns once listening."""
    outcome = await asyncio.to_thread(store.ensure_seeded, settings.db_path, agency.seed_plan(settings))
    AGENCY_RECORDS.labels(settings.agency_id, agency.records).set(outcome.records)
    log_transport_security(settings)
    conn = store.connect(settings.db_path)
    try:
        metrics_port = start_metrics_server(settings.metrics_address)
        server = await GrpcServer.start(
            settings.grpc_address,
            lambda s: agency.add_servicer(agency.servicer(conn, settings), s),
            [agency.service_name],
            interceptors=server_interceptors(settings.faults),
            tls=settings.tls,
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
    )
    try:
        await shutdown.wait()
        logger.info("stopping %s: finishing calls in flight (up to %.1f s)", settings.agency_id, settings.grace_seconds)
    finally:
        await running.stop()
    logger.info("stopped %s", settings.agency_id)
