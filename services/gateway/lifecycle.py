"""The gateway's life cycle: readiness (registry loaded, ledger reachable) and draining the HTTP side on stop."""

import asyncio
import logging

from aiohttp import web

logger = logging.getLogger(__name__)

# /readyz must answer quickly even when the ledger hangs.
LEDGER_PING_TIMEOUT_S = 2.0


async def ledger_unready(app: web.Application) -> str | None:
    """Why the ledger makes the gateway not ready, or None when a cheap query succeeds now."""
    # Here, not at the top: control_http imports http_api, which imports this module.
    from services.gateway.control_http import CONTROL

    control = app.get(CONTROL)
    if control is None:
        return "ledger not opened"
    try:
        await asyncio.wait_for(control.ledger.ping(), LEDGER_PING_TIMEOUT_S)
    except Exception as exc:  # whatever the driver raises, the answer is "not reachable"
        logger.warning("readiness: ledger unreachable: %s", exc or type(exc).__name__)
        return f"ledger unreachable: {type(exc).__name__}"
    return None


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
            await asyncio.wait_for(self._idle.wait(), timeout)
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
            headers={"Connection": "close"},
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
