"""The gateway's public HTTP API as the console calls it, with the signed-in officer's token."""

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp

from services.common.tls import gateway_client_context

logger = logging.getLogger(__name__)

TIMEOUT = aiohttp.ClientTimeout(total=30, connect=5)
STREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=5, sock_read=30)


@dataclass
class Answer:
    """What the gateway answered: its status and JSON body."""

    status: int
    body: dict

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error(self) -> dict:
        """The documented error body's `error` ({code, field?, message}), {} on success."""
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return error if isinstance(error, dict) else {}

    @property
    def message(self) -> str:
        return self.error.get("message", f"HTTP {self.status}")


class GatewayUnreachable(Exception):
    """The gateway did not answer (down, refused, timed out)."""


def case_path(case_number: str) -> str:
    return f"/v1/cases/{quote(case_number, safe='')}"


class Gateway:
    def __init__(self, base_url: str, ca_file: str = ""):
        self.base_url = base_url
        # An https gateway's certificate must come from this CA (the development CA under `make run`).
        self._ssl = gateway_client_context(ca_file) if ca_file else None
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(self.base_url, timeout=TIMEOUT,
                                              connector=aiohttp.TCPConnector(ssl=self._ssl or True, limit=64))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    @staticmethod
    def _headers(token: str, idempotency_key: str = "") -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token}"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    async def call(self, method: str, path: str, token: str, *, json_body: dict | None = None,
                   params: dict | None = None, idempotency_key: str = "") -> Answer:
        assert self._session is not None
        try:
            async with self._session.request(method, path, json=json_body, params=params,
                                             headers=self._headers(token, idempotency_key)) as response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("gateway %s %s: %s", method, path, exc)
            raise GatewayUnreachable(f"the gateway did not answer ({type(exc).__name__})") from None
        try:
            body = json.loads(text) if text else {}
        except ValueError:
            body = {"error": {"code": "BAD_ANSWER", "message": f"the gateway answered HTTP {response.status}"}}
        return Answer(response.status, body)

    async def get(self, path: str, token: str, **params) -> Answer:
        return await self.call("GET", path, token, params={k: v for k, v in params.items() if v} or None)

    async def post(self, path: str, token: str, body: dict, idempotency_key: str = "") -> Answer:
        return await self.call("POST", path, token, json_body=body, idempotency_key=idempotency_key)

    async def stream_query(self, token: str, body: dict) -> AsyncIterator[tuple[str, dict]]:
        """POST /v1/queries/stream: (event, data) as each arrives; ("error", body) if it is refused."""
        async for event in self.events("POST", "/v1/queries/stream", token, body):
            yield event

    async def events(self, method: str, path: str, token: str, body: dict | None = None
                     ) -> AsyncIterator[tuple[str, dict]]:
        """A server-sent event stream of the gateway's: (event, JSON data) as each arrives; ("error", body) if the
        gateway refused it or did not answer. Comment lines (keep-alives) are skipped."""
        assert self._session is not None
        try:
            async with self._session.request(method, path, json=body, headers=self._headers(token),
                                             timeout=STREAM_TIMEOUT) as response:
                if response.status != 200:
                    text = await response.text()
                    try:
                        yield "error", json.loads(text)
                    except ValueError:
                        yield "error", {"error": {"message": f"the gateway answered HTTP {response.status}"}}
                    return
                event, data = "", []
                async for raw in response.content:
                    line = raw.decode().rstrip("\r\n")
                    if line.startswith("event: "):
                        event = line[len("event: "):]
                    elif line.startswith("data: "):
                        data.append(line[len("data: "):])
                    elif not line and event:
                        yield event, json.loads("\n".join(data))
                        event, data = "", []
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("gateway stream %s: %s", path, exc)
            yield "error", {"error": {"message": f"the gateway did not answer ({type(exc).__name__})"}}

    async def upload(self, path: str, token: str, data: bytes, content_type: str) -> Answer:
        """POST a file's bytes as they are (a batch's CSV or XLSX)."""
        assert self._session is not None
        headers = {**self._headers(token), "Content-Type": content_type}
        try:
            async with self._session.post(path, data=data, headers=headers) as response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GatewayUnreachable(f"the gateway did not answer ({type(exc).__name__})") from None
        try:
            return Answer(response.status, json.loads(text) if text else {})
        except ValueError:
            return Answer(response.status, {"error": {"message": f"the gateway answered HTTP {response.status}"}})

    async def download(self, path: str, token: str, params: dict) -> AsyncIterator[bytes | Answer]:
        """GET a file: first the Answer (status, with the headers' type and name in body), then its chunks."""
        assert self._session is not None
        try:
            async with self._session.get(path, params=params, headers=self._headers(token),
                                         timeout=STREAM_TIMEOUT) as response:
                if response.status != 200:
                    text = await response.text()
                    try:
                        yield Answer(response.status, json.loads(text))
                    except ValueError:
                        yield Answer(response.status, {})
                    return
                yield Answer(200, {"content_type": response.headers.get("Content-Type", ""),
                                   "disposition": response.headers.get("Content-Disposition", "")})
                async for chunk in response.content.iter_chunked(64 * 1024):
                    yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GatewayUnreachable(f"the gateway did not answer ({type(exc).__name__})") from None

    async def operations(self) -> frozenset[str] | None:
        """The operation IDs the gateway's /openapi.json declares (no token); None when it did not answer."""
        assert self._session is not None
        try:
            async with self._session.get("/openapi.json") as response:
                if response.status != 200:
                    return None
                document = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            logger.warning("gateway openapi.json: %s", exc)
            return None
        return frozenset(op["operationId"] for item in document.get("paths", {}).values()
                         for op in item.values() if isinstance(op, dict) and "operationId" in op)

    async def metrics(self) -> str:
        """The gateway's /metrics text (no token: it is a scrape)."""
        assert self._session is not None
        try:
            async with self._session.get("/metrics") as response:
                return await response.text() if response.status == 200 else ""
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("gateway metrics: %s", exc)
            return ""
