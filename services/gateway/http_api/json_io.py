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


class UnsupportedMediaType(FieldError):
    """A body that is not JSON by its Content-Type: 415, not 400."""


def check_media_type(content_type: str) -> None:
    if content_type != "application/json":
        raise UnsupportedMediaType(
            "Content-Type", f"must be application/json (got {content_type or 'none'}); send JSON with that header"
        )


def parse_json_message(body: bytes, message_type: type[Message]) -> Message:
    """proto3 JSON (lowerCamel or snake_case names) to a `message_type`; FieldError names the field.

    One meaning per input: a key given twice, a field given under both its
    names, and a number in anything but ASCII digits are refused, where
    json.loads would keep the last and protobuf would read "１２" as 12.
    """
    try:
        document = json.loads(body, object_pairs_hook=_JsonObject.of)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise FieldError("body", f"is not valid JSON ({exc})") from None
    descriptor = message_type.DESCRIPTOR
    if not isinstance(document, dict):
        raise FieldError("body", f"must be a JSON object (a {descriptor.name})")
    _check_document(document, descriptor, "")
    try:
        return json_format.ParseDict(document, message_type())
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise _parse_error_field(str(exc), descriptor) from None


class _JsonObject(dict):
    """A JSON object that remembers a key it was given twice (json.loads keeps only the last)."""

    duplicate: str | None = None

    @classmethod
    def of(cls, pairs: list[tuple[str, object]]) -> "_JsonObject":
        document = cls()
        for key, value in pairs:
            if key in document and document.duplicate is None:
                document.duplicate = key
            document[key] = value
        return document


@functools.cache
def _field_names(descriptor: Descriptor) -> Mapping[str, FieldDescriptor]:
    names: dict[str, FieldDescriptor] = {}
    for field in descriptor.fields:
        names[field.name] = field
        names[field.json_name] = field
    return names


_INTEGER_TYPES = frozenset({
    FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64, FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_SFIXED32,
})
_ASCII_INTEGER = re.compile(r"-?[0-9]+")


def _check_document(document: dict, descriptor: Descriptor, prefix: str) -> None:
    # Done here rather than read from ParseError's text, so the field path is exact.
    names = _field_names(descriptor)
    duplicate = getattr(document, "duplicate", None)
    if duplicate is not None:
        raise FieldError(f"{prefix}{duplicate}", "is given twice; give each field once")
    seen: dict[str, str] = {}
    for key, value in document.items():
        field = names.get(key)
        if field is None:
            raise FieldError(f"{prefix}{key}", f"is not a field of {descriptor.name}")
        path = f"{prefix}{field.name}"
        if field.name in seen:
            raise FieldError(path, f"is given twice, as {seen[field.name]} and as {key}; give it once")
        seen[field.name] = key
        if field.type in _INTEGER_TYPES:
            for item in value if isinstance(value, list) else (value,):
                if isinstance(item, str) and not _ASCII_INTEGER.fullmatch(item):
                    raise FieldError(path, "must be a whole number in the digits 0-9")
            continue
        if field.message_type is None or field.message_type.full_name.startswith("google.protobuf."):
            continue
        if isinstance(value, dict):
            _check_document(value, field.message_type, path + ".")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    _check_document(item, field.message_type, f"{path}[{index}].")


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
