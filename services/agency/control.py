"""What every agency's control operations share: statutory
periods, and exactly-once execution keyed by the caller's idempotency key.

Each mutating RPC runs as one SQLite transaction that (1) looks up the key,
(2) applies the effect and (3) records the answer under the key. A retry
with the same key and the same request gets the recorded answer and no
second effect; the same key with a different request is refused.
Business refusals (FAILED_PRECONDITION, NOT_FOUND, ...) are recorded too, so
a retry cannot succeed where the first call was refused; malformed requests
(INVALID_ARGUMENT, including expires_at checked against the time of the
call) leave nothing behind, so the key stays free for the corrected request
(protos/common/v1/common.proto, Idempotency).
"""

import hashlib
import logging
import sqlite3
from collections.abc import Callable
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from services.agency import faults
from services.agency.store import transaction
from services.common.periods import add_years
from services.common.validation import FieldError, validate_token

logger = logging.getLogger(__name__)

Response = TypeVar("Response", bound=Message)

def timestamp_us(ts: Timestamp) -> int:
    return ts.seconds * 1_000_000 + ts.nanos // 1000


def check_expiry(expires_at: Timestamp, field: str, *, start_us: int, max_years: int) -> int:
    """A requested end of a period: after `start_us`, at most `max_years` later."""
    if not expires_at.seconds and not expires_at.nanos:
        raise FieldError(field, "is required")
    expires_us = timestamp_us(expires_at)
    if expires_us <= start_us:
        raise FieldError(field, "must be in the future")
    if expires_us > add_years(start_us, max_years):
        raise FieldError(field, f"must be at most {max_years} year(s) from now (statutory maximum)")
    return expires_us


class Refusal(Exception):
    """A business rule refuses the request; recorded under its key."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def request_digest(request: Message) -> bytes:
    """What makes two requests "the same": every field but the key itself."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("idempotency_key")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).digest()


async def exactly_once(
    conn: sqlite3.Connection,
    context: grpc.aio.ServicerContext,
    *,
    method: str,
    request: Message,
    court_code: str,
    response_type: type[Response],
    apply: Callable[[sqlite3.Connection], Response],
    now_us: int,
) -> Response:
    """Run `apply` at most once per idempotency key; see the module docstring.

    `apply` runs inside the transaction and must only touch `conn`; it
    raises Refusal to refuse (recorded), or FieldError for a check that
    depends on the time of the first call, such as expires_at against now
    (not recorded: a replay after that time still gets the stored answer).
    Call after validating the request.
    """
    key = request.idempotency_key
    try:
        validate_token(key, "idempotency_key", required=True)
    except FieldError as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    digest = request_digest(request)
    try:
        response = _run_once(conn, key, method, digest, court_code, response_type, apply, now_us)
    except FieldError as exc:
        # A time-dependent check (expires_at against now) failed for a new
        # key: nothing was written, so the key stays free for a fixed request.
        if faults.active("invalid_argument_stored"):
            _store(conn, key, method, digest, court_code, Refusal(grpc.StatusCode.INVALID_ARGUMENT, str(exc)), now_us)
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    if isinstance(response, Refusal):
        # Abort outside the transaction: the refusal is committed first.
        await context.abort(response.code, response.message)
    return response


def _run_once(
    conn: sqlite3.Connection,
    key: str,
    method: str,
    digest: bytes,
    court_code: str,
    response_type: type[Response],
    apply: Callable[[sqlite3.Connection], Response],
    now_us: int,
) -> Response | Refusal:
    """The transaction of exactly_once: the response, or the Refusal to send."""
    refusal: Refusal | None = None
    # now_us stamps the hold changes this transaction makes (the feed's changed_at).
    with transaction(conn, now_us=now_us):
        row = conn.execute(
            "SELECT method, request_digest, response FROM idempotency WHERE idempotency_key = ?", (key,)
        ).fetchone()
        if row is not None and faults.active("replay_applies_twice" if row["request_digest"] == digest
                                             else "key_reuse_accepted"):
            return apply(conn)
        if row is not None:
            if row["method"] != method or row["request_digest"] != digest:
                refusal = Refusal(
                    grpc.StatusCode.ALREADY_EXISTS,
                    f"idempotency_key: already used for a different request ({row['method']});"
                    " use a new key for a new request",
                )
            else:
                response = _stored(row["response"], response_type)
                if isinstance(response, Refusal):
                    refusal = response
                else:
                    return response
        else:
            try:
                response = apply(conn)
                stored = b"R" + response.SerializeToString(deterministic=True)
            except Refusal as exc:
                refusal = exc
                stored = b"E" + f"{exc.code.name}\n{exc.message}".encode()
                if faults.active("refusal_not_stored"):
                    return refusal
            conn.execute(
                "INSERT INTO idempotency (idempotency_key, method, court_code, request_digest, response,"
                " created_at_us) VALUES (?, ?, ?, ?, ?, ?)",
                (key, method, court_code, digest, stored, now_us),
            )
            if refusal is None:
                return response
    return refusal


def _store(conn: sqlite3.Connection, key: str, method: str, digest: bytes, court_code: str, refusal: Refusal,
           now_us: int) -> None:
    """Record a refusal under the key in its own transaction (the invalid_argument_stored fault only)."""
    with transaction(conn):
        conn.execute(
            "INSERT OR IGNORE INTO idempotency (idempotency_key, method, court_code, request_digest, response,"
            " created_at_us) VALUES (?, ?, ?, ?, ?, ?)",
            (key, method, court_code, digest, b"E" + f"{refusal.code.name}\n{refusal.message}".encode(), now_us),
        )


def _stored(blob: bytes, response_type: type[Response]) -> Response | Refusal:
    if blob[:1] == b"R":
        return response_type.FromString(blob[1:])
    code, _, message = blob[1:].decode().partition("\n")
    return Refusal(grpc.StatusCode[code], message)
