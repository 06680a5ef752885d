"""The one error type of the gateway's core and the one table from its codes to HTTP statuses.

A door denial, a control rule, a key conflict and an agency's refusal are
all a `GatewayError`: a gRPC code and a message a person can act on. The
gRPC adapter aborts with the code; the HTTP adapter answers `http_status`.
A message that starts with "<field path>: " names the field (`field_of`).
"""

import re

import grpc

# INVALID_ARGUMENT is also a FieldError (services.common.validation), which
# names its field itself. 409 rather than 412 for FAILED_PRECONDITION: 412 is
# defined for conditional request headers, which this API does not use.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
}
# A code the gateway never answers with on its own (INTERNAL, UNKNOWN, ...)
# can only come from an agency: a bad gateway.
OTHER_STATUS = 502

# The error body's `code` for HTTP statuses that have no gRPC code of their
# own (aiohttp's 404/405/413 and a 500); gRPC code names where one fits.
HTTP_ERROR_CODES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    # The HTTP server's own limits (http_api/limits.py).
    408: "REQUEST_TIMEOUT",
    # Control answers 409 for ALREADY_EXISTS and FAILED_PRECONDITION, and names which in `code`.
    409: "ALREADY_EXISTS",
    413: "PAYLOAD_TOO_LARGE",
    414: "URI_TOO_LONG",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RESOURCE_EXHAUSTED",
    431: "REQUEST_HEADER_FIELDS_TOO_LARGE",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}

_FIELD_PREFIX = re.compile(r"^([a-z_][a-z0-9_.\[\]]*): ")


class GatewayError(Exception):
    """A request refused with a gRPC code.

    `retry_after` (seconds, as text) when waiting helps; `action` is the
    recorded action (a ledger ActionRecord) when an agency refused it.
    """

    def __init__(self, code: grpc.StatusCode, message: str, *, retry_after: str = "", action=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.action = action


def http_status(code: grpc.StatusCode) -> int:
    return HTTP_STATUS.get(code, OTHER_STATUS)


def field_of(message: str) -> str | None:
    """The field a "<field path>: <rule>" message names, or None."""
    match = _FIELD_PREFIX.match(message)
    return match.group(1) if match else None


# Seconds a caller refused because a store is down should wait (Retry-After).
RETRY_AFTER_S = "1"


def ledger_unavailable() -> GatewayError:
    return GatewayError(
        grpc.StatusCode.UNAVAILABLE, "the gateway's ledger is unavailable; retry with the same key",
        retry_after=RETRY_AFTER_S,
    )
