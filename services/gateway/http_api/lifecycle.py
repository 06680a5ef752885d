"""Draining the HTTP side on stop: refuse new work with 503 while requests in flight finish."""

import asyncio
import logging

from aiohttp import web

from services.gateway.errors import RETRY_AFTER_S

logger = logging.getLogger(__name__)


class Drain:
    """HTTP work in flight, and whether new work is still taken."""

    def __init__(self) -> None:
        self.stopping = False
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True


DRAIN = web.AppKey("drain", Drain)
# Probes and scrapes keep answering while the gateway drains: /readyz is how
# load balancers learn to stop sending.
_ALWAYS = frozenset({"/readyz", "/healthz", "/metrics"})


@web.middleware
async def refuse_when_stopping(request: web.Request, handler) -> web.StreamResponse:
    if request.path in _ALWAYS:
        return await handler(request)
    drain = request.app[DRAIN]
    if drain.stopping:
        return web.json_response(
            {"error": {"code": "UNAVAILABLE", "message": "the gateway is shutting down; send it to another one"}},
            status=503,
            headers={"Connection": "close", "Retry-After": RETRY_AFTER_S},
        )
    drain.enter()
    try:
        return await handler(request)
    finally:
        drain.leave()


async def drain_http(runner: web.AppRunner, grace: float) -> None:
    """Refuse new HTTP work (503) and give requests in flight `grace` seconds; the listener stays for /readyz.

    runner.cleanup() afterwards closes the listener, the agency channels and
    the ledger; the gRPC side drains at the same time and still needs them.
    """
    if runner.app is None or DRAIN not in runner.app:
        return
    drain = runner.app[DRAIN]
    drain.stopping = True
    if not await drain.wait_idle(grace):
        logger.warning("%d HTTP request(s) still running after the grace period of %.1f s", drain.in_flight, grace)
