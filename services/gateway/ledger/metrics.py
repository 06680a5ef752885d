"""Store metrics: the health and latency of the ledger and of the audit trail, every series created at zero.

The ledger's transactions are timed here (`TimedDatabase`), the audit
trail's appends by the door that makes them (access/door.py), and both
stores are probed while the gateway is idle (access/stores.py), so
`chakong_gateway_store_up` says 0 soon after a store stops answering, with
or without traffic.
"""

import contextlib
import time
from collections.abc import AsyncIterator

from prometheus_client import Gauge, Histogram

from services.gateway.ledger.db import Database, LedgerUnavailable, Tx

LEDGER, AUDIT = "ledger", "audit"
# store -> what is timed: ledger transactions by kind; audit appends and probes.
OPERATIONS = {LEDGER: ("read", "write"), AUDIT: ("append", "ping")}

STORE_UP = Gauge(
    "chakong_gateway_store_up",
    "1 while the store (ledger, audit) answered its last operation or probe, 0 after it failed.",
    ["store"],
    # With GATEWAY_WORKERS > 1: 0 as soon as any worker cannot reach it.
    multiprocess_mode="livemin",
)
STORE_SECONDS = Histogram(
    "chakong_gateway_store_duration_seconds",
    "Duration of one store operation: a ledger transaction (read, write) or an audit append or probe (ping).",
    ["store", "operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
for _store, _operations in OPERATIONS.items():
    STORE_UP.labels(_store)
    for _operation in _operations:
        STORE_SECONDS.labels(_store, _operation)


class TimedDatabase:
    """A Database whose transactions are timed, and whose failures to connect set the ledger down."""

    def __init__(self, db: Database):
        self._db = db
        self.dialect = db.dialect
        self._up = STORE_UP.labels(LEDGER)
        self._seconds = {write: STORE_SECONDS.labels(LEDGER, "write" if write else "read") for write in (True, False)}

    @contextlib.asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[Tx]:
        start = time.perf_counter()
        try:
            async with self._db.transaction(write=write) as tx:
                yield tx
        except LedgerUnavailable:
            self._up.set(0)
            raise
        else:
            self._up.set(1)
        finally:
            self._seconds[write].observe(time.perf_counter() - start)

    def migration_lock(self):
        return self._db.migration_lock()

    async def close(self) -> None:
        await self._db.close()
