"""Validation of request fields shared by the gateway and every agency.

Every error names the field (in proto field path form, e.g. `subject.id_number`)
and the rule it breaks, so a caller can fix the request without guessing.
"""

import re
import unicodedata

from protos.common.v1 import common_pb2
from services.common import identifiers

MAX_NAME_CHARS = 100
MAX_DOCUMENT_NUMBER_CHARS = 64
MAX_KEY_CHARS = 128

_COURT_CODE = re.compile(r"[0-9A-Z]{3,12}")
_EXECUTOR_ID = re.compile(r"[0-9A-Za-z_.-]{1,32}")
# Request IDs and idempotency keys travel in logs and gRPC metadata.
_TOKEN = re.compile(r"[0-9A-Za-z_.:-]+")

_ID_CHECKS = {
    common_pb2.SUBJECT_TYPE_RESIDENT_ID: identifiers.check_resident_id,
    common_pb2.SUBJECT_TYPE_CREDIT_CODE: identifiers.check_credit_code,
    common_pb2.SUBJECT_TYPE_PASSPORT: identifiers.check_passport,
}


class FieldError(ValueError):
    """A request field breaks a rule."""

    def __init__(self, field: str, rule: str):
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


# Control characters (NUL among them), invisible format characters (zero
# width, bidirectional overrides) and lone surrogates: text that shows one
# thing and stores another, or that one backend stores and the other cannot.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs"})


def require_text(value: str, field: str, max_chars: int) -> str:
    if not value or not value.strip():
        raise FieldError(field, "is required")
    if len(value) > max_chars:
        raise FieldError(field, f"must be at most {max_chars} characters (got {len(value)})")
    if value != value.strip():
        raise FieldError(field, "must not start or end with white space")
    check_printable(value, field)
    return value


def check_printable(value: str, field: str) -> str:
    """Refuse control, format and surrogate characters, naming the first one."""
    for position, char in enumerate(value):
        if unicodedata.category(char) in _UNPRINTABLE:
            raise FieldError(field, f"must not contain control or invisible characters (U+{ord(char):04X} at {position})")
    return value


def check_identifier(check, value: str, field: str) -> str:
    if not value:
        raise FieldError(field, "is required")
    try:
        return check(value)
    except identifiers.InvalidIdentifier as exc:
        raise FieldError(field, str(exc)) from None


def validate_subject(subject: common_pb2.Subject, field: str = "subject", *, require_name: bool = False) -> None:
    """The ID must be valid. The name is optional for queries (an executor may
    know only the ID; agencies then match on the ID alone) but, when given,
    must be sensible; actions that bind an asset pass require_name=True."""
    check = _ID_CHECKS.get(subject.type)
    if check is None:
        raise FieldError(f"{field}.type", "must be RESIDENT_ID, CREDIT_CODE or PASSPORT")
    check_identifier(check, subject.id_number, f"{field}.id_number")
    if require_name or subject.name:
        require_text(subject.name, f"{field}.name", MAX_NAME_CHARS)


def subject_type_of(id_number: str) -> int:
    """Infer the document type: 18 ASCII digits (last may be X) is a resident ID,
    18 characters with letters a credit code, anything else a passport."""
    first17 = id_number[:17]
    if len(id_number) == 18 and first17.isascii() and first17.isdigit() and id_number[17] in "0123456789X":
        return common_pb2.SUBJECT_TYPE_RESIDENT_ID
    if len(id_number) == 18:
        return common_pb2.SUBJECT_TYPE_CREDIT_CODE
    return common_pb2.SUBJECT_TYPE_PASSPORT


def validate_case(case: common_pb2.CaseRef, field: str = "case") -> None:
    check_identifier(identifiers.check_case_number, case.case_number, f"{field}.case_number")
    if not _COURT_CODE.fullmatch(case.court_code):
        raise FieldError(f"{field}.court_code", "must be 3 to 12 digits or upper-case letters")
    if not _EXECUTOR_ID.fullmatch(case.executor_id):
        raise FieldError(f"{field}.executor_id", "must be 1 to 32 letters, digits, '_', '.' or '-'")
    require_text(case.document_number, f"{field}.document_number", MAX_DOCUMENT_NUMBER_CHARS)


def validate_token(value: str, field: str, *, required: bool) -> None:
    """Request IDs (optional) and idempotency keys (required)."""
    if not value:
        if required:
            raise FieldError(field, "is required")
        return
    if len(value) > MAX_KEY_CHARS or not _TOKEN.fullmatch(value):
        raise FieldError(field, f"must be 1 to {MAX_KEY_CHARS} letters, digits or '_.:-'")


def validate_amount_fen(value: int, field: str, *, maximum: int = 10**15) -> None:
    """A positive whole number of fen, bounded well below int64 overflow."""
    if value <= 0:
        raise FieldError(field, "must be a positive number of fen")
    if value > maximum:
        raise FieldError(field, f"must be at most {maximum} fen")


def usable_request_id(value: str | None) -> str:
    """A client's request ID if it is a valid token; a malformed one is ignored, not an error."""
    if not value:
        return ""
    try:
        validate_token(value, "request_id", required=False)
    except FieldError:
        return ""
    return value
