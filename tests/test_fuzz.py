"""Fuzzing (hypothesis): the parsers and validators raise only their own errors, and no input
makes the gateway answer HTTP 500 or gRPC INTERNAL/UNKNOWN."""

import asyncio
import http.client
import json
import random
from urllib.parse import quote

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum.cn import ric

from protos.common.v1 import common_pb2
from services.common import identifiers, validation
from services.common.identifiers import InvalidIdentifier
from services.common.validation import FieldError
from services.datagen import population as pop
from tests.support.auth import issue_token
from tests.support.gateway import query_body
from tests.support.gateway_process import showcase_gateway
from tests.support.tls import GatewayEndpoints

FUZZ = settings(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))

# Parsers and validators

ID_CHECKS = (
    identifiers.check_resident_id,
    identifiers.check_credit_code,
    identifiers.check_passport,
    identifiers.check_plate,
    identifiers.check_case_number,
)
# Text that gets past the length and alphabet checks often enough to reach the deeper ones.
ID_LIKE = st.one_of(
    st.text(),
    st.text(alphabet="0123456789X", min_size=17, max_size=19),
    st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=18, max_size=18),
    st.text(alphabet="皖A0123456789DFIO", min_size=6, max_size=9),
    st.text(alphabet="()（）皖01执恢保号23456789", min_size=8, max_size=20),
)
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@FUZZ
@given(value=ID_LIKE)
def test_identifier_checks_raise_only_invalid_identifier(value):
    for check in ID_CHECKS:
        try:
            assert check(value) == value
        except InvalidIdentifier as exc:
            assert str(exc)


@st.composite
def resident_ids(draw):
    district = draw(st.integers(0, len(pop.CURRENT_REGION) - 1))
    day = draw(st.integers(pop._SPOUSE_FIRST, pop._BIRTH_LAST))
    return pop.resident_id(district, day, draw(st.integers(0, 999)))


@st.composite
def resident_id_like(draw):
    """17 digits and a check character: real regions and dates, and ones that never existed."""
    region = draw(st.one_of(st.sampled_from(sorted(pop.CURRENT_REGION)), st.text("0123456789", min_size=6, max_size=6)))
    birth = draw(st.one_of(st.dates().map(lambda d: f"{d:%Y%m%d}"), st.text("0123456789", min_size=8, max_size=8)))
    first17 = region + birth + draw(st.text("0123456789", min_size=3, max_size=3))
    right = identifiers.resident_id_check_char(first17)
    return first17 + draw(st.one_of(st.just(right), st.sampled_from("0123456789X")))


@FUZZ
@given(value=resident_id_like())
def test_resident_id_check_agrees_with_the_full_stdnum_validation(value):
    # check_resident_id remembers region lookups for speed; the answer must
    # stay what stdnum's full check (format, date, region in that year, check) says.
    try:
        identifiers.check_resident_id(value)
        accepted = True
    except InvalidIdentifier:
        accepted = False
    try:
        valid = ric.is_valid(value)
    except KeyError:  # stdnum's lookup fails on province- and city-level codes: not an ID's region
        valid = False
    assert accepted == valid


@st.composite
def credit_codes(draw):
    return pop._credit_code(random.Random(draw(st.integers(0, 2**32))).random)


@st.composite
def plates(draw):
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
    if draw(st.booleans()):
        return "皖A" + draw(st.text(alphabet=letters, min_size=5, max_size=5))
    energy = draw(st.sampled_from("DF"))
    digits = draw(st.text(alphabet="0123456789", min_size=4, max_size=4))
    if draw(st.booleans()):
        return "皖A" + energy + draw(st.sampled_from(letters)) + digits
    return "皖A" + draw(st.text(alphabet="0123456789", min_size=1, max_size=1)) + digits + energy


@st.composite
def case_numbers(draw):
    year = draw(st.integers(1990, 2099))
    left, right = draw(st.sampled_from(["()", "（）"]))
    district = draw(st.text(alphabet="0123456789", min_size=2, max_size=4))
    suffix = draw(st.sampled_from(["", "恢", "保", "异", "复"]))
    number = draw(st.integers(1, 999_999))
    return f"{left}{year}{right}皖{district}执{suffix}{number}号"


@FUZZ
@given(rid=resident_ids(), code=credit_codes(), plate=plates(), case_number=case_numbers(),
       passport=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=5, max_size=17))
def test_valid_identifiers_always_pass(rid, code, plate, case_number, passport):
    assert identifiers.check_resident_id(rid) == rid
    assert identifiers.check_resident_id(rid[:17] + identifiers.resident_id_check_char(rid[:17])) == rid
    assert identifiers.check_credit_code(code) == code
    assert identifiers.check_credit_code(code[:17] + identifiers.credit_code_check_char(code[:17])) == code
    assert identifiers.check_plate(plate) == plate
    assert identifiers.check_case_number(case_number) == case_number
    assert identifiers.check_passport(passport) == passport
    subject = common_pb2.Subject(type=common_pb2.SUBJECT_TYPE_RESIDENT_ID, id_number=rid, name="张三")
    validation.validate_subject(subject, require_name=True)
    validation.validate_case(common_pb2.CaseRef(case_number=case_number, court_code="340100",
                                                executor_id="E0001", document_number="D-1"))


def _only_field_errors(call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except FieldError as exc:
        assert exc.field and exc.rule


@FUZZ
@given(
    subject_type=st.integers(-(2**31), 2**31 - 1) | st.sampled_from(list(common_pb2.SubjectType.values())),
    id_number=ID_LIKE, name=st.text(), texts=st.lists(st.text(), min_size=4, max_size=4),
    amount=st.one_of(INT64, st.integers()), token=st.text(), required=st.booleans(), require_name=st.booleans(),
)
def test_validators_raise_only_field_errors(subject_type, id_number, name, texts, amount, token, required,
                                            require_name):
    subject = common_pb2.Subject(type=subject_type, id_number=id_number, name=name)
    _only_field_errors(validation.validate_subject, subject, require_name=require_name)
    case = common_pb2.CaseRef(case_number=texts[0], court_code=texts[1], executor_id=texts[2],
                              document_number=texts[3])
    _only_field_errors(validation.validate_case, case)
    _only_field_errors(validation.validate_amount_fen, amount, "amount_fen")
    _only_field_errors(validation.validate_token, token, "request_id", required=required)
    _only_field_errors(validation.require_text, token, "name", 100)


# The HTTP and gRPC APIs of a real gateway process


@pytest.fixture(scope="module")
def gateway(healthy, tmp_path_factory, token_keys):
    with showcase_gateway(tmp_path_factory.mktemp("fuzz-gateway"), healthy) as service:
        yield service


@pytest.fixture(scope="module")
def token(gateway) -> str:
    return issue_token()


JSON = st.recursive(
    st.none() | st.booleans() | INT64 | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=15,
)
GARBAGE = st.one_of(
    JSON,
    st.just("x" * 200_000),
    st.text(min_size=1000, max_size=5000),
    st.sampled_from([-1, 0, -(2**63), 2**63, 2**64, 10**30, -(10**30), 1e308, -1e308, "-1", "1e400", "NaN"]),
    st.dictionaries(st.text(max_size=10), JSON, max_size=5),
)
PATHS = (
    "/v1/queries", "/v1/queries/stream", "/v1/agencies", "/v1/cases", "/v1/cases/{x}", "/v1/freezes",
    "/v1/freezes/{x}/renew", "/v1/freezes/{x}/release", "/v1/freezes/{x}/deduct", "/v1/deductions",
    "/v1/seals", "/v1/seals/{x}/renew", "/v1/seals/{x}/release", "/v1/transfers", "/v1/{x}", "/v1/{x}/{x}",
)
POST_PATHS = tuple(p for p in PATHS if p not in ("/v1/agencies", "/v1/cases/{x}"))


def _set_path(document, path: tuple, value):
    node = document
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(node.get(key), dict) else node.setdefault(key, {})
        if not isinstance(node, dict):
            return document
    node[path[-1]] = value
    return document


# Fields of the query and of the actions, in the places a caller puts them.
FIELD_PATHS = (
    ("case",), ("case", "caseNumber"), ("case", "courtCode"), ("case", "executorId"), ("case", "documentNumber"),
    ("subject",), ("subject", "type"), ("subject", "idNumber"), ("subject", "name"), ("agencyIds",),
    ("deadlineMs",), ("requestId",), ("amountFen",), ("amount_fen",), ("agencyId",), ("accountNumber",),
    ("plate",), ("certificateNumber",), ("idempotencyKey",), ("debtors",), ("executorIds",), ("amountOwedFen",),
    ("case", "unknown"), ("nope",), ("holdId",), ("days",), ("expiresOn",),
)


@st.composite
def bodies(draw) -> bytes:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.binary(max_size=200))
    if kind == 1:
        return json.dumps(draw(JSON)).encode()
    document = query_body()
    for _ in range(draw(st.integers(1, 3))):
        _set_path(document, draw(st.sampled_from(FIELD_PATHS)), draw(GARBAGE))
    text = json.dumps(document, ensure_ascii=draw(st.booleans()))
    if kind == 5:  # truncated or nested too deep
        text = draw(st.sampled_from([text[: len(text) // 2], "[" * 100_000, '{"a":' * 50_000]))
    return text.encode("utf-8", "surrogatepass")


# Field-value characters (RFC 9110: visible ASCII, space, obs-text); anything else is refused by
# aiohttp's HTTP parser before the application sees the request (400 in JSON: tests/test_http_limits.py).
HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126) | st.characters(min_codepoint=128, max_codepoint=255),
    max_size=300,
)


@st.composite
def requests_(draw, token: str):
    method = draw(st.sampled_from(["POST"] * 6 + ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "PROPFIND"]))
    template = draw(st.sampled_from(POST_PATHS if method == "POST" else PATHS))
    path = template.replace("{x}", quote(draw(st.text(min_size=1, max_size=40)), safe=""), 1)
    path = path.replace("{x}", quote(draw(st.text(min_size=1, max_size=10)), safe=""))
    if draw(st.integers(0, 9)) == 0:
        path += "?" + quote(draw(st.text(max_size=30)), safe="=&")
    headers = {}
    auth = draw(st.integers(0, 9))
    if auth < 7:
        headers["Authorization"] = f"Bearer {token}"
    elif auth == 7:
        headers["Authorization"] = draw(HEADER_TEXT)
    elif auth == 8:
        headers["Authorization"] = "Bearer " + draw(st.sampled_from([token[:-3] + "abc", token + ".x", "a.b.c", ""]))
    if draw(st.booleans()):
        headers["X-Request-Id"] = draw(HEADER_TEXT)
    # Mostly JSON, so most bodies reach the parser; the rest tries the 415 of anything else.
    if draw(st.integers(0, 9)):
        headers["Content-Type"] = "application/json"
    elif draw(st.booleans()):
        headers["Content-Type"] = draw(st.sampled_from(["text/plain", ""]) | HEADER_TEXT)
    if draw(st.booleans()):
        headers["Idempotency-Key"] = draw(HEADER_TEXT)
    return method, path, headers, draw(bodies())


def _latin1(headers: dict[str, str]) -> dict[str, bytes]:
    return {k: v.strip().encode("latin-1") for k, v in headers.items()}


def test_http_api_never_answers_500(gateway, token):
    host, port = gateway.endpoints["http"].rsplit(":", 1)
    seen: dict[int, int] = {}

    @settings(FUZZ, max_examples=250)
    @given(request=requests_(token))
    def fuzz(request):
        method, path, headers, body = request
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            conn.request(method, path, body=body, headers=_latin1(headers))
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        status = response.status
        seen[status] = seen.get(status, 0) + 1
        where = f"{method} {path} {headers} {body[:300]!r} -> {status} {payload[:300]!r}"
        assert status != 500, where
        if status >= 400 and method != "HEAD":
            document = json.loads(payload)
            assert isinstance(document, dict) and "error" in document, where

    fuzz()
    # Most requests got past authentication, and many into the body parser
    # (400; 413 and 415 are refusals at the door before it).
    assert sum(n for status, n in seen.items() if status != 401) > 150, seen
    assert seen.get(400, 0) > 25, seen


def test_grpc_query_with_random_bytes_is_never_internal(gateway, token):
    async def run():
        codes = []
        async with GatewayEndpoints.of(gateway).channel() as channel:
            call = channel.unary_unary(
                "/chakong.gateway.v1.AssetGateway/QueryAssets", request_serializer=None, response_deserializer=None
            )
            metadata = (("authorization", f"Bearer {token}"),)

            @settings(FUZZ, max_examples=150)
            @given(payload=st.binary(max_size=300) | bodies())
            def fuzz(payload):
                codes.append(asyncio.run_coroutine_threadsafe(ask(call, payload, metadata), loop).result())

            loop = asyncio.get_running_loop()
            await asyncio.to_thread(fuzz)
        return codes

    async def ask(call, payload, metadata):
        try:
            await call(payload, metadata=metadata, timeout=5)
            return grpc.StatusCode.OK
        except grpc.aio.AioRpcError as exc:
            assert exc.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), (payload, exc)
            return exc.code()

    codes = asyncio.run(run())
    assert grpc.StatusCode.INVALID_ARGUMENT in codes
