"""The OpenAPI 3.1 document of the HTTP API, its message schemas derived from the protos."""

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from protos.gateway.v1 import control_pb2, gateway_pb2
from services.gateway.control.kinds import KINDS
from services.gateway.errors import HTTP_ERROR_CODES

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
                        "health": {"type": "string", "enum": ["up", "ejected"]},
                        "ejected_until": {"type": "string", "description": "RFC 3339 while ejected, else empty"},
                        "source": {"type": "string", "enum": ["file", "admin"],
                                   "description": "the registry file, or registered at run time"},
                        "external": {"type": "boolean",
                                     "description": "runs on its own: a development stack starts no mock for it"},
                    },
                },
            }
        },
    }
    schemas["AgencyEntry"] = {
        "type": "object",
        "required": ["id", "kind", "name", "address", "timeout_ms"],
        "properties": {
            "id": {"type": "string", "pattern": "^[a-z0-9-]{1,32}$"},
            "kind": {"type": "string", "enum": ["bank", "vehicle", "realestate"]},
            "name": {"type": "string", "maxLength": 100},
            "address": {"type": "string", "description": "host:port of the agency's gRPC endpoint"},
            "timeout_ms": {"type": "integer", "minimum": 1, "maximum": 60000},
            "source": {"type": "string", "readOnly": True},
            "external": {"type": "boolean", "readOnly": True},
        },
    }
    agency_in_path = [{"name": "agency_id", "in": "path", "required": True, "schema": {"type": "string"}}]
    agency_errors = {
        "400": _error("A field breaks a registry rule; error.field names it."),
        "403": _error("Not an admin."),
        "404": _error("No agency registered at run time under this ID."),
        "409": _error("ALREADY_EXISTS: the ID is taken; FAILED_PRECONDITION: it comes from the registry file."),
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
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "chakong asset query and control gateway",
            "version": "1.0.0",
            "description": (
                "Court enforcement asset query (执行查控): one query fanned out to every bank, the vehicle "
                "registry and the real-estate registry in parallel, answered by the deadline with whatever "
                "arrived. Control actions (freeze, renew, release, deduct, seal, transfer) are recorded in the "
                "gateway's ledger before the agency is called and done exactly once per Idempotency-Key. The same "
                "API is offered over gRPC as chakong.gateway.v1.AssetGateway and EnforcementControl. Every error "
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
                },
                "post": {
                    "operationId": "registerAgency",
                    "summary": "Register an agency at run time (admin role): kept in the ledger, asked at once by"
                               " every gateway sharing it, in the audit trail. Always external.",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("AgencyEntry")}}},
                    "responses": {
                        "201": _json(_ref("AgencyEntry"), "Registered; the gateway dials it now."),
                        **agency_errors,
                    },
                },
            },
            "/v1/agencies/{agency_id}": {
                "put": {
                    "operationId": "updateAgency",
                    "parameters": agency_in_path,
                    "summary": "Replace an agency registered at run time (admin role); the registry file's are"
                               " changed in the file.",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("AgencyEntry")}}},
                    "responses": {"200": _json(_ref("AgencyEntry"), "Updated."), **agency_errors},
                },
                "delete": {
                    "operationId": "removeAgency",
                    "parameters": agency_in_path,
                    "summary": "Stop asking an agency registered at run time (admin role).",
                    "responses": {"200": _json({"type": "object", "properties": {"removed": _ref("AgencyEntry")}},
                                               "Removed."), **agency_errors},
                },
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
    document["paths"].update(_control_paths(schemas))
    return document


def _control_paths(schemas: dict) -> dict:
    action = _message_schema(control_pb2.Action.DESCRIPTOR, schemas)
    case = _message_schema(control_pb2.Case.DESCRIPTOR, schemas)
    register = _message_schema(control_pb2.RegisterCaseRequest.DESCRIPTOR, schemas)
    schemas["ActionError"] = {
        "allOf": [_ref("Error")],
        "properties": {"action": {**_ref(action), "description": "The recorded action, when the agency refused it."}},
        "description": (
            "`error.code` is the gRPC code: ALREADY_EXISTS (idempotency key reused for another request, or a"
            " duplicate the agency refused) or FAILED_PRECONDITION (a rule refuses it now, e.g. excessive seizure:"
            " the message says how much may still be frozen)."
        ),
    }
    key_header = {
        "Idempotency-Key": {
            "description": "The action's key: the caller's, or the one the gateway made. Reuse it to retry.",
            "schema": {"type": "string"},
        }
    }
    key_parameter = {
        "name": "Idempotency-Key", "in": "header", "required": False,
        "schema": {"type": "string", "maxLength": 128, "pattern": "^[0-9A-Za-z_.:-]+$"},
        "description": (
            "Make one per action, store it before sending, reuse it on every retry: the same key and request"
            " return the same action and never act twice; the same key with another request is 409. Without it"
            " the gateway makes one (see the response header). May also be given as idempotency_key in the body."
        ),
    }
    action_error = lambda text: _json(_ref("ActionError"), text, key_header)  # noqa: E731
    paths: dict = {}
    actions = [(route, kind) for kind in KINDS.values() for route in kind.http]
    for route, kind in actions:
        path, operation, summary = route.path, route.operation_id, route.summary
        request = _message_schema(kind.request_type.DESCRIPTOR, schemas)
        parameters = [key_parameter]
        if "{hold_id}" in path:
            parameters.insert(0, {
                "name": "hold_id", "in": "path", "required": True, "schema": {"type": "string"},
                "description": "The hold: the action ID of the freeze or seal that placed it.",
            })
        paths[path] = {
            "post": {
                "operationId": operation,
                "summary": summary,
                "parameters": parameters,
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(request)}}},
                "responses": {
                    "200": _json(_ref(action), "Done (SUCCEEDED), or the same request replayed.", key_header),
                    "202": _json(
                        _ref(action),
                        "Recorded but PENDING: the agency has not answered yet. The gateway keeps driving it with"
                        " the same agency key; ask again with the same Idempotency-Key, or GET the case.",
                        key_header,
                    ),
                    "400": _error("Invalid request; `field` names the field."),
                    "403": action_error("Not allowed: the subject is not a debtor of the case, another court's case"
                                        " or another case's hold."),
                    "404": action_error("Unknown case, agency, hold or asset."),
                    "409": action_error("Conflict: ALREADY_EXISTS or FAILED_PRECONDITION (see error.code)."),
                    "503": _error("The gateway's ledger is unavailable; retry with the same key."),
                },
            }
        }
    paths["/v1/cases"] = {
        "post": {
            "operationId": "registerCase",
            "summary": "Register a case with its debtors, the amount owed and the enforcement costs.",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(register)}}},
            "responses": {
                "201": _json(_ref(case), "Registered now."),
                "200": _json(_ref(case), "Already registered with the same content."),
                "400": _error("Invalid request; `field` names the field."),
                "409": _error("ALREADY_EXISTS: registered with other debtors or amounts."),
            },
        }
    }
    paths["/v1/cases/{case_number}"] = {
        "get": {
            "operationId": "getCase",
            "summary": "The case, its holds as last reported by the agencies, and every action with its state.",
            "parameters": [{
                "name": "case_number", "in": "path", "required": True, "schema": {"type": "string"},
                "description": "URL-encoded, e.g. %282024%29%E7%9A%9601%E6%89%A7123%E5%8F%B7 for (2024)皖01执123号.",
            }],
            "responses": {
                "200": _json(_ref(case), "The case."),
                "400": _error("Not a case number."),
                "404": _error("No such case registered."),
            },
        }
    }
    return paths
