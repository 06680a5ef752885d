"""The gateway as a child process (`python -m services.gateway`, via the start_service fixture), queried over HTTP."""

import asyncio
import contextlib
from pathlib import Path

from google.protobuf import json_format

from tests.support.gateway import DEADLINE_MS as GATEWAY_DEADLINE_MS
from tests.support.gateway import asset_request, register_showcase_case, write_registry
from tests.support.harness import ServiceProcess
from tests.support.tls import TLS_PORTS_ENV, GatewayEndpoints

DEADLINE_MS = 1000


def start_gateway(tmp_path, start_service, agencies, *, tls: bool = False, **env):
    """`python -m services.gateway` before `agencies`: (process, registry file, base URL).

    Its ports serve TLS with the run's certificate when `tls` (reach it
    with GatewayEndpoints.of(process)), plaintext otherwise.
    """
    registry = write_registry(tmp_path, agencies)
    defaults = {
        "GATEWAY_GRPC_ADDRESS": "127.0.0.1:0",
        "GATEWAY_HTTP_ADDRESS": "127.0.0.1:0",
        "AGENCY_REGISTRY": str(registry),
        "QUERY_DEADLINE_MS": str(DEADLINE_MS),
        "GRACE_SECONDS": "2",
        "INSECURE_PLAINTEXT": "1",
        "EJECT_AFTER_FAILURES": "3",
        "EJECT_COOLDOWN_SECONDS": "1",
        **(TLS_PORTS_ENV if tls else {}),
    }
    gateway = start_service("services.gateway", **{**defaults, **env})
    return gateway, registry, GatewayEndpoints.of(gateway).base_url


def query_body() -> dict:
    return json_format.MessageToDict(asset_request(), preserving_proto_field_name=True)


async def query(session, base) -> dict[str, dict]:
    async with session.post(f"{base}/v1/queries", json=query_body()) as response:
        assert response.status == 200, await response.text()
        return {result["agency_id"]: result for result in (await response.json())["results"]}


@contextlib.contextmanager
def showcase_gateway(directory: Path, agencies):
    """`python -m services.gateway` over `agencies` (plaintext, port 0) with the showcase case registered."""
    service = ServiceProcess("services.gateway", {
        "DATA_DIR": str(directory),
        "INSECURE_PLAINTEXT": "1",
        "GATEWAY_GRPC_ADDRESS": "127.0.0.1:0",
        "GATEWAY_HTTP_ADDRESS": "127.0.0.1:0",
        "AGENCY_REGISTRY": str(write_registry(directory, agencies)),
        "QUERY_DEADLINE_MS": str(GATEWAY_DEADLINE_MS),
        "GRACE_SECONDS": "1",
    }).start()
    try:
        try:
            asyncio.run(register_showcase_case(GatewayEndpoints.of(service)))
        except AssertionError:
            print("".join(service.output))
            raise
        yield service
    finally:
        service.stop()
