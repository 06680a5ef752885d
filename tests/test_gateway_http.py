"""The asset gateway over HTTP/JSON: queries, server-sent events, errors, health, metrics, OpenAPI."""

import asyncio
import contextlib
import json
import time

import aiohttp
import pytest
from google.protobuf import json_format

from protos.common.v1 import common_pb2
from protos.gateway.v1 import gateway_pb2
from services.gateway.config import GatewaySettings
from services.gateway.http_api.app import create_app
from services.gateway.root import open_gateway
from tests.support.agencies import start_agencies
from tests.support.auth import auth_headers
from tests.support.gateway import (
    DEADLINE_MS,
    ask_directly,
    debtor,
    query_body,
    register_showcase_case,
    running_gateway,
    sample,
    write_registry,
    wrong_check_character,
)
from tests.support.tls import GatewayEndpoints

METRIC_NAMES = (
    "chakong_gateway_agency_call_duration_seconds",
    "chakong_gateway_agency_calls_total",
    "chakong_gateway_agency_calls_in_flight",
    "chakong_gateway_query_duration_seconds",
    "chakong_gateway_queries_total",
)


async def gateway_client(aiohttp_client, tmp_path, agencies, *, grpc_serving=True):
    settings = GatewaySettings(
        agency_registry=write_registry(tmp_path, agencies), query_deadline_ms=DEADLINE_MS,
        data_dir=tmp_path, insecure_plaintext=True,
    )
    # The core lives as long as the app: closed at the app's cleanup, as server.py does after draining.
    resources = contextlib.AsyncExitStack()
    core = await resources.enter_async_context(open_gateway(settings))
    core.readiness.grpc_serving = grpc_serving
    app = create_app(core)
    app.on_cleanup.append(lambda app: resources.aclose())
    client = await aiohttp_client(app, headers=auth_headers())
    await register_showcase_case(str(client.make_url("")).rstrip("/"))
    return client


def parse_sse(text: str) -> list[dict]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append({"id": fields["id"], "event": fields["event"], "data": json.loads(fields["data"])})
    return events


async def test_query_answers_in_proto3_json(aiohttp_client, tmp_path, healthy):
    client = await gateway_client(aiohttp_client, tmp_path, healthy)
    response = await client.post("/v1/queries", json=query_body(requestId="http-1"))
    assert response.status == 200
    assert response.headers["X-Request-Id"] == "http-1"
    body = await response.json()

    assert body["request_id"] == "http-1" and body["complete"] is True
    assert [r["agency_id"] for r in body["results"]] == [a.id for a in healthy]
    assert {r["status"] for r in body["results"]} == {"AGENCY_STATUS_OK"}
    # proto3 JSON: int64 amounts are strings; defaults are printed.
    assert isinstance(body["summary"]["total_balance_fen"], str)
    assert body["results"][0]["error_message"] == "" and body["results"][2]["accounts"] == []
    parsed = json_format.ParseDict(body, gateway_pb2.AssetQueryResponse())
    assert list(parsed.results[0].accounts) == await ask_directly(healthy[0], debtor())
    assert parsed.summary.total_balance_fen == sum(
        a.balance_fen for r in parsed.results for a in r.accounts
    )


async def test_snake_case_names_and_a_subset_are_accepted(aiohttp_client, tmp_path, healthy):
    client = await gateway_client(aiohttp_client, tmp_path, healthy)
    body = query_body(agency_ids=["hefei-vmo"], deadline_ms=500)
    body["subject"] = {"type": debtor().type, "id_number": debtor().id_number}  # name is optional for queries
    response = await client.post("/v1/queries", json=body)
    assert response.status == 200, await response.text()
    answer = await response.json()
    assert [r["agency_id"] for r in answer["results"]] == ["hefei-vmo"]
    assert len(answer["request_id"]) == 32 == len(response.headers["X-Request-Id"])


async def test_stream_sends_server_sent_events_in_arrival_order(aiohttp_client, tmp_path, healthy, start_service):
    (slow,) = start_agencies(start_service, ("slow-bank", "bank", {"FAULT_LATENCY_P50_MS": "400"}))
    client = await gateway_client(aiohttp_client, tmp_path, [slow, *healthy])
    started = time.monotonic()
    response = await client.post("/v1/queries/stream", json=query_body(requestId="sse-1"))
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["X-Request-Id"] == "sse-1"
    received, arrivals = [], []
    async for line in response.content:
        received.append(line.decode())
        if line.startswith(b"event: "):
            arrivals.append(time.monotonic() - started)
    events = parse_sse("".join(received))
    assert [e["event"] for e in events] == ["result"] * 5 + ["final"]
    assert [e["id"] for e in events] == [str(n) for n in range(1, 7)]
    assert sorted(e["data"]["agency_id"] for e in events[:4]) == sorted(a.id for a in healthy)
    assert events[4]["data"]["agency_id"] == "slow-bank"
    # Each event was sent as it happened: the fast ones well before the slow one.
    assert arrivals[3] < 0.3 <= arrivals[4]
    final = events[5]["data"]
    assert final["request_id"] == "sse-1" and final["complete"] is True and final["results"] == []
    assert final["summary"]["agencies_ok"] == 5


LARGE = "x" * (64 * 1024)


@pytest.mark.parametrize(
    ("raw", "field", "status"),
    [
        (b"{not json", "body", 400),
        (b"", "body", 400),
        (b"[1, 2]", "body", 400),
        (b"[" * 60_000, "body", 400),
        (b"\xff\xfe{}", "body", 400),
        (json.dumps(query_body(colour="red")).encode(), "colour", 400),
        (json.dumps(query_body(subject={"idNumbr": "x"})).encode(), "subject.idNumbr", 400),
        (json.dumps(query_body(deadlineMs="soon")).encode(), "deadline_ms", 400),
        (json.dumps(query_body(deadlineMs=-5)).encode(), "deadline_ms", 400),
        (json.dumps(query_body(agencyIds=["icbc", "mars-bank"])).encode(), "agency_ids", 400),
        (json.dumps(query_body(requestId=LARGE[:200])).encode(), "request_id", 400),
        (json.dumps(query_body(requestId=LARGE)).encode(), "body", 413),
    ],
)
async def test_bad_bodies_are_rejected_naming_the_field(aiohttp_client, tmp_path, healthy, raw, field, status):
    client = await gateway_client(aiohttp_client, tmp_path, healthy)
    for path in ("/v1/queries", "/v1/queries/stream"):
        response = await client.post(path, data=raw, headers={"Content-Type": "application/json"})
        assert response.status == status, path
        error = (await response.json())["error"]
        assert error["code"] == ("INVALID_ARGUMENT" if status == 400 else "PAYLOAD_TOO_LARGE")
        assert error["field"] == field
        assert error["message"].startswith(f"{field}: ")


async def test_a_bad_identifier_and_an_unknown_enum_name_their_fields(aiohttp_client, tmp_path, healthy):
    client = await gateway_client(aiohttp_client, tmp_path, healthy)
    body = query_body()
    good = body["subject"]["idNumber"]
    body["subject"]["idNumber"] = wrong_check_character(good)
    response = await client.post("/v1/queries", json=body)
    error = (await response.json())["error"]
    assert (response.status, error["code"], error["field"]) == (400, "INVALID_ARGUMENT", "subject.id_number")
    assert error["message"].startswith("subject.id_number: check character does not match")
    body["subject"]["type"] = "SUBJECT_TYPE_DOG"
    response = await client.post("/v1/queries", json=body)
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "subject.type"


async def test_agencies_health_and_readiness(aiohttp_client, tmp_path, healthy):
    client = await gateway_client(aiohttp_client, tmp_path, healthy)
    agencies = (await (await client.get("/v1/agencies")).json())["agencies"]
    assert agencies == [
        {
            "id": a.id, "kind": a.kind, "name": f"{a.id} 测试", "address": a.address, "timeout_ms": 1500,
            "health": "up", "ejected_until": "", "source": "file", "external": False,
        }
        for a in healthy
    ]
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200

    not_serving = await gateway_client(aiohttp_client, tmp_path, healthy, grpc_serving=False)
    response = await not_serving.get("/readyz")
    assert response.status == 503
    assert "gRPC server not started" in (await response.json())["reasons"]


async def test_readiness_follows_the_whole_gateway(tmp_path, healthy):
    async with running_gateway(tmp_path, healthy, tls=True) as gateway:
        endpoints = GatewayEndpoints.of(gateway)
        async with endpoints.session(headers=auth_headers()) as session:
            async with session.get("/readyz") as response:
                assert response.status == 200
            async with session.post("/v1/queries", json=query_body()) as response:
                assert (await response.json())["complete"] is True


async def test_metrics_after_a_query(aiohttp_client, tmp_path, healthy):
    client = await gateway_client(aiohttp_client, tmp_path, healthy)
    assert (await client.post("/v1/queries", json=query_body())).status == 200
    assert (await client.post("/v1/queries", json={"nope": 1})).status == 400
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    text = await response.text()
    for name in METRIC_NAMES:
        assert f"# TYPE {name}" in text, name
    assert 'chakong_gateway_queries_total{api="http",court="340100",result="complete"}' in text
    # No case, so no court: a body that does not say which court is labelled "other".
    assert 'chakong_gateway_queries_total{api="http",court="other",result="rejected"}' in text
    assert 'chakong_gateway_agency_calls_total{agency="icbc",method="QueryAccounts",outcome="OK"}' in text
    bucket = (
        "chakong_gateway_agency_call_duration_seconds_bucket"
        '{agency="hefei-rer",le="0.001",method="QueryProperties"}'
    )
    assert bucket in text
    # Labels stay bounded: no subject or case in any series.
    assert debtor().id_number not in text and "执" not in text


async def test_openapi_describes_every_path(aiohttp_client, tmp_path, healthy):
    client = await gateway_client(aiohttp_client, tmp_path, healthy)
    document = json.loads(await (await client.get("/openapi.json")).text())
    assert document["openapi"] == "3.1.0"
    routes = {(r.method.lower(), r.resource.canonical) for r in client.app.router.routes() if r.method != "HEAD"}
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert documented == routes
    schemas = document["components"]["schemas"]

    def refs(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(document):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    assert schemas["gateway.v1.AssetSummary"]["properties"]["total_balance_fen"]["type"] == "string"
    assert "text/event-stream" in document["paths"]["/v1/queries/stream"]["post"]["responses"]["200"]["content"]
    assert "400" in document["paths"]["/v1/queries"]["post"]["responses"]


async def test_unknown_paths_and_wrong_methods_get_json_errors(aiohttp_client, tmp_path, healthy):
    client = await gateway_client(aiohttp_client, tmp_path, healthy)
    response = await client.get("/v1/nothing-here")
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "NOT_FOUND"
    response = await client.get("/v1/queries")
    assert response.status == 405
    assert response.headers["Allow"] == "POST"
    assert (await response.json())["error"]["code"] == "METHOD_NOT_ALLOWED"


def test_fast_json_rendering_equals_message_to_dict():
    """jsonmap renders exactly what json_format would, for every field kind the answers carry."""
    from google.protobuf import json_format

    from protos.bank.v1 import bank_pb2
    from services.gateway.http_api.jsonmap import message_to_dict

    response = gateway_pb2.AssetQueryResponse(request_id="r", latency_ms=float("inf"))
    result = response.results.add(agency_id="icbc", kind=1, status=4, error_message="INTERNAL: x", latency_ms=1.5)
    account = result.accounts.add(account_number="6222", type=2, balance_fen=2**40, status=7)  # unknown enum
    freeze = account.freezes.add(freeze_id="f", state=common_pb2.HOLD_STATE_QUEUED, requested_fen=-3)
    freeze.registered_at.FromNanoseconds(1_767_225_600_123_456_789)
    vehicle = result.vehicles.add(plate="皖A12345")
    vehicle.seals.add(seal_id="s").expires_at.FromSeconds(1_800_000_000)
    prop = result.properties.add(area_m2=89.25)
    prop.owners.add(share_bp=10_000).subject.CopyFrom(common_pb2.Subject(type=1, id_number="x", name="张三"))
    prop.mortgages.add(mortgagee="m", amount_fen=5)
    response.results.add(agency_id="empty")
    response.summary.agencies_asked = 2
    event = gateway_pb2.AssetQueryEvent(result=result)
    for message in (response, event, event.result, gateway_pb2.AssetQueryEvent(), bank_pb2.Account()):
        expected = json_format.MessageToDict(
            message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
        assert message_to_dict(message) == expected


async def test_a_stream_client_hanging_up_cancels_the_agency_calls(tmp_path, healthy, start_service):
    (slow,) = start_agencies(start_service, ("hangup-bank", "bank", {"FAULT_LATENCY_P50_MS": "3000"}))
    in_flight = {"agency": "hangup-bank"}
    # The caller went away: CANCELLED, no blame on the agency (a deadline's cut-off is a TIMEOUT).
    cut_off = {"agency": "hangup-bank", "method": "QueryAccounts", "outcome": "CANCELLED"}
    before = sample("chakong_gateway_agency_calls_total", **cut_off)
    # No hold feed reading: it would be a second call in flight to the slow bank.
    async with running_gateway(tmp_path, [slow, healthy[0]], deadline_ms=5000, hold_sync_seconds=0,
                               tls=True) as gateway:
        async with GatewayEndpoints.of(gateway).session(headers=auth_headers()) as session:
            async with session.post("/v1/queries/stream", json=query_body()) as response:
                first = await response.content.readuntil(b"\n\n")
                assert b"event: result" in first and b"icbc" in first
                assert sample("chakong_gateway_agency_calls_in_flight", **in_flight) == 1
        # Hung up long before the agency answers or the deadline passes.
        for _ in range(100):
            if sample("chakong_gateway_agency_calls_in_flight", **in_flight) == 0:
                break
            await asyncio.sleep(0.01)
        assert sample("chakong_gateway_agency_calls_in_flight", **in_flight) == 0
        assert sample("chakong_gateway_agency_calls_total", **cut_off) == before + 1
