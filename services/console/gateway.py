"""The gateway's public HTTP API as the console calls it, with the signed-in officer's token."""

import json
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp

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
        self._ssl = ssl.create_default_context(cafile=ca_file) if ca_file else None
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
        assert self._session is not None
        try:
            async with self._session.post("/v1/queries/stream", json=body, headers=self._headers(token),
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
            logger.warning("gateway query stream: %s", exc)
            yield "error", {"error": {"message": f"the gateway did not answer ({type(exc).__name__})"}}

    async def metrics(self) -> str:
        """The gateway's /metrics text (no token: it is a scrape)."""
        assert self._session is not None
        try:
            async with self._session.get("/metrics") as response:
                return await response.text() if response.status == 200 else ""
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("gateway metrics: %s", exc)
            return ""
