"""Executor tokens: what verifies, what is refused and why, and that no input escapes the typed error."""

import base64
import hashlib
import hmac
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.cli.main import main
from services.security import tokens
from services.security.tokens import (
    Principal,
    TokenBadSignature,
    TokenError,
    TokenExpired,
    TokenInvalidClaims,
    TokenMalformed,
    TokenMissing,
    TokenNotYetValid,
    TokenSigner,
    TokenVerifier,
    TokenWrongAudience,
    TokenWrongIssuer,
)

NOW = 1_800_000_000.0
KEY = tokens.generate_signing_key()
OTHER_KEY = tokens.generate_signing_key()


def signer(at: float = NOW, key=KEY, **kwargs) -> TokenSigner:
    return TokenSigner(key, clock=lambda: at, **kwargs)


def verifier(at: float = NOW, keys=(KEY,), **kwargs) -> TokenVerifier:
    return TokenVerifier([k.public_key() for k in keys], clock=lambda: at, **kwargs)


def claims(**overrides) -> dict:
    base = {
        "iss": tokens.DEFAULT_ISSUER, "aud": tokens.AUDIENCE, "sub": "E0001", "court": "340100",
        "roles": ["executor"], "iat": int(NOW), "nbf": int(NOW), "exp": int(NOW) + 3600, "jti": "j1",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(payload, key=KEY, headers=None) -> str:
    """A JWS signed by hand, so any JSON payload (PyJWT's encoder refuses some) can be sent."""
    header = {"alg": "EdDSA", "typ": "JWT", "kid": tokens.key_id(key.public_key()), **(headers or {})}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload, allow_nan=True).encode())}"
    return f"{signing_input}.{b64(key.sign(signing_input.encode()))}"


def test_an_issued_token_names_executor_court_and_roles():
    token = signer().issue("E0001", "340100", ["executor", "admin"], ttl_s=3600)
    principal = verifier().verify(token)
    assert principal == Principal("E0001", "340100", frozenset({"executor", "admin"}))
    assert principal.has_role("admin")
    assert principal.expires_at == NOW + 3600
    assert len(principal.token_id) == 32


def test_decoded_claims_carry_audience_issuer_and_times():
    token = signer().issue("E0001", "340100", ttl_s=600)
    payload = jwt.decode(token, KEY.public_key(), algorithms=["EdDSA"], audience=tokens.AUDIENCE,
                         options={"verify_exp": False, "verify_iat": False, "verify_nbf": False})
    assert payload["aud"] == "chakong-gateway"
    assert payload["iss"] == tokens.DEFAULT_ISSUER
    assert payload["exp"] - payload["iat"] == 600
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"


@pytest.mark.parametrize("token", [None, "", "   "])
def test_a_missing_token_is_refused(token):
    with pytest.raises(TokenMissing, match="Bearer"):
        verifier().verify(token)


def test_an_expired_token_is_refused_after_the_leeway():
    token = signer().issue("E0001", "340100", ttl_s=60)
    assert verifier(at=NOW + 60 + tokens.LEEWAY_S).verify(token).executor_id == "E0001"
    with pytest.raises(TokenExpired, match="expired at 2027-01-15T08:01:00Z"):
        verifier(at=NOW + 61 + tokens.LEEWAY_S).verify(token)


def test_a_token_not_yet_valid_is_refused():
    with pytest.raises(TokenNotYetValid, match="not valid before"):
        verifier().verify(signer().issue("E0001", "340100", ttl_s=3600, not_before=NOW + 600))
    with pytest.raises(TokenNotYetValid, match="issued in the future"):
        verifier().verify(signed(claims(iat=int(NOW) + 600, exp=int(NOW) + 3600)))


def test_a_token_signed_by_another_key_is_refused():
    with pytest.raises(TokenBadSignature, match="unknown key"):
        verifier().verify(signer(key=OTHER_KEY).issue("E0001", "340100"))


def test_a_forged_signature_under_our_key_id_is_refused():
    forged = signed(claims(), key=OTHER_KEY, headers={"kid": tokens.key_id(KEY.public_key())})
    with pytest.raises(TokenBadSignature, match="does not verify"):
        verifier().verify(forged)


def test_an_edited_payload_is_refused():
    header, payload, signature = signer().issue("E0001", "340100").split(".")
    widened = json.loads(base64.urlsafe_b64decode(payload + "=="))
    widened["roles"] = ["admin", "executor"]
    with pytest.raises(TokenBadSignature):
        verifier().verify(".".join([header, b64(json.dumps(widened).encode()), signature]))


def test_alg_none_and_hmac_with_the_public_key_are_refused():
    public_pem = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    body = b64(json.dumps(claims()).encode())
    unsigned = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode()) + "." + body + "."
    # The classic confusion: HMAC keyed with the (public) verification key.
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    signature = b64(hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest())
    hmac_forged = f"{header}.{body}.{signature}"
    for token in (unsigned, hmac_forged):
        with pytest.raises(TokenMalformed, match="algorithm must be EdDSA"):
            verifier().verify(token)


def test_a_token_for_another_audience_is_refused():
    with pytest.raises(TokenWrongAudience, match="chakong-gateway"):
        verifier().verify(signed(claims(aud="some-other-service")))
    with pytest.raises(TokenWrongAudience):
        verifier().verify(signed(claims(aud=None)))
    assert verifier().verify(signed(claims(aud=["x", tokens.AUDIENCE]))).executor_id == "E0001"


def test_a_token_from_another_issuer_is_refused():
    with pytest.raises(TokenWrongIssuer):
        verifier().verify(signer(issuer="someone-else").issue("E0001", "340100"))
    assert verifier(issuer="court-idp").verify(signer(issuer="court-idp").issue("E0001", "340100"))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"sub": None}, "executor"),
        ({"sub": "E 0001"}, "executor"),
        ({"court": "34-01"}, "court"),
        ({"court": 340100}, "court"),
        ({"roles": []}, "at least one role"),
        ({"roles": ["judge"]}, "'judge' is not one of"),
        ({"roles": "executor"}, "list of role names"),
        ({"jti": None}, "jti"),
        ({"exp": None}, "no 'exp'"),
        ({"exp": "tomorrow"}, "not a time"),
        ({"exp": True}, "not a time"),
        ({"iat": None}, "no 'iat'"),
        ({"exp": int(NOW) + 3 * 86400}, "lives longer than 24 h"),
        ({"exp": int(NOW)}, "expires before it was issued"),
    ],
)
def test_claims_that_break_a_rule_are_refused(overrides, message):
    with pytest.raises(TokenInvalidClaims, match=message):
        verifier().verify(signed(claims(**overrides)))


def test_a_rotated_key_keeps_old_tokens_valid_while_both_are_configured():
    old, new = signer(key=KEY).issue("E0001", "340100"), signer(key=OTHER_KEY).issue("E0002", "340100")
    both = verifier(keys=(KEY, OTHER_KEY))
    assert both.verify(old).executor_id == "E0001"
    assert both.verify(new).executor_id == "E0002"


def test_errors_never_echo_the_token():
    token = signer(key=OTHER_KEY).issue("E0001", "340100")
    for bad in (token, token[:-3], token + "." + token):
        with pytest.raises(TokenError) as refused:
            verifier().verify(bad)
        assert token.split(".")[2][:12] not in str(refused.value)
        assert token.split(".")[1][:12] not in str(refused.value)


def test_signer_refuses_bad_requests():
    with pytest.raises(ValueError, match="ttl"):
        signer().issue("E0001", "340100", ttl_s=tokens.MAX_TTL_S + 1)
    with pytest.raises(ValueError, match="roles"):
        signer().issue("E0001", "340100", ["root"])
    with pytest.raises(ValueError, match="court"):
        signer().issue("E0001", "not a court")


def test_bearer_headers_and_metadata():
    assert tokens.bearer_token("Bearer abc.def.ghi") == "abc.def.ghi"
    assert tokens.bearer_token("bearer  abc ") == "abc"
    assert tokens.bearer_token(None) is None and tokens.bearer_token("") is None
    with pytest.raises(TokenMalformed):
        tokens.bearer_token("Basic dXNlcjpwYXNz")
    assert tokens.token_from_metadata([("authorization", "Bearer t")]) == "t"
    assert tokens.token_from_metadata([("x-request-id", "r")]) is None
    with pytest.raises(TokenMalformed, match="more than one"):
        tokens.token_from_metadata([("authorization", "Bearer a"), ("authorization", "Bearer b")])


@pytest.mark.parametrize("text, seconds", [("8h", 28800), ("30m", 1800), ("90", 90), ("1d", 86400), (" 45s ", 45)])
def test_ttl_parsing(text, seconds):
    assert tokens.parse_ttl(text) == seconds


def test_keys_files_and_the_cli(tmp_path, capsys):
    assert main(["token", "keygen", "--dir", str(tmp_path)]) == 0
    private = tmp_path / "token-signing.key"
    assert private.stat().st_mode & 0o777 == 0o600
    assert main(["token", "keygen", "--dir", str(tmp_path)]) == 2  # no silent replacement
    capsys.readouterr()
    assert main(["token", "issue", "--executor", "E0001", "--court", "340100", "--role", "executor",
                 "--ttl", "2h", "--signing-key", str(private)]) == 0
    token = capsys.readouterr().out.strip()
    principal = TokenVerifier.from_files([tmp_path / "token-signing.pub"]).verify(token)
    assert (principal.executor_id, principal.court_code, principal.roles) == ("E0001", "340100", {"executor"})
    assert main(["token", "verify", token, "--public-key", str(tmp_path / "token-signing.pub")]) == 0
    assert "executor E0001, court 340100" in capsys.readouterr().out
    assert main(["token", "issue", "--executor", "E0001", "--court", "340100", "--ttl", "3d",
                 "--signing-key", str(private)]) == 2
    assert "ttl" in capsys.readouterr().err


# Fuzzing: whatever arrives in an Authorization header, verify() returns a
# Principal or raises TokenError; nothing else escapes.

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
CLAIM_VALUES = {
    "iss": st.just(tokens.DEFAULT_ISSUER) | JSON,
    "aud": st.just(tokens.AUDIENCE) | st.lists(st.just(tokens.AUDIENCE) | st.text(max_size=5), max_size=3) | JSON,
    "sub": st.sampled_from(["E0001", "", "E 1"]) | JSON,
    "court": st.sampled_from(["340100", "34"]) | JSON,
    "roles": st.lists(st.sampled_from(["executor", "admin", "x"]), max_size=3) | JSON,
    "iat": st.integers(int(NOW) - 100_000, int(NOW) + 100_000) | JSON,
    "nbf": st.integers(int(NOW) - 100_000, int(NOW) + 100_000) | JSON,
    "exp": st.integers(int(NOW) - 100_000, int(NOW) + 200_000) | JSON,
    "jti": st.text(max_size=70) | JSON,
}
PAYLOADS = st.fixed_dictionaries({}, optional=CLAIM_VALUES)
VERIFIER = verifier()


def check_verify(token) -> None:
    try:
        result = VERIFIER.verify(token)
    except TokenError:
        return
    assert isinstance(result, Principal)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300) | st.binary(max_size=100).map(lambda b: b.decode("latin-1")))
def test_fuzz_arbitrary_text(token):
    check_verify(token)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=.", max_size=60),
                min_size=1, max_size=5))
def test_fuzz_jwt_shaped_text(parts):
    check_verify(".".join(parts))


@settings(max_examples=300, deadline=None)
@given(JSON, JSON, st.binary(max_size=80))
def test_fuzz_headers_and_payloads_of_any_json(header, payload, signature):
    header_part = b64(json.dumps(header, allow_nan=True).encode())
    payload_part = b64(json.dumps(payload, allow_nan=True).encode())
    check_verify(f"{header_part}.{payload_part}.{b64(signature)}")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PAYLOADS)
def test_fuzz_validly_signed_tokens_with_arbitrary_claims(payload):
    """The signature checks out, so every claim rule is exercised on hostile values."""
    check_verify(signed(payload))


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_fuzz_validly_signed_tokens_whose_payload_is_any_json(payload):
    check_verify(signed(payload))
