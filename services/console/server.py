"""`serve(settings)`: the console's HTTP server, until SIGINT or SIGTERM."""

import logging
import ssl

from aiohttp import web

from services.common.grpc_server import announce_ready, bound_address, wait_for_shutdown_signal
from services.console.app import create_app
from services.console.config import ConsoleSettings

logger = logging.getLogger(__name__)


class Console:
    def __init__(self, settings: ConsoleSettings):
        self.settings = settings
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> "Console":
        self._runner = web.AppRunner(create_app(self.settings), handle_signals=False, access_log=None,
                                     shutdown_timeout=self.settings.grace_seconds)
        await self._runner.setup()
        context = None
        if self.settings.tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.settings.tls_cert, self.settings.tls_key)
        host, _, port = self.settings.http_address.rpartition(":")
        site = web.TCPSite(self._runner, host, int(port), ssl_context=context)
        await site.start()
        address = bound_address(self.settings.http_address, self._runner.addresses[0][1])
        self.url = f"{'https' if context else 'http'}://{address}/console"
        logger.info("console at %s, calling the gateway at %s%s", self.url, self.settings.gateway_url,
                    "; demo sign-in on" if self.settings.demo_sign_in else "")
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def serve(settings: ConsoleSettings) -> None:
    console = await Console(settings).start()
    try:
        announce_ready("console", url=console.url)
        await wait_for_shutdown_signal()
    finally:
        await console.stop()
