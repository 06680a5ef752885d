"""The HTTP door holds (issue 10, finding 6): header-read, body and keep-alive timeouts, and the
request line, header count and header size limits answered with the JSON error body, with no
traceback in the log for bad bytes."""

import asyncio
import json
import logging

import pytest

from services.gateway.http_api import limits, routes
from tests.support.auth import auth_headers
from tests.support.gateway import running_gateway


@pytest.fixture
async def gateway(tmp_path, healthy, monkeypatch):
    monkeypatch.setattr(limits, "HEADER_TIMEOUT_S", 0.5)
    monkeypatch.setattr(routes, "BODY_TIMEOUT_S", 0.5)
    monkeypatch.setitem(limits.SERVER_OPTIONS, "keepalive_timeout", 1.0)
    async with running_gateway(tmp_path, healthy) as started:
        host, port = started.endpoints["http"].rsplit(":", 1)
        yield host, int(port)


async def exchange(address, data: bytes, *, wait: float = 5.0) -> bytes:
    """Send `data`, read one response (or until the server closes, or `wait` passes)."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(wait):
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as closed:
                return closed.partial
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            return head + await reader.readexactly(length)
    finally:
        writer.close()


def parse(raw: bytes) -> tuple[int, dict, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)


async def test_a_too_long_url_is_414_in_json(gateway):
    path = "/v1/cases/" + "x" * limits.MAX_LINE_BYTES
    status, headers, body = parse(await exchange(gateway, f"GET {path} HTTP/1.1\r\nHost: a\r\n\r\n".encode()))
    assert status == 414
    assert headers["Content-Type"].startswith("application/json")
    assert body["error"]["code"] == "URI_TOO_LONG"


async def test_a_too_long_header_is_431_in_json(gateway):
    request = f"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: {'y' * (limits.MAX_FIELD_BYTES + 10)}\r\n\r\n"
    status, _, body = parse(await exchange(gateway, request.encode()))
    assert status == 431
    assert body["error"]["code"] == "REQUEST_HEADER_FIELDS_TOO_LARGE"


async def test_too_many_headers_is_431_in_json(gateway):
    many = "".join(f"X-H{i}: v\r\n" for i in range(limits.MAX_HEADERS + 5))
    status, _, body = parse(await exchange(gateway, f"GET /healthz HTTP/1.1\r\nHost: a\r\n{many}\r\n".encode()))
    assert status == 431
    assert body["error"]["field"] == "headers"


async def test_a_nul_byte_in_a_header_is_400_in_json_and_no_traceback(gateway, caplog):
    with caplog.at_level(logging.DEBUG):
        raw = await exchange(gateway, b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Bad: a\x00b\r\n\r\n")
    status, _, body = parse(raw)
    assert status == 400
    assert body["error"]["code"] == "INVALID_ARGUMENT"
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]


async def test_headers_sent_too_slowly_are_cut_off_with_408(gateway):
    # Half a request line, then silence: closed at the header timeout, not at keep-alive.
    raw = await exchange(gateway, b"GET /healthz HTT", wait=3)
    status, _, body = parse(raw)
    assert status == 408
    assert body["error"]["code"] == "REQUEST_TIMEOUT"


async def test_a_body_sent_too_slowly_is_408(gateway):
    head = (f"POST /v1/queries HTTP/1.1\r\nHost: a\r\nAuthorization: {auth_headers()['Authorization']}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
    status, _, body = parse(await exchange(gateway, head.encode(), wait=3))
    assert status == 408
    assert body["error"]["field"] == "body"


async def test_a_silent_connection_is_closed_at_the_header_timeout(gateway):
    status, _, body = parse(await exchange(gateway, b"", wait=3))
    assert status == 408


async def test_an_idle_keep_alive_connection_is_closed(gateway):
    reader, writer = await asyncio.open_connection(*gateway)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
        assert head.startswith(b"HTTP/1.1 200")
        length = int(next(l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")).split(b":")[1])
        await reader.readexactly(length)
        # Then nothing: the keep-alive timer (1 s here) closes it.
        assert await asyncio.wait_for(reader.read(), 4) == b""
    finally:
        writer.close()
