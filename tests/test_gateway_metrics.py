"""The gateway's own counts, in process: a broken answer is INVALID_RESPONSE, a removed agency's series go, the door's
refusals reach the gRPC and query counts."""

import contextlib

import grpc
import pytest

from protos.bank.v1 import bank_pb2, bank_pb2_grpc
from protos.gateway.v1 import gateway_pb2_grpc
from tests.support.agencies import Agency
from tests.support.auth import auth_headers, issue_token
from tests.support.gateway import asset_request, query_body, running_gateway, sample, write_registry
from tests.support.tls import GatewayEndpoints


class BrokenBank(bank_pb2_grpc.BankServicer):
    """Answers every query with an account whose balance is negative."""

    async def QueryAccounts(self, request, context):
        return bank_pb2.QueryAccountsResponse(accounts=[bank_pb2.Account(
            account_number="6222021234567890123", currency="CNY", balance_fen=-1, available_balance_fen=-1)])


@contextlib.asynccontextmanager
async def broken_banks(*ids: str):
    servers, agencies = [], []
    for agency_id in ids:
        server = grpc.aio.server()
        bank_pb2_grpc.add_BankServicer_to_server(BrokenBank(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        agencies.append(Agency(agency_id, "bank", f"127.0.0.1:{port}"))
    try:
        yield agencies
    finally:
        for server in servers:
            await server.stop(0)


def calls(agency: str, outcome: str, method: str = "QueryAccounts") -> float | None:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(
        "chakong_gateway_agency_calls_total", {"agency": agency, "method": method, "outcome": outcome})


async def test_a_broken_answer_counts_as_invalid_answer_and_a_removed_agency_loses_its_series(tmp_path):
    async with broken_banks("broken-a", "broken-b") as agencies, running_gateway(tmp_path, agencies, tls=True) as gateway:
        # Registered: every method of the kind and every outcome, at zero.
        assert calls("broken-a", "INVALID_RESPONSE") == 0
        assert calls("broken-a", "EJECTED", "Deduct") == 0
        async with GatewayEndpoints.of(gateway).session(headers=auth_headers()) as session:
            async with session.post("/v1/queries", json=query_body()) as response:
                body = await response.json()
        assert [r["status"] for r in body["results"]] == ["AGENCY_STATUS_ERROR"] * 2
        assert calls("broken-a", "INVALID_RESPONSE") == 1 and calls("broken-a", "OK") == 0

        write_registry(tmp_path, agencies[1:])
        assert await gateway.core.reloader.reload("test")
        assert calls("broken-a", "INVALID_RESPONSE") is None
        assert sample("chakong_gateway_agency_up", agency="broken-a") == 0.0  # gone: no sample
        assert calls("broken-b", "INVALID_RESPONSE") == 1


@pytest.mark.parametrize(("token", "code", "result", "court"), [
    (None, grpc.StatusCode.UNAUTHENTICATED, "unauthenticated", "unknown"),
    ("not-a-token", grpc.StatusCode.UNAUTHENTICATED, "unauthenticated", "unknown"),
    # Another court's executor: its court has no registered case, so "other".
    ("court:340200", grpc.StatusCode.PERMISSION_DENIED, "denied", "other"),
])
async def test_refusals_at_the_door_reach_the_grpc_and_query_counts(tmp_path, token, code, result, court):
    if token and token.startswith("court:"):
        token = issue_token(court=token.removeprefix("court:"))
    async with broken_banks("broken-c") as agencies, running_gateway(tmp_path, agencies, tls=True) as gateway:
        handled = {"grpc_service": "chakong.gateway.v1.AssetGateway", "grpc_method": "QueryAssets",
                   "grpc_code": code.name}
        before = sample("grpc_server_handled_total", **handled)
        refused = sample("chakong_gateway_queries_total", api="grpc", result=result, court=court)
        async with GatewayEndpoints.of(gateway).channel() as channel:
            metadata = [("authorization", f"Bearer {token}")] if token else []
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await gateway_pb2_grpc.AssetGatewayStub(channel).QueryAssets(asset_request(), metadata=metadata,
                                                                            timeout=5)
        assert error.value.code() is code
        assert sample("grpc_server_handled_total", **handled) == before + 1
        assert sample("chakong_gateway_queries_total", api="grpc", result=result, court=court) == refused + 1
