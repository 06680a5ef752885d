"""Test mode (chakong.testing.v1.AgencyTesting): reset, fixtures and a clock the conformance kit moves.

Served only with AGENCY_TEST_MODE=1, on the agency's own test database. Each
kind says which tables hold its records and how a fixture becomes rows
(`Fixtures`); this module does the rest the same way for every kind.
"""

import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from protos.testing.v1 import testing_pb2, testing_pb2_grpc
from services.common.clock import Clock
from services.agency.store import insert_holders, timestamp, transaction
from services.common.validation import FieldError, validate_subject

logger = logging.getLogger(__name__)

MAX_ADVANCE_S = 10 * 366 * 86_400


class AdjustableClock:
    """Another clock plus an offset the kit moves forward; Reset sets it back to 0."""

    def __init__(self, base: Clock):
        self.base = base
        self.offset_us = 0

    def now_us(self) -> int:
        return self.base.now_us() + self.offset_us


@dataclass(frozen=True)
class Fixtures:
    """One kind's part of test mode."""

    # Its tables, children before parents: Reset empties them (and the
    # shared holders and idempotency tables).
    tables: Sequence[str]
    # Stores the request's records of this kind; returns how many. Raises
    # FieldError for a malformed one; sqlite3.IntegrityError for a duplicate.
    load: Callable[[sqlite3.Connection, testing_pb2.LoadFixturesRequest, frozenset[str]], int]


def require_owner(owner_id: str, subjects: frozenset[str], field: str) -> None:
    if owner_id not in subjects:
        raise FieldError(field, f"{owner_id or '(empty)'} is not among subjects (load the holder with the asset)")


class AgencyTestingServicer(testing_pb2_grpc.AgencyTestingServicer):
    def __init__(self, conn: sqlite3.Connection, fixtures: Fixtures, clock: AdjustableClock, agency_id: str):
        self.conn = conn
        self.fixtures = fixtures
        self.clock = clock
        self.agency_id = agency_id

    def _now(self) -> Timestamp:
        return timestamp(self.clock.now_us())

    async def Reset(self, request, context):
        with transaction(self.conn):
            for table in (*self.fixtures.tables, "holders", "idempotency"):
                self.conn.execute(f"DELETE FROM {table}")
        self.clock.offset_us = 0
        logger.warning("test mode: %s reset to empty, clock back to real time", self.agency_id)
        return testing_pb2.ResetResponse(now=self._now())

    async def LoadFixtures(self, request, context):
        try:
            for i, subject in enumerate(request.subjects):
                validate_subject(subject, f"subjects[{i}]", require_name=True)
            subjects = frozenset(s.id_number for s in request.subjects)
            with transaction(self.conn):
                insert_holders(self.conn, ((s.id_number, s.type, s.name) for s in request.subjects))
                records = self.fixtures.load(self.conn, request, subjects)
        except FieldError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except sqlite3.IntegrityError as exc:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, f"fixture already loaded since the last Reset: {exc}")
        logger.info("test mode: %s loaded %d subject(s), %d record(s)", self.agency_id, len(request.subjects), records)
        return testing_pb2.LoadFixturesResponse(subjects=len(request.subjects), records=records)

    async def AdvanceClock(self, request, context):
        seconds = request.by.seconds + request.by.nanos / 1e9
        if not 0 < seconds <= MAX_ADVANCE_S:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "by: must be positive and at most 10 years")
        self.clock.offset_us += request.by.seconds * 1_000_000 + request.by.nanos // 1000
        logger.warning("test mode: %s clock moved forward %.0f s", self.agency_id, seconds)
        return testing_pb2.AdvanceClockResponse(now=self._now())
