"""The OpenAPI document is made from the route declarations: a route declared is a path documented,
with the door's statuses, the full error-code enum and the input rules (issue 10, finding 5)."""

import grpc
import pytest
from aiohttp import web

from protos.gateway.v1 import gateway_pb2
from services.gateway.errors import HTTP_ERROR_CODES
from services.gateway.http_api.app import open_routes, routes
from services.gateway.http_api.openapi import openapi_document
from services.gateway.http_api.routes import Answer, Route
from services.gateway.query.operations import QUERY_ASSETS

AGENCIES = (("icbc", "bank"), ("hefei-vmo", "vehicle"), ("hefei-rer", "realestate"))


def document(extra=()):
    return openapi_document([*routes(), *extra], open_routes(), 1000, AGENCIES)


def test_a_route_declared_is_a_path_documented():
    async def handler(request, admitted):
        return web.json_response({})

    extra = Route("POST", "/v1/queries/again", QUERY_ASSETS, handler, "queryAgain", "The query, again.",
                  (Answer(200, "Answered.", gateway_pb2.AssetQueryResponse),))
    paths = document([extra])["paths"]
    assert paths["/v1/queries/again"]["post"]["operationId"] == "queryAgain"
    assert set(paths["/v1/queries/again"]["post"]["responses"]) >= {"200", "400", "401", "413", "415", "429"}


def test_every_guarded_operation_states_the_door_statuses():
    paths = document()["paths"]
    for route in routes():
        responses = paths[route.path][route.method.lower()]["responses"]
        door = {"400", "401", "403", "404", "414", "429", "431", "503"}
        if route.has_body:
            door |= {"408", "413", "415"}
        assert door <= set(responses), (route.path, sorted(responses))
        for status in ("429", "503"):
            assert responses[status]["headers"]["Retry-After"]["required"] is True


def test_the_error_code_enum_has_every_code_the_gateway_answers():
    codes = set(document()["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"])
    assert {code.name for code in grpc.StatusCode} <= codes
    assert set(HTTP_ERROR_CODES.values()) <= codes
    assert "FAILED_PRECONDITION" in codes


def test_request_schemas_state_their_rules():
    schemas = document()["components"]["schemas"]
    freeze = schemas["gateway.v1.FreezeFundsRequest.input"]
    assert freeze["additionalProperties"] is False
    assert set(freeze["required"]) >= {"case", "agency_id", "subject", "account_number", "amount_fen"}
    assert freeze["properties"]["agency_id"]["enum"] == ["icbc"]
    assert freeze["properties"]["amount_fen"]["pattern"].startswith("^(?:[1-9]")
    case = schemas["common.v1.CaseRef.input"]
    assert "执" in case["properties"]["case_number"]["pattern"]
    formats = {variant["properties"]["id_number"].get("format") for variant in schemas["Subject.input"]["oneOf"]}
    assert formats == {"cn-resident-id", "cn-credit-code", None}


@pytest.mark.parametrize("text,valid", [("张三", True), ("A B", True), (" A", False), ("A\u0000", False),
                                        ("A\u200b", False), ("", False)])
def test_the_text_pattern_matches_what_require_text_accepts(text, valid):
    import re

    pattern = document()["components"]["schemas"]["Text.100"]["pattern"]
    assert bool(re.search(pattern, text)) is valid


def test_the_stream_documents_its_events():
    document_ = document()
    content = document_["paths"]["/v1/queries/stream"]["post"]["responses"]["200"]["content"]["text/event-stream"]
    assert content["x-item-schema"] == {"$ref": "#/components/schemas/QueryEvent"}
    events = document_["components"]["schemas"]["QueryEvent"]["oneOf"]
    assert [e["properties"]["event"]["const"] for e in events] == ["result", "final"]
