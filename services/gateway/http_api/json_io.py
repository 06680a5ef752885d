"""JSON in and out of the HTTP API: request bodies to protobuf messages (FieldError naming the field), error bodies."""

import functools
import json
import re
from collections.abc import Mapping

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from services.common.validation import FieldError
from services.gateway.errors import HTTP_ERROR_CODES

MAX_BODY_BYTES = 64 * 1024

dumps = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


def error_response(status: int, message: str, field: str | None = None, headers=None, code: str | None = None,
                   **extra) -> web.Response:
    """The documented error body; `code` defaults to the status's name."""
    error: dict[str, str] = {"code": code or HTTP_ERROR_CODES.get(status, "UNKNOWN")}
    if field is not None:
        error["field"] = field
    error["message"] = message
    return web.json_response({"error": error, **extra}, status=status, headers=headers, dumps=dumps)


def parse_json_message(body: bytes, message_type: type[Message]) -> Message:
    """proto3 JSON (lowerCamel or snake_case names) to a `message_type`; FieldError names the field."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise FieldError("body", f"is not valid JSON ({exc})") from None
    descriptor = message_type.DESCRIPTOR
    if not isinstance(document, dict):
        raise FieldError("body", f"must be a JSON object (a {descriptor.name})")
    _reject_unknown_fields(document, descriptor, "")
    try:
        return json_format.ParseDict(document, message_type())
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise _parse_error_field(str(exc), descriptor) from None


@functools.cache
def _field_names(descriptor: Descriptor) -> Mapping[str, FieldDescriptor]:
    names: dict[str, FieldDescriptor] = {}
    for field in descriptor.fields:
        names[field.name] = field
        names[field.json_name] = field
    return names


def _reject_unknown_fields(document: dict, descriptor: Descriptor, prefix: str) -> None:
    # Done here rather than read from ParseError's text, so the field path is exact.
    names = _field_names(descriptor)
    for key, value in document.items():
        field = names.get(key)
        if field is None:
            raise FieldError(f"{prefix}{key}", f"is not a field of {descriptor.name}")
        if field.message_type is None or field.message_type.full_name.startswith("google.protobuf."):
            continue
        path = f"{prefix}{field.name}"
        if isinstance(value, dict):
            _reject_unknown_fields(value, field.message_type, path + ".")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    _reject_unknown_fields(item, field.message_type, f"{path}[{index}].")


_FAILED_FIELD = re.compile(r"Failed to parse (\w+) field: ")


def _parse_error_field(text: str, descriptor: Descriptor) -> FieldError:
    """Best effort: protobuf names the failing field only in the message text."""
    path = []
    for name in _FAILED_FIELD.findall(text):
        field = _field_names(descriptor).get(name) if descriptor is not None else None
        path.append(field.name if field else name)
        descriptor = field.message_type if field else None
    rule = _FAILED_FIELD.sub("", text).strip() or "cannot be parsed"
    return FieldError(".".join(path) or "body", rule)
