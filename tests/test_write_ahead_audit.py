"""Write-ahead audit: no agency is asked before the request's audit record is durable.

Through every door (HTTP and gRPC, unary and streamed queries, control
actions), with the audit store broken while the gateway runs: the caller
gets 503 / UNAVAILABLE with retry-after, and the agency's own metrics show
it was never called.
"""

import grpc
import pytest

from protos.gateway.v1 import control_pb2, control_pb2_grpc, gateway_pb2, gateway_pb2_grpc
from tests.support.agencies import BANK
from tests.support.auth import issue_token
from tests.support.control import control_stack, freeze_body, new_case_number
from tests.support.metrics import calls_served


@pytest.fixture
async def broken_audit(agencies, tmp_path):
    """A gateway whose audit store stops working after a case is registered."""
    async with control_stack(tmp_path, agencies, f"sqlite:///{tmp_path}/ledger.db", hold_sync_seconds=0) as stack:
        number = new_case_number()
        debtor = stack.debtor(0)
        await stack.http.register(number, debtor)
        await stack.gateway.core.door.audit.close()
        yield stack, number, debtor


def query(number: str, debtor) -> gateway_pb2.AssetQueryRequest:
    body = freeze_body(number, debtor, 1)
    return gateway_pb2.AssetQueryRequest(
        case={"case_number": number, "court_code": body["case"]["court_code"], "executor_id": "E0001",
              "document_number": body["case"]["document_number"]},
        subject=debtor.subject, agency_ids=[BANK],
    )


async def test_no_agency_is_asked_when_the_audit_record_cannot_be_written(broken_audit):
    stack, number, debtor = broken_audit
    bank = stack.agencies[BANK]
    before = {method: calls_served(bank, method) for method in ("QueryAccounts", "Freeze")}
    request = query(number, debtor)
    body = {"case": freeze_body(number, debtor, 1)["case"], "subject": freeze_body(number, debtor, 1)["subject"],
            "agency_ids": [BANK]}

    for path in ("/v1/queries", "/v1/queries/stream"):
        reply = await stack.http.post(path, body)
        assert reply.status == 503, reply.body
        assert "audit" in reply.body["error"]["message"] and reply.headers["Retry-After"]
    reply = await stack.http.post("/v1/freezes", freeze_body(number, debtor, 100))
    assert reply.status == 503, reply.body

    async with stack.endpoints.channel(issue_token()) as channel:
        gateway = gateway_pb2_grpc.AssetGatewayStub(channel)
        control = control_pb2_grpc.EnforcementControlStub(channel)

        async def stream():
            return [event async for event in gateway.StreamAssets(request, timeout=5)]

        freeze = control_pb2.FreezeFundsRequest(
            case=request.case, agency_id=BANK, subject=debtor.subject, account_number=debtor.account, amount_fen=100,
        )
        for call in (gateway.QueryAssets(request, timeout=5), stream(), control.Freeze(freeze, timeout=5)):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert dict(refused.value.trailing_metadata() or ())["retry-after"]

    # The bank's own count: not one query or freeze reached it.
    assert {method: calls_served(bank, method) for method in before} == before
