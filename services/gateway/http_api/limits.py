"""The HTTP server's own limits: how long a client may take, how large its request line and headers may be.

aiohttp's low-level parser refuses an oversized or malformed request before
any middleware runs, and answers it in plain text with a traceback in the
log. `DoorRequestHandler` answers those as the documented JSON error body
(414 for the request line, 431 for the headers, 400 for bad bytes) and logs
one line, and adds the header-read timeout aiohttp lacks: aiohttp's
keep-alive timer closes a connection idle between requests (and one that
never sends a byte), but a client trickling its headers a byte at a time
keeps its connection until then. The body has its own timeout, in the door
(routes.py), where the request is read.
"""

import asyncio
import logging

from aiohttp import web, web_protocol
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong

from services.gateway.http_api.json_io import dumps, error_response

logger = logging.getLogger(__name__)

# The request line (method, URL, version); a case number URL-encoded is about 40 bytes.
MAX_LINE_BYTES = 4096
# One header (name and value); a token is about 400 bytes. Kept apart from
# MAX_LINE_BYTES: aiohttp says which limit a too-long line broke only by its number.
MAX_FIELD_BYTES = 8190
MAX_HEADERS = 64
# From a connection's start, or the first byte of its next request, to the end of the headers.
HEADER_TIMEOUT_S = 10.0
# Idle between requests on one connection (aiohttp's keep-alive timer; it also
# closes a connection that never sends a byte).
KEEPALIVE_TIMEOUT_S = 30.0
# After answering a request whose body did not all arrive, how long the rest is read and dropped.
LINGER_S = 2.0

SERVER_OPTIONS = {
    "keepalive_timeout": KEEPALIVE_TIMEOUT_S,
    "max_line_size": MAX_LINE_BYTES,
    "max_field_size": MAX_FIELD_BYTES,
    "max_headers": MAX_HEADERS,
    "lingering_time": LINGER_S,
}


def classify(exc: BaseException | None, status: int) -> tuple[int, str, str | None]:
    """The status, message and field for what the parser refused."""
    if isinstance(exc, LineTooLong):
        limit = exc.args[1] if len(exc.args) > 1 else None
        if limit == MAX_LINE_BYTES:
            return 414, f"request line: must be at most {MAX_LINE_BYTES} bytes", "url"
        return 431, f"headers: each must be at most {MAX_FIELD_BYTES} bytes", "headers"
    if isinstance(exc, BadHttpMessage) and "Too many headers" in exc.message:
        return 431, f"headers: at most {MAX_HEADERS} may be sent", "headers"
    if status == 500:
        return 500, "internal error; see the gateway log", None
    text = exc.message if isinstance(exc, BadHttpMessage) else str(exc or "bad request")
    return status, f"malformed HTTP request: {text}", None


class DoorRequestHandler(web_protocol.RequestHandler):
    """aiohttp's connection handler, with JSON refusals and the header-read timeout."""

    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Waiting for a request (not running one, whose body the door times):
        # a partial request starts the clock, a complete one stops it.
        waiter = self._waiter
        if self._messages or (waiter is not None and waiter.done()):
            self._disarm_header_timer()
        elif waiter is not None and data and self._header_timer is None:
            self._arm_header_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._header_timer = self._loop.call_later(HEADER_TIMEOUT_S, self._header_timeout)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        waiter = self._waiter
        if self.transport is None or waiter is None or waiter.done():
            return
        logger.info("closed a connection that sent no complete request headers in %g s", HEADER_TIMEOUT_S)
        body = dumps({"error": {"code": "REQUEST_TIMEOUT", "message":
                                f"request headers: must arrive within {HEADER_TIMEOUT_S:g} s"}}).encode()
        self.transport.write(
            b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json; charset=utf-8\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        self.force_close()

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        status, text, field = classify(exc, status)
        if status == 500:
            # A bug: the one case that deserves a traceback.
            logger.error("%s %s failed", request.method, request.rel_url, exc_info=exc)
        else:
            # A client's bad bytes: one line, no traceback.
            logger.info("refused a malformed request from %s with %d: %s", request.remote, status, text)
        if request.writer.output_size > 0:
            raise ConnectionError("the response has started; cannot send the error")
        response = error_response(status, text, field)
        response.force_close()
        return response


class DoorServer(web.Server):
    def __call__(self) -> DoorRequestHandler:
        return DoorRequestHandler(self, loop=self._loop, **self._kwargs)


class DoorRunner(web.AppRunner):
    """An AppRunner whose connections are DoorRequestHandlers."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return DoorServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=server._loop,
            **server._kwargs,
        )
