"""Probe the stores every request depends on, the ledger and the audit trail, so their health shows while idle.

Every `interval_s` each store gets one cheap read (the ledger's SELECT 1, the
audit chain head), within `timeout_s`; the result sets
`chakong_gateway_store_up` and the audit probe's time is observed. Traffic
keeps the gauge current too (the ledger's transactions, the door's appends).
"""

import asyncio
import logging
import time

from services.gateway.ledger import Ledger
from services.gateway.ledger.metrics import AUDIT, LEDGER, STORE_SECONDS, STORE_UP

logger = logging.getLogger(__name__)

PROBE_INTERVAL_S = 5.0
PROBE_TIMEOUT_S = 2.0


class StoreProbe:
    def __init__(self, ledger: Ledger, audit, *, interval_s: float = PROBE_INTERVAL_S,
                 timeout_s: float = PROBE_TIMEOUT_S):
        self.ledger = ledger
        self.audit = audit
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._task: asyncio.Task | None = None
        self._was_up = {LEDGER: True, AUDIT: True}

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="store probe")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def probe_once(self) -> dict[str, bool]:
        return {LEDGER: await self._probe(LEDGER, self.ledger.ping), AUDIT: await self._probe(AUDIT, self.audit.ping)}

    async def _probe(self, store: str, ping) -> bool:
        start = time.perf_counter()
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow
            # a cancel that arrives as the ping completes (CPython gh-86296),
            # and close() would then wait for this loop forever.
            async with asyncio.timeout(self.timeout_s):
                await ping()
            up = True
        except Exception as exc:  # whatever the driver raises, the store did not answer
            up = False
            if self._was_up[store]:
                logger.error("%s store probe failed: %s", store, exc or type(exc).__name__)
        if store == AUDIT:
            STORE_SECONDS.labels(AUDIT, "ping").observe(time.perf_counter() - start)
        if up and not self._was_up[store]:
            logger.info("%s store answers again", store)
        self._was_up[store] = up
        STORE_UP.labels(store).set(1 if up else 0)
        return up

    async def _loop(self) -> None:
        while True:
            await self.probe_once()
            await asyncio.sleep(self.interval_s)
