"""The OpenAPI 3.1 document of the HTTP API, made from the route declarations and the protos.

Every path and method comes from the `Route` and `OpenRoute` lists the router
is built from (app.py, control.py), every message schema from a proto
descriptor. Responses are written as the gateway prints them (proto3 JSON,
every field present). Request schemas are the input rules of
services/common/validation.py and control/rules.py as JSON Schema, so that
data valid by the document is data the gateway accepts: required fields,
patterns, lengths and limits; identifiers with a check character have a
`format` of their own (cn-resident-id, cn-credit-code: the pattern is
stated, the check character in the description); agency IDs are the
registry's at the time the document is asked for.
"""

import functools
import unicodedata

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from services.common import validation
from services.gateway.enforce.service import MAX_REASON_CHARS
from services.gateway.errors import HTTP_ERROR_CODES
from services.gateway.http_api import limits
from services.gateway.http_api.json_io import MAX_BODY_BYTES
from services.gateway.http_api.routes import BODY_TIMEOUT_S, Answer, OpenRoute, Route

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
_TIMESTAMP = "google.protobuf.Timestamp"

# Every `error.code` the gateway can answer: gRPC code names (its own and an
# agency's, passed on with 502) and the names of statuses without one.
ERROR_CODES = sorted({code.name for code in grpc.StatusCode} | set(HTTP_ERROR_CODES.values()))


# Input rules as JSON Schema


def _printable_class() -> str:
    """A regex class of the printable BMP characters that are not white space.

    What validation.check_printable refuses (Cc, Cf, Cs), derived from the
    same categories. Characters outside the BMP are accepted too, but left out
    here: JSON Schema's regex dialect has no portable way to name them.
    """
    ranges: list[tuple[int, int]] = []
    for code in range(0x21, 0x10000):
        char = chr(code)
        if unicodedata.category(char) in validation._UNPRINTABLE or char.isspace():
            continue
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    escape = lambda code: f"\\u{code:04x}"  # noqa: E731
    return "[" + "".join(escape(a) if a == b else f"{escape(a)}-{escape(b)}" for a, b in ranges) + "]"


def _text(max_chars: int) -> dict:
    """validation.require_text, by reference: the pattern is long."""
    return _ref(f"Text.{max_chars}")


@functools.cache
def _text_schema(max_chars: int) -> dict:
    """validation.require_text: printable, no white space at either end, 1..max_chars."""
    visible = _printable_class()
    return {
        "type": "string", "minLength": 1, "maxLength": max_chars,
        "pattern": f"^{visible}(?:(?:{visible}| )*{visible})?$",
        "description": "Printable text: no control or invisible characters, no white space at either end.",
    }


_TOKEN = {"type": "string", "minLength": 1, "maxLength": validation.MAX_KEY_CHARS, "pattern": "^[0-9A-Za-z_.:-]+$"}
# validation.validate_amount_fen: 1 to 10^15 fen, as proto3 JSON writes int64 (a string of ASCII digits).
_AMOUNT = {
    "type": "string", "format": "int64", "pattern": "^(?:[1-9][0-9]{0,14}|1000000000000000)$",
    "description": "A positive whole number of fen (1 to 10^15), in the digits 0-9, as a JSON string.",
}
CASE_NUMBER = {
    "type": "string",
    # identifiers._CASE_NUMBER, anchored.
    "pattern": "^[(（][0-9]{4}[)）][\u4e00-\u9fff][0-9]{2,4}执[恢保异复]?[0-9]{1,6}号$",
    "description": "(year)court-abbreviation+digits执[恢保异复]number号, digits 0-9 only, brackets ASCII or full"
                   " width (one case either way), e.g. (2024)皖01执123号.",
    "examples": ["(2024)皖01执123号"],
}
_HOLD_ID = {**_TOKEN, "description": "The hold: the action ID of the freeze or seal that placed it."}
_PLAN_ID = {**_TOKEN, "maxLength": 64, "description": "The plan (pl- and 24 hex digits, or the ID its caller chose)."}
_SUBJECT_TYPES = {
    "SUBJECT_TYPE_RESIDENT_ID": {
        "type": "string", "format": "cn-resident-id", "pattern": "^[0-9]{17}[0-9X]$",
        "description": "GB 11643 resident ID: a region and birth date that existed, ISO 7064 MOD 11-2 check"
                       " character.",
    },
    "SUBJECT_TYPE_CREDIT_CODE": {
        "type": "string", "format": "cn-credit-code", "pattern": "^[0-9]{8}[0-9A-HJ-NPQRTUWXY]{10}$",
        "description": "GB 32100 unified social credit code, MOD 31 check character.",
    },
    "SUBJECT_TYPE_PASSPORT": {"type": "string", "pattern": "^[A-Z0-9]{5,17}$"},
}


def _subject_input() -> dict:
    """validation.validate_subject: the ID checked by its type. The name is asked for throughout
    (a query may leave it out; an action binding an asset needs it)."""
    return {
        "oneOf": [
            {
                "type": "object", "additionalProperties": False, "required": ["type", "id_number", "name"],
                "properties": {"type": {"const": name}, "id_number": id_schema,
                               "name": _text(validation.MAX_NAME_CHARS)},
            }
            for name, id_schema in _SUBJECT_TYPES.items()
        ],
        "description": "A debtor or buyer. `type` is also accepted as its number, and the field names in"
                       " lowerCamelCase.",
    }


def _rules(agencies: tuple[tuple[str, str], ...]) -> dict[str, dict[str, dict]]:
    """The input rules of each request message field, by message: what the validators check before anything is
    looked up. A field missing here is not part of the input schema."""
    ids = lambda *kinds: {"type": "string", "enum": [i for i, k in agencies if k in kinds] or [""]}  # noqa: E731
    text = _text
    subject = {"$ref": "#/components/schemas/Subject.input"}
    expiry = {"type": "string", "format": "date-time",
              "description": "RFC 3339. In the future and within the statutory maximum; absent: that maximum."}
    return {
        "common.v1.CaseRef": {
            "case_number": CASE_NUMBER,
            "court_code": {"type": "string", "pattern": "^[0-9A-Z]{3,12}$",
                           "description": "The court; must be your token's court."},
            "executor_id": {"type": "string", "pattern": "^[0-9A-Za-z_.-]{1,32}$",
                            "description": "Must be your token's executor."},
            "document_number": text(validation.MAX_DOCUMENT_NUMBER_CHARS),
        },
        "gateway.v1.AssetQueryRequest": {
            "request_id": {**_TOKEN, "description": "Optional; generated (uuid4 hex) when absent. Echoed in the"
                                                    " response and X-Request-Id."},
            "case": None, "subject": subject,
            "agency_ids": {"type": "array", "uniqueItems": True, "items": ids("bank", "vehicle", "realestate"),
                           "description": "Ask only these agencies (GET /v1/agencies); empty means all."},
            "deadline_ms": {"type": "integer", "format": "int32", "minimum": 0, "maximum": 2**31 - 1},
        },
        "gateway.v1.RegisterCaseRequest": {
            "case": None,
            "debtors": {"type": "array", "minItems": 1, "maxItems": 20, "items": subject,
                        "description": "At least one; each ID once."},
            "amount_owed_fen": _AMOUNT, "costs_fen": _AMOUNT,
            "executor_ids": {"type": "array", "uniqueItems": True,
                             "items": {"type": "string", "pattern": "^[0-9A-Za-z_.-]{1,32}$"}},
        },
        "gateway.v1.FreezeFundsRequest": {
            "idempotency_key": _TOKEN, "case": None, "agency_id": ids("bank"), "subject": subject,
            "account_number": text(64), "amount_fen": _AMOUNT, "expires_at": expiry,
        },
        "gateway.v1.RenewHoldRequest": {"idempotency_key": _TOKEN, "case": None, "hold_id": _HOLD_ID,
                                        "expires_at": expiry},
        "gateway.v1.ReleaseFreezeRequest": {
            "idempotency_key": _TOKEN, "case": None, "hold_id": _HOLD_ID,
            "amount_fen": {**_AMOUNT, "description": "Part of the freeze to release; absent: all of it."},
        },
        "gateway.v1.DeductFundsRequest": {
            "idempotency_key": _TOKEN, "case": None, "hold_id": _HOLD_ID, "account": None,
            "amount_fen": _AMOUNT, "court_account": None,
        },
        "gateway.v1.DirectSource": {"agency_id": ids("bank"), "subject": subject, "account_number": text(64)},
        "bank.v1.CourtAccount": {name: text(validation.MAX_NAME_CHARS)
                                 for name in ("bank_name", "account_number", "account_name")},
        "gateway.v1.SealAssetRequest": {
            "idempotency_key": _TOKEN, "case": None, "agency_id": ids("vehicle", "realestate"), "subject": subject,
            "asset_id": {**text(128), "description": "The plate (vehicle) or certificate number (real estate)."},
            "expires_at": expiry,
        },
        "gateway.v1.ReleaseSealRequest": {"idempotency_key": _TOKEN, "case": None, "hold_id": _HOLD_ID},
        "gateway.v1.EnforceRequest": {
            "case_number": CASE_NUMBER,
            "dry_run": {"type": "boolean", "description": "Return the plan and act on nothing."},
            "plan_id": _PLAN_ID,
            "document_number": {**text(validation.MAX_DOCUMENT_NUMBER_CHARS),
                                "description": "The document the agencies are shown; absent: the case's."},
        },
        "gateway.v1.DecideApprovalRequest": {"approval_id": _TOKEN, "reason": text(MAX_REASON_CHARS)},
        "gateway.v1.EnforceBatchRequest": {
            "batch_id": _TOKEN, "dry_run": {"type": "boolean", "description": "Plan every case, act on nothing."},
        },
        "gateway.v1.SubmitBatchRequest": {
            "rows": {"type": "array", "minItems": 1, "items": _ref("gateway.v1.BatchRow.input"),
                     "description": "At most BATCH_MAX_ROWS (default 10,000; more is 413). A row that breaks a rule"
                                    " is reported in the answer's `rejected` and the others run."},
            "agency_ids": {"type": "array", "uniqueItems": True, "items": ids("bank", "vehicle", "realestate"),
                           "description": "Ask only these agencies; empty means all."},
        },
        "gateway.v1.BatchRow": {
            "line": {"type": "integer", "format": "int32", "minimum": 0, "maximum": 2**31 - 1,
                     "description": "Your row number, reported back in `rejected`; 0 or absent: its position."},
            "case_number": {"type": "string", "maxLength": 64},
            "court_code": {"type": "string", "maxLength": 12, "description": "Absent: your token's court."},
            "document_number": {"type": "string", "maxLength": 64, "description": "Absent: the case number."},
            "debtor_id": {"type": "string", "maxLength": 64,
                          "description": "Resident ID, unified social credit code or passport number."},
            "debtor_name": {"type": "string", "maxLength": 100},
        },
        "gateway.v1.TransferPropertyRequest": {
            "idempotency_key": _TOKEN, "case": None, "hold_id": _HOLD_ID, "buyer": subject,
            "ruling_number": text(validation.MAX_DOCUMENT_NUMBER_CHARS), "price_fen": _AMOUNT,
        },
    }


# Fields a request must have; a hold in the path, or the key in the header, fill them (control.py).
_REQUIRED = {
    "common.v1.CaseRef": ("case_number", "court_code", "executor_id", "document_number"),
    "gateway.v1.AssetQueryRequest": ("case", "subject"),
    "gateway.v1.RegisterCaseRequest": ("case", "debtors", "amount_owed_fen"),
    "gateway.v1.FreezeFundsRequest": ("case", "agency_id", "subject", "account_number", "amount_fen"),
    "gateway.v1.RenewHoldRequest": ("case",),
    "gateway.v1.ReleaseFreezeRequest": ("case",),
    "gateway.v1.DeductFundsRequest": ("case", "amount_fen", "court_account"),
    "gateway.v1.DirectSource": ("agency_id", "subject", "account_number"),
    "bank.v1.CourtAccount": ("bank_name", "account_number", "account_name"),
    "gateway.v1.SealAssetRequest": ("case", "agency_id", "subject", "asset_id"),
    "gateway.v1.ReleaseSealRequest": ("case",),
    "gateway.v1.TransferPropertyRequest": ("case", "buyer", "ruling_number", "price_fen"),
    "gateway.v1.DecideApprovalRequest": ("approval_id", "reason"),
    "gateway.v1.SubmitBatchRequest": ("rows",),
    "gateway.v1.BatchRow": ("case_number", "debtor_id"),
}


def _schema_name(full_name: str) -> str:
    # chakong.bank.v1.Account -> bank.v1.Account: readable and unique.
    return full_name.removeprefix("chakong.")


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


class _Schemas:
    """The components/schemas of one document: output schemas by message, input schemas by the rules."""

    def __init__(self, agencies: tuple[tuple[str, str], ...]):
        self.schemas: dict[str, dict] = {"Subject.input": _subject_input()}
        self.rules = _rules(agencies)

    def output(self, descriptor: Descriptor) -> str:
        name = _schema_name(descriptor.full_name)
        if name not in self.schemas:
            self.schemas[name] = {}  # placeholder first: messages may refer to each other
            self.schemas[name] = {
                "type": "object",
                # Printed with every field, defaults included (jsonmap.message_to_dict).
                "required": [field.name for field in descriptor.fields if not field.has_presence],
                "properties": {field.name: self._output_field(field) for field in descriptor.fields},
            }
        return name

    def _output_field(self, field: FieldDescriptor) -> dict:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            # proto3 JSON prints a map as an object (Batch.agencies: by agency ID).
            value = field.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self._output_field(value)}
        if field.message_type is not None:
            if field.message_type.full_name == _TIMESTAMP:
                schema = {"type": "string", "format": "date-time", "description": "RFC 3339, UTC."}
            else:
                schema = _ref(self.output(field.message_type))
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

    def input(self, descriptor: Descriptor) -> str:
        short = _schema_name(descriptor.full_name)
        name = f"{short}.input"
        if name not in self.schemas:
            rules = self.rules[short]
            properties = {}
            for field in descriptor.fields:
                if field.name not in rules:
                    continue
                rule = rules[field.name]
                properties[field.name] = _ref(self.input(field.message_type)) if rule is None else rule
            schema = {
                "type": "object",
                # The lowerCamel names are accepted as well (never both for one field); other names are 400.
                "additionalProperties": False,
                "required": list(_REQUIRED.get(short, ())),
                "properties": properties,
            }
            oneofs = [o for o in descriptor.oneofs if not o.name.startswith("_")]
            if oneofs:
                # A oneof: exactly one of its fields (DeductFundsRequest: a hold, or an account).
                choice = [f.name for f in oneofs[0].fields]
                schema["oneOf"] = [
                    {"required": [name], "not": {"anyOf": [{"required": [other]} for other in choice if other != name]}}
                    for name in choice
                ]
            self.schemas[name] = schema
        return name

    def add_texts(self) -> None:
        """The Text.<n> schemas the input schemas refer to."""
        lengths = {validation.MAX_NAME_CHARS, validation.MAX_DOCUMENT_NUMBER_CHARS, 64, 128, MAX_REASON_CHARS}
        self.schemas.update((f"Text.{n}", _text_schema(n)) for n in sorted(lengths))


def _error_schemas() -> dict[str, dict]:
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "enum": ERROR_CODES,
                                 "description": "The gRPC code name, or the status's name where none fits."},
                        "field": {"type": "string", "description": "Path of the offending field (e.g."
                                                                     " subject.id_number), `body`, or a header."},
                        "message": {"type": "string", "description": "`field: rule` for a bad field."},
                    },
                }
            },
        },
    }


# Headers an answer may carry, by name.
_RESPONSE_HEADERS = {
    "X-Request-Id": {"description": "The request's ID (the query's request_id).", "schema": {"type": "string"}},
    "Idempotency-Key": {"description": "The action's key: the caller's, or the one the gateway made. Reuse it"
                                       " to retry.", "schema": {"type": "string"}},
    "Retry-After": {"description": "Seconds to wait before retrying.", "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9]+$"}},
    "WWW-Authenticate": {"description": "Bearer challenge.", "schema": {"type": "string"}},
    "Location": {"description": "Where the new resource is.", "schema": {"type": "string"}},
}
# Query parameters a route may read, by name.
_QUERY_PARAMETERS = {
    "format": {"name": "format", "in": "query", "required": False,
               "schema": {"type": "string", "enum": ["jsonl", "csv", "xlsx"], "default": "jsonl"},
               "description": "jsonl (one row per line, with a summary), csv (UTF-8 with a BOM) or xlsx."},
    "search": {"name": "search", "in": "query", "required": False,
               "schema": {"type": "string", "maxLength": 64, "pattern": f"^(?:{_printable_class()}| )*$"},
               "description": "A part of the case number, or of a debtor's name or ID."},
    "limit": {"name": "limit", "in": "query", "required": False,
              "schema": {"type": "string", "pattern": "^(?:[0-9]|[1-9][0-9]|1[0-9]{2}|200)$"},
              "description": "At most this many cases, 1 to 200 (0 or absent: 50)."},
    "days": {"name": "days", "in": "query", "required": False,
             "schema": {"type": "string", "pattern": "^(?:[0-9]|[1-8][0-9]|9[0-2])$"},
             "description": "Days back, today included, 1 to 92 (0 or absent: 14)."},
}
# Request headers a route may read, by name.
_REQUEST_HEADERS = {
    "Idempotency-Key": {
        "name": "Idempotency-Key", "in": "header", "required": False, "schema": _TOKEN,
        "description": (
            "Make one per action, store it before sending, reuse it on every retry: the same key and request"
            " return the same action and never act twice; the same key with another request is 409. Without it"
            " the gateway makes one (see the response header). May also be given as idempotency_key in the body,"
            " the same value."
        ),
    },
}
_PATH_PARAMETERS = {
    "case_number": {**CASE_NUMBER, "description": "URL-encoded, e.g. %282024%29%E7%9A%9601%E6%89%A7123%E5%8F%B7"
                                                  " for (2024)皖01执123号."},
    "hold_id": _HOLD_ID,
    "agency_id": {"type": "string", "pattern": "^[a-z0-9-]{1,32}$", "description": "The agency's registry ID."},
    "plan_id": _PLAN_ID,
    "approval_id": {**_TOKEN, "description": "The approval (ap- and 24 hex digits)."},
    "batch_id": {"type": "string", "pattern": "^[0-9A-Za-z_.:-]{1,128}$", "description": "As submitBatch answered."},
    "query_id": {"type": "string", "pattern": "^[0-9A-Za-z_.:-]{1,128}$",
                 "description": "The query's request_id (X-Request-Id), or a batch row's `<batch_id>-<line>`."},
}
# What the door and the HTTP server answer on every route behind the door, before or instead of its handler.
DOOR_ANSWERS = (
    Answer(400, "Invalid request: malformed JSON, not an object, an unknown field, a field given twice or a field"
                " breaking a rule; `field` names it."),
    Answer(401, "No token, or one that is invalid or expired.", headers=("WWW-Authenticate",)),
    Answer(403, "Not allowed: another court's case, an executor not assigned to it, a subject not its debtor,"
                " or a role the token lacks."),
    Answer(404, "The case is not registered (an admin of its court registers it first), or an agency unknown."),
    Answer(414, f"Request line longer than {limits.MAX_LINE_BYTES} bytes."),
    Answer(431, f"More than {limits.MAX_HEADERS} headers, or a header longer than {limits.MAX_FIELD_BYTES}"
                " bytes."),
    Answer(429, "Rate limit of the executor or the court; wait Retry-After seconds.", headers=("Retry-After",)),
    Answer(503, "The audit trail or the ledger is unavailable, or the gateway is stopping; retry after"
                " Retry-After seconds (another gateway may answer).", headers=("Retry-After",)),
)
BODY_ANSWERS = (
    Answer(408, f"The body did not arrive within {BODY_TIMEOUT_S:g} s."),
    Answer(413, f"Body larger than {MAX_BODY_BYTES // 1024} KiB."),
    Answer(415, "Content-Type is not application/json."),
)


def _answer(answer: Answer, schemas: _Schemas) -> dict:
    response: dict = {"description": answer.description}
    body = answer.body
    if body is None:
        content = {"application/json": {"schema": _ref("Error")}}
    elif isinstance(body, str):
        content = _NAMED_BODIES[body](schemas)
    else:
        content = {"application/json": {"schema": _ref(schemas.output(body.DESCRIPTOR))}}
    response["content"] = content
    headers = {"X-Request-Id": _RESPONSE_HEADERS["X-Request-Id"]}
    headers.update((name, _RESPONSE_HEADERS[name]) for name in answer.headers)
    response["headers"] = headers
    return response


def _json(name: str):
    return lambda schemas: {"application/json": {"schema": _ref(name)}}


def _query_events(schemas: _Schemas) -> dict:
    result = schemas.output(_message("gateway.v1.AgencyResult"))
    final = schemas.output(_message("gateway.v1.AssetQueryResponse"))
    event = lambda name, ref: {  # noqa: E731
        "type": "object", "required": ["id", "event", "data"],
        "properties": {
            "id": {"type": "string", "pattern": "^[1-9][0-9]*$"},
            "event": {"const": name},
            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": _ref(ref)},
        },
    }
    schemas.schemas["QueryEvent"] = {
        "description": "One server-sent event; the stream is `result` events, then one `final`.",
        "oneOf": [event("result", result), event("final", final)],
    }
    return {
        "text/event-stream": {
            # OpenAPI 3.1 types a stream only as text; each event's schema is QueryEvent (3.2's itemSchema).
            "schema": {"type": "string", "description": "SSE events, each a QueryEvent."},
            "x-item-schema": _ref("QueryEvent"),
        }
    }


def _agency_list(schemas: _Schemas) -> dict:
    schemas.schemas["AgencyList"] = {
        "type": "object",
        "required": ["agencies"],
        "properties": {
            "agencies": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "kind", "name", "address", "timeout_ms", "health", "ejected_until", "source",
                                 "external"],
                    "properties": {
                        "id": {"type": "string", "pattern": "^[a-z0-9-]{1,32}$"},
                        "kind": {"type": "string", "enum": ["bank", "vehicle", "realestate"]},
                        "name": {"type": "string"},
                        "address": {"type": "string", "description": "host:port of the agency's gRPC endpoint"},
                        "timeout_ms": {"type": "integer"},
                        "health": {"type": "string", "enum": ["up", "ejected"]},
                        "ejected_until": {
                            "type": "string", "description": "RFC 3339 UTC end of the cool-down; empty while up.",
                            "anyOf": [{"const": ""}, {"format": "date-time"}],
                        },
                        "source": {"type": "string", "enum": ["file", "admin"],
                                   "description": "the registry file, or registered at run time"},
                        "external": {"type": "boolean",
                                     "description": "runs on its own: a development stack starts no mock for it"},
                    },
                },
            }
        },
    }
    return {"application/json": {"schema": _ref("AgencyList")}}


def _agency_entry(schemas: _Schemas) -> dict:
    schemas.schemas["AgencyEntry"] = {
        "type": "object",
        "required": ["id", "kind", "name", "address", "timeout_ms"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": "^[a-z0-9-]{1,32}$"},
            "kind": {"type": "string", "enum": ["bank", "vehicle", "realestate"]},
            "name": _text(100),
            "address": {
                "type": "string", "description": "host:port of the agency's gRPC endpoint",
                "pattern": "^[A-Za-z0-9.-]+:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}"
                           "|655[0-2][0-9]|6553[0-5])$",
            },
            "timeout_ms": {"type": "integer", "minimum": 1, "maximum": 60000},
            "source": {"type": "string", "readOnly": True},
            "external": {"type": "boolean", "readOnly": True},
        },
    }
    return {"application/json": {"schema": _ref("AgencyEntry")}}


def _agency_update(schemas: _Schemas) -> dict:
    _agency_entry(schemas)
    entry = schemas.schemas["AgencyEntry"]
    schemas.schemas["AgencyUpdate"] = {
        **entry,
        "description": "The agency in the path, as it is to be: its id comes from the path.",
        "required": [name for name in entry["required"] if name != "id"],
        "properties": {name: rule for name, rule in entry["properties"].items() if name != "id"},
    }
    return {"application/json": {"schema": _ref("AgencyUpdate")}}


def _removed_agency(schemas: _Schemas) -> dict:
    _agency_entry(schemas)
    schemas.schemas["RemovedAgency"] = {
        "type": "object", "required": ["removed"], "properties": {"removed": _ref("AgencyEntry")},
    }
    return {"application/json": {"schema": _ref("RemovedAgency")}}


def _status(schemas: _Schemas) -> dict:
    schemas.schemas["Status"] = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}, "reasons": {"type": "array", "items": {"type": "string"}}},
    }
    return {"application/json": {"schema": _ref("Status")}}


def _action_error(schemas: _Schemas) -> dict:
    action = schemas.output(_message("gateway.v1.Action"))
    schemas.schemas["ActionError"] = {
        "allOf": [_ref("Error")],
        "properties": {"action": {**_ref(action), "description": "The recorded action, when the agency refused it."}},
    }
    return {"application/json": {"schema": _ref("ActionError")}}


def _batch_upload(schemas: _Schemas) -> dict:
    schemas.input(_message("gateway.v1.BatchRow"))
    return {
        "application/json": {"schema": _ref(schemas.input(_message("gateway.v1.SubmitBatchRequest")))},
        "text/csv": {"schema": {
            "type": "string",
            # The simplest list the gateway reads; it reads more (any order of the columns, Chinese names, quoted
            # cells): a pattern that said all that would be a CSV parser.
            "pattern": "^case_number,debtor_id(\n[^\"\n\r\u0000]*)*\n?$",
            "description": (
                "UTF-8 (a BOM is allowed). The first line names the columns: case_number (案号) and debtor_id"
                " (证件号码) are required; court_code (法院代码), document_number (文书号) and debtor_name (姓名)"
                " optional, in any order. Every agency is asked (JSON names agencies in agency_ids)."),
        }},
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {"schema": {
            "type": "string", "contentMediaType":
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "description": "The first sheet, its first row naming the columns as for CSV; IDs as text cells."}},
    }


def _batch_refusal(schemas: _Schemas) -> dict:
    row = schemas.output(_message("gateway.v1.RejectedRow"))
    schemas.schemas["BatchRefusal"] = {
        "allOf": [_ref("Error")],
        "properties": {"rejected": {"type": "array", "items": _ref(row),
                                    "description": "Every row you may not query, with why."}},
    }
    return {"application/json": {"schema": _ref("BatchRefusal")}}


def _batch_list(schemas: _Schemas) -> dict:
    batch = schemas.output(_message("gateway.v1.Batch"))
    schemas.schemas["BatchList"] = {"type": "object", "required": ["batches"],
                                    "properties": {"batches": {"type": "array", "items": _ref(batch)}}}
    return {"application/json": {"schema": _ref("BatchList")}}


def _batch_events(schemas: _Schemas) -> dict:
    batch = schemas.output(_message("gateway.v1.Batch"))
    event = lambda name: {  # noqa: E731
        "type": "object", "required": ["id", "event", "data"],
        "properties": {
            "id": {"type": "string", "pattern": "^[1-9][0-9]*$"},
            "event": {"const": name},
            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": _ref(batch)},
        },
    }
    schemas.schemas["BatchEvent"] = {
        "description": "One server-sent event; the stream is `progress` events, then one `done`.",
        "oneOf": [event("progress"), event("done")],
    }
    return {"text/event-stream": {"schema": {"type": "string", "description": "SSE events, each a BatchEvent."},
                                  "x-item-schema": _ref("BatchEvent")}}


def _batch_results(schemas: _Schemas) -> dict:
    return {
        "application/x-ndjson": {"schema": {"type": "string", "description": (
            "One JSON object per row: line, case_number, court_code, document_number, debtor_id, debtor_name,"
            " item_state, query_id, summary (totals in fen and yuan, counts), agencies (each with status,"
            " arrived_at, late, error and its accounts, vehicles or properties as proto3 JSON).")}},
        "text/csv": {"schema": {"type": "string", "description": "One line per asset found (or per agency"
                                                                 " that found none), the columns fixed."}},
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {"schema": {"type": "string"}},
    }


_NAMED_BODIES = {
    "BatchUpload": _batch_upload,
    "BatchRefusal": _batch_refusal,
    "BatchList": _batch_list,
    "BatchEvents": _batch_events,
    "BatchResults": _batch_results,
    "QueryEvents": _query_events,
    "AgencyList": _agency_list,
    "AgencyEntry": _agency_entry,
    "AgencyUpdate": _agency_update,
    "RemovedAgency": _removed_agency,
    "Status": _status,
    "ActionError": _action_error,
    # Bodies whose path parameter fills one of their fields (http_api/enforce.py).
    "EnforceRequest": lambda schemas: _path_body(schemas, "gateway.v1.EnforceRequest", "case_number"),
    "DecideApprovalRequest": lambda schemas: _path_body(schemas, "gateway.v1.DecideApprovalRequest", "approval_id"),
    "EnforceBatchRequest": lambda schemas: _path_body(schemas, "gateway.v1.EnforceBatchRequest", "batch_id"),
    "Metrics": lambda schemas: {"text/plain": {"schema": {"type": "string"}},
                                "application/openmetrics-text": {"schema": {"type": "string"}}},
    "OpenApi": lambda schemas: {"application/json": {"schema": {"type": "object"}}},
}


def _path_body(schemas: _Schemas, short_name: str, *path_fields: str) -> dict:
    body = _without(schemas, schemas.input(_message(short_name)), list(path_fields))
    return {"application/json": {"schema": _ref(body)}}


def _message(short_name: str) -> Descriptor:
    from google.protobuf import descriptor_pool

    return descriptor_pool.Default().FindMessageTypeByName(f"chakong.{short_name}")


def _operation(route: Route, schemas: _Schemas) -> dict:
    answers = {a.status: a for a in (*DOOR_ANSWERS, *(BODY_ANSWERS if route.has_body else ()))}
    answers.update((a.status, a) for a in route.answers)
    operation: dict = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "security": [{"bearer": []}],
        "responses": {str(status): _answer(answers[status], schemas) for status in sorted(answers)},
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": _PATH_PARAMETERS[name],
         "description": _PATH_PARAMETERS[name]["description"]}
        for name in _path_names(route.path)
    ]
    parameters += [_REQUEST_HEADERS[name] for name in route.headers]
    parameters += [_QUERY_PARAMETERS[name] for name in route.query]
    if parameters:
        operation["parameters"] = parameters
    if route.body_schema is not None:
        operation["requestBody"] = {"required": True, "content": _NAMED_BODIES[route.body_schema](schemas)}
    elif route.has_body:
        body = schemas.input(route.operation.request_type.DESCRIPTOR)
        if _path_names(route.path):
            # The hold in the path fills the body's hold_id: the body leaves it out (or says the same).
            body = _without(schemas, body, _path_names(route.path))
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    return operation


def _without(schemas: _Schemas, name: str, fields: list[str]) -> str:
    reduced = f"{name.removesuffix('.input')}.path.input"
    schema = dict(schemas.schemas[name])
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k not in fields}
    schema["required"] = [k for k in schema["required"] if k not in fields]
    schema.pop("oneOf", None)
    if "account" in schema["properties"]:
        del schema["properties"]["account"]  # deducting from a freeze names no account
    schemas.schemas[reduced] = schema
    return reduced


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _open_operation(route: OpenRoute, schemas: _Schemas) -> dict:
    return {
        "operationId": route.operation_id,
        "summary": route.summary,
        "security": [],
        "responses": {str(a.status): _answer(a, schemas) for a in route.answers},
    }


def openapi_document(routes: list[Route], open_routes: list[OpenRoute], default_deadline_ms: int,
                     agencies: tuple[tuple[str, str], ...] = ()) -> dict:
    """The document of `routes` and `open_routes`; `agencies` are the registry's (id, kind) pairs."""
    schemas = _Schemas(agencies)
    schemas.schemas.update(_error_schemas())
    schemas.add_texts()
    paths: dict[str, dict] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, schemas)
    for probe in open_routes:
        paths.setdefault(probe.path, {})[probe.method.lower()] = _open_operation(probe, schemas)
    query = schemas.schemas.get("gateway.v1.AssetQueryRequest.input")
    if query is not None:
        query["properties"]["deadline_ms"]["description"] = (
            f"Overall deadline in milliseconds. 0 or absent means the gateway default ({default_deadline_ms} ms);"
            " a larger value is lowered to the default."
        )
    return {
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
                "is the Error body (JSON), the HTTP server's own refusals included; unknown paths give 404 and "
                "wrong methods 405. Request bodies are proto3 JSON: field names snake_case (as listed) or "
                "lowerCamelCase, never both for one field, each once; numbers in the digits 0-9 only."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas.schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (EdDSA)"}},
        },
    }
