"""The OpenAPI 3.1 document of the HTTP API, its message schemas derived from the protos."""

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from protos.gateway.v1 import gateway_pb2

_INT64_TYPES = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED64,
}
_INT32_TYPES = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_SFIXED32,
}
# The `code` of the error body for each HTTP status the API answers with;
# gRPC code names where one fits.
HTTP_ERROR_CODES = {
    400: "INVALID_ARGUMENT",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    500: "INTERNAL",
}

_WELL_KNOWN = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time", "description": "RFC 3339, UTC."},
}


def _schema_name(full_name: str) -> str:
    # chakong.bank.v1.Account -> bank.v1.Account: readable and unique.
    return full_name.removeprefix("chakong.")


def _field_schema(field: FieldDescriptor, schemas: dict) -> dict:
    if field.message_type is not None:
        known = _WELL_KNOWN.get(field.message_type.full_name)
        if known is not None:
            schema = dict(known)
        else:
            _message_schema(field.message_type, schemas)
            schema = {"$ref": f"#/components/schemas/{_schema_name(field.message_type.full_name)}"}
    elif field.enum_type is not None:
        schema = {"type": "string", "enum": [value.name for value in field.enum_type.values]}
    elif field.type in _INT64_TYPES:
        # proto3 JSON: 64-bit integers are strings, so no client loses precision.
        schema = {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}
    elif field.type in _INT32_TYPES:
        schema = {"type": "integer", "format": "int32"}
    elif field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        schema = {"type": "number"}
    elif field.type == FieldDescriptor.TYPE_BOOL:
        schema = {"type": "boolean"}
    elif field.type == FieldDescriptor.TYPE_BYTES:
        schema = {"type": "string", "contentEncoding": "base64"}
    else:
        schema = {"type": "string"}
    if field.is_repeated:
        return {"type": "array", "items": schema}
    return schema


def _message_schema(descriptor: Descriptor, schemas: dict) -> str:
    name = _schema_name(descriptor.full_name)
    if name not in schemas:
        schemas[name] = {}  # placeholder first: messages may refer to each other
        schemas[name] = {
            "type": "object",
            # Requests may also use the lowerCamel names, so extra names are not ruled out here.
            "properties": {field.name: _field_schema(field, schemas) for field in descriptor.fields},
        }
    return name


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str, headers: dict | None = None) -> dict:
    response = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _error(description: str) -> dict:
    return _json(_ref("Error"), description)


def openapi_document(default_deadline_ms: int) -> dict:
    schemas: dict[str, dict] = {}
    request_name = _message_schema(gateway_pb2.AssetQueryRequest.DESCRIPTOR, schemas)
    response_name = _message_schema(gateway_pb2.AssetQueryResponse.DESCRIPTOR, schemas)
    result_name = _message_schema(gateway_pb2.AgencyResult.DESCRIPTOR, schemas)
    request_schema = schemas[request_name]
    request_schema["description"] = (
        "proto3 JSON mapping of chakong.gateway.v1.AssetQueryRequest. Field names may be snake_case "
        "(as listed) or lowerCamelCase (requestId, agencyIds, deadlineMs, idNumber, ...); enum values "
        "as names or numbers. Unknown fields are rejected with 400."
    )
    request_schema["required"] = ["case", "subject"]
    request_schema["properties"]["deadline_ms"].update(
        minimum=0,
        description=(
            f"Overall deadline in milliseconds. 0 or absent means the gateway default "
            f"({default_deadline_ms} ms); a larger value is lowered to the default; negative is rejected."
        ),
    )
    request_schema["properties"]["request_id"].update(
        maxLength=128,
        pattern="^[0-9A-Za-z_.:-]*$",
        description="Optional; generated (uuid4 hex) when absent. Echoed in the response and X-Request-Id.",
    )
    request_schema["properties"]["agency_ids"]["description"] = (
        "Ask only these agencies (see GET /v1/agencies); empty means all. Unknown or repeated ids are rejected."
    )
    schemas[response_name]["description"] = (
        "proto3 JSON mapping of chakong.gateway.v1.AssetQueryResponse with the proto field names; "
        "every field is present, defaults included. 64-bit integers (amounts in fen) are JSON strings. "
        "Results are in registry order; an agency that failed has a status other than "
        "AGENCY_STATUS_OK and an error_message starting with the gRPC code."
    )
    schemas[result_name]["description"] = "One agency's outcome; sent as an SSE `result` event when streaming."
    schemas["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {
                        "type": "string",
                        "enum": [*HTTP_ERROR_CODES.values(), "UNKNOWN"],
                    },
                    "field": {
                        "type": "string",
                        "description": "Path of the offending field (e.g. subject.id_number), or `body`.",
                    },
                    "message": {"type": "string", "description": "`field: rule` for a bad field."},
                },
            }
        },
    }
    schemas["AgencyList"] = {
        "type": "object",
        "properties": {
            "agencies": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "pattern": "^[a-z0-9-]{1,32}$"},
                        "kind": {"type": "string", "enum": ["bank", "vehicle", "realestate"]},
                        "name": {"type": "string"},
                        "address": {"type": "string", "description": "host:port of the agency's gRPC endpoint"},
                        "timeout_ms": {"type": "integer"},
                    },
                },
            }
        },
    }
    schemas["Status"] = {
        "type": "object",
        "properties": {"status": {"type": "string"}, "reasons": {"type": "array", "items": {"type": "string"}}},
    }
    request_id_header = {
        "X-Request-Id": {"description": "The query's request_id.", "schema": {"type": "string"}}
    }
    query_body = {"required": True, "content": {"application/json": {"schema": _ref(request_name)}}}
    bad_query = {
        "400": _error("Invalid request: malformed JSON, not an object, unknown field, or a field breaking a rule."),
        "413": _error("Body larger than 64 KiB."),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "chakong asset gateway",
            "version": "1.0.0",
            "description": (
                "Court enforcement asset query (执行查控): one query fanned out to every bank, the vehicle "
                "registry and the real-estate registry in parallel, answered by the deadline with whatever "
                "arrived. The same API is offered over gRPC as chakong.gateway.v1.AssetGateway. Every error "
                "is the Error body; unknown paths give 404 and wrong methods 405."
            ),
        },
        "paths": {
            "/v1/queries": {
                "post": {
                    "operationId": "queryAssets",
                    "summary": "Query every (or the named) agency; answer when all answered or at the deadline.",
                    "requestBody": query_body,
                    "responses": {
                        "200": _json(
                            _ref(response_name),
                            "All results, complete or partial (failed agencies are reported inside).",
                            request_id_header,
                        ),
                        **bad_query,
                    },
                }
            },
            "/v1/queries/stream": {
                "post": {
                    "operationId": "streamAssets",
                    "summary": "The same query as server-sent events, each agency's result as it arrives.",
                    "requestBody": query_body,
                    "responses": {
                        "200": {
                            "description": (
                                "An SSE stream. One `event: result` per agency in arrival order (its `data:` "
                                "is one line of AgencyResult JSON), then one `event: final` whose data is an "
                                "AssetQueryResponse with summary, complete and latency_ms and an empty "
                                "results list. Each event carries an increasing `id:`."
                            ),
                            "headers": request_id_header,
                            "content": {
                                "text/event-stream": {
                                    "schema": {"type": "string"},
                                    # OpenAPI 3.1 has no SSE item schema; name the payloads.
                                    "x-sse-events": {
                                        "result": _ref(result_name),
                                        "final": _ref(response_name),
                                    },
                                }
                            },
                        },
                        **bad_query,
                    },
                }
            },
            "/v1/agencies": {
                "get": {
                    "operationId": "listAgencies",
                    "summary": "The agencies this gateway asks, in registry order.",
                    "responses": {"200": _json(_ref("AgencyList"), "The agency registry.")},
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness: the process answers.",
                    "responses": {"200": _json(_ref("Status"), "Alive.")},
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "ready",
                    "summary": "Readiness: registry loaded, channels open and the gRPC server started.",
                    "responses": {
                        "200": _json(_ref("Status"), "Ready for queries."),
                        "503": _json(_ref("Status"), "Not ready; `reasons` says why."),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics (text exposition, or OpenMetrics when asked by Accept).",
                    "responses": {
                        "200": {
                            "description": "The process's metrics.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document.",
                    "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1 document.")},
                }
            },
        },
        "components": {"schemas": schemas},
    }
