"""A fault-injecting TCP proxy (asyncio) to put between the gateway and an agency.

It forwards bytes both ways, and on demand:

- `drop_next_response()`: the next request (the first chunk of at least
  `MIN_REQUEST_BYTES` from the client, so HTTP/2 pings and window updates do
  not count) is forwarded to the agency; whatever the agency answers on that
  connection is thrown away, and after `hold_s` (time for the agency to
  act) both sides are cut. The caller sees its connection reset: a lost
  reply to a request that took effect.
- `cut()` / `heal()`: refuse and reset every connection, as an agency that
  is down or unreachable; then let them through again.
"""

import asyncio
import contextlib
import logging

logger = logging.getLogger(__name__)

MIN_REQUEST_BYTES = 64
CHUNK = 65536


class FaultProxy:
    def __init__(self, upstream: str):
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.address = ""
        self.dropped_responses = 0
        self.connections = 0
        self._armed: asyncio.Event | None = None
        self._hold_s = 0.3
        self._cut = False
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> "FaultProxy":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.address = f"127.0.0.1:{port}"
        return self

    def drop_next_response(self, hold_s: float = 0.3) -> asyncio.Event:
        """Arm: lose the answer to the next request. The event is set once it has been dropped."""
        self._hold_s = hold_s
        self._armed = asyncio.Event()
        return self._armed

    def cut(self) -> None:
        self._cut = True
        for writer in list(self._open):
            _abort(writer)

    def heal(self) -> None:
        self._cut = False

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._open):
                _abort(writer)
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._tasks.add(asyncio.current_task())
        try:
            if self._cut:
                _abort(client_writer)
                return
            self.connections += 1
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                _abort(client_writer)
                return
            self._open.update((client_writer, upstream_writer))
            victim = asyncio.Event()  # set when this connection carries the request whose answer is lost

            async def client_to_upstream():
                while data := await client_reader.read(CHUNK):
                    armed = self._armed
                    if armed is not None and not armed.is_set() and not victim.is_set() \
                            and len(data) >= MIN_REQUEST_BYTES:
                        victim.set()
                        self._armed = None
                        asyncio.get_running_loop().call_later(self._hold_s, self._cut_victim,
                                                              client_writer, upstream_writer, armed)
                    upstream_writer.write(data)
                    await upstream_writer.drain()

            async def upstream_to_client():
                while data := await upstream_reader.read(CHUNK):
                    if victim.is_set():
                        continue  # the answer is lost on the way back
                    client_writer.write(data)
                    await client_writer.drain()

            pumps = [asyncio.create_task(client_to_upstream()), asyncio.create_task(upstream_to_client())]
            with contextlib.suppress(Exception):
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for writer in (client_writer, upstream_writer):
                self._open.discard(writer)
                _abort(writer)
        finally:
            self._tasks.discard(asyncio.current_task())

    def _cut_victim(self, client_writer, upstream_writer, armed: asyncio.Event) -> None:
        self.dropped_responses += 1
        logger.info("faultproxy: dropped the response to a request and reset the connection")
        _abort(client_writer)
        _abort(upstream_writer)
        armed.set()


def _abort(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.transport.abort()
