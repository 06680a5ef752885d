"""Signed, expiring executor tokens: who is asking, for which court, in which roles.

A token is a JWT signed with Ed25519 (JWS alg "EdDSA"). Asymmetric on
purpose: the gateway, the process most exposed to the outside, holds only
the public key, so a leak of its files or memory lets nobody mint tokens;
the private key stays with whoever issues them (`chakong token issue`
today, the courts' identity provider later). Verification pins the one
algorithm, so neither "none" nor an HMAC keyed with the public key is
accepted. Each key has an ID (`kid`, from its public key); a verifier may
hold several public keys, so the signing key can be rotated without
invalidating tokens already issued.

Claims: iss, aud ("chakong-gateway"), sub (executor ID), court (court code),
roles (some of "executor", "admin", "query_team"), iat, nbf, exp, jti.
"""

import hashlib
import math
import os
import re
import tempfile
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.common.settings import SettingsError, env_str

AUDIENCE = "chakong-gateway"
DEFAULT_ISSUER = "chakong-dev"
ALGORITHM = "EdDSA"
# query_team: a court's query-control team (查控团队), who query the debtors of any of the court's cases.
ROLES = frozenset({"executor", "admin", "query_team"})
DEFAULT_TTL_S = 8 * 3600
# A stolen token is useful until it expires: a working day at most.
MAX_TTL_S = 24 * 3600
LEEWAY_S = 30
MAX_TOKEN_CHARS = 4096
# Verified tokens remembered: about one per executor on duty.
VERIFIED_CACHE_SIZE = 4096
AUTHORIZATION_METADATA_KEY = "authorization"

# The same rules as CaseRef's fields (services.common.validation), so a
# token's principal always fits the request it must match.
_EXECUTOR_ID = re.compile(r"[0-9A-Za-z_.-]{1,32}")
_COURT_CODE = re.compile(r"[0-9A-Z]{3,12}")
_JTI = re.compile(r"[0-9A-Za-z_.:-]{1,64}")


class TokenError(Exception):
    """The token cannot be accepted. The message says why without echoing the token or any key."""

    reason = "invalid"


class TokenMissing(TokenError):
    reason = "missing"


class TokenMalformed(TokenError):
    reason = "malformed"


class TokenBadSignature(TokenError):
    reason = "bad_signature"


class TokenExpired(TokenError):
    reason = "expired"


class TokenNotYetValid(TokenError):
    reason = "not_yet_valid"


class TokenWrongAudience(TokenError):
    reason = "wrong_audience"


class TokenWrongIssuer(TokenError):
    reason = "wrong_issuer"


class TokenInvalidClaims(TokenError):
    reason = "invalid_claims"


@dataclass(frozen=True)
class Principal:
    """The executor a verified token speaks for."""

    executor_id: str
    court_code: str
    roles: frozenset[str]
    # The token's jti and expiry, for the audit trail.
    token_id: str = field(default="", compare=False)
    expires_at: float = field(default=0.0, compare=False)

    def has_role(self, role: str) -> bool:
        return role in self.roles


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_signing_key(private_path: Path | str, public_path: Path | str, key: Ed25519PrivateKey | None = None) -> None:
    """Write a signing key (0600) and its public key (0644)."""
    key = key or generate_signing_key()
    _write_atomic(
        Path(private_path),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        0o600,
    )
    _write_atomic(
        Path(public_path),
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        0o644,
    )


def _read_key_file(path: Path | str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise SettingsError(f"{what} {str(path)!r}: no such file (create one with `chakong token keygen`)") from None
    except OSError as exc:
        raise SettingsError(f"{what} {str(path)!r}: cannot read: {exc.strerror}") from None


def load_signing_key(path: Path | str) -> Ed25519PrivateKey:
    data = _read_key_file(path, "token signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SettingsError(f"token signing key {str(path)!r}: not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SettingsError(f"token signing key {str(path)!r}: expected an Ed25519 key")
    return key


def load_public_key(path: Path | str) -> Ed25519PublicKey:
    data = _read_key_file(path, "token public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise SettingsError(f"token public key {str(path)!r}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SettingsError(f"token public key {str(path)!r}: expected an Ed25519 key")
    return key


def parse_ttl(text: str) -> int:
    """'8h', '30m', '90s', '1d' or a number of seconds."""
    match = re.fullmatch(r"\s*(\d{1,7})\s*([smhd]?)\s*", text)
    if not match:
        raise ValueError(f"TTL {text!r}: expected a whole number with an optional unit s, m, h or d, e.g. 8h")
    return int(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


def _check_identity(executor_id: str, court_code: str, roles: Iterable[str]) -> frozenset[str]:
    if not isinstance(executor_id, str) or not _EXECUTOR_ID.fullmatch(executor_id):
        raise ValueError("executor: must be 1 to 32 letters, digits, '_', '.' or '-'")
    if not isinstance(court_code, str) or not _COURT_CODE.fullmatch(court_code):
        raise ValueError("court: must be 3 to 12 digits or upper-case letters")
    role_set = frozenset(roles)
    if not role_set:
        raise ValueError("roles: at least one role is required")
    unknown = sorted(r for r in role_set if r not in ROLES)
    if unknown:
        raise ValueError(f"roles: {unknown[0]!r} is not one of {', '.join(sorted(ROLES))}")
    return role_set


class TokenSigner:
    """Issues tokens with a private key; kept away from the gateway."""

    def __init__(
        self,
        private_key: Ed25519PrivateKey,
        *,
        issuer: str = DEFAULT_ISSUER,
        clock: Callable[[], float] = time.time,
    ):
        self._key = private_key
        self._kid = key_id(private_key.public_key())
        self.issuer = issuer
        self._clock = clock

    @classmethod
    def from_file(cls, path: Path | str, **kwargs) -> "TokenSigner":
        return cls(load_signing_key(path), **kwargs)

    def issue(
        self,
        executor_id: str,
        court_code: str,
        roles: Iterable[str] = ("executor",),
        *,
        ttl_s: int = DEFAULT_TTL_S,
        not_before: float | None = None,
    ) -> str:
        """A signed token valid for ttl_s seconds from now (at most MAX_TTL_S)."""
        role_set = _check_identity(executor_id, court_code, roles)
        if not 1 <= ttl_s <= MAX_TTL_S:
            raise ValueError(f"ttl: {ttl_s} s; must be from 1 s to {MAX_TTL_S // 3600} h")
        now = int(self._clock())
        claims = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": executor_id,
            "court": court_code,
            "roles": sorted(role_set),
            "iat": now,
            "nbf": int(not_before) if not_before is not None else now,
            "exp": now + ttl_s,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self._kid})


def _numeric_date(claims: Mapping[str, object], name: str) -> float:
    value = claims.get(name)
    if value is None:
        raise TokenInvalidClaims(f"token has no {name!r} claim")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TokenInvalidClaims(f"token claim {name!r} is not a time")
    if not 0 <= value < 1e11:
        raise TokenInvalidClaims(f"token claim {name!r} is out of range")
    return float(value)


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class TokenVerifier:
    """Checks tokens with public keys only: signature, audience, issuer, times, then the claims."""

    def __init__(
        self,
        public_keys: Iterable[Ed25519PublicKey],
        *,
        issuer: str = DEFAULT_ISSUER,
        audience: str = AUDIENCE,
        leeway_s: int = LEEWAY_S,
        max_lifetime_s: int = MAX_TTL_S,
        clock: Callable[[], float] = time.time,
    ):
        self._keys = {key_id(k): k for k in public_keys}
        if not self._keys:
            raise ValueError("a token verifier needs at least one public key")
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self.max_lifetime_s = max_lifetime_s
        self._clock = clock
        self._verified: OrderedDict[str, dict] = OrderedDict()

    @classmethod
    def from_files(cls, paths: Iterable[Path | str], **kwargs) -> "TokenVerifier":
        return cls([load_public_key(p) for p in paths], **kwargs)

    @classmethod
    def from_env(cls) -> "TokenVerifier":
        """CHAKONG_TOKEN_PUBLIC_KEY: comma-separated public key files (old and new while rotating);
        CHAKONG_TOKEN_ISSUER: the issuer tokens must name."""
        raw = env_str("CHAKONG_TOKEN_PUBLIC_KEY", "var/pki/token-signing.pub")
        paths = [p.strip() for p in raw.split(",") if p.strip()]
        return cls.from_files(paths, issuer=env_str("CHAKONG_TOKEN_ISSUER", DEFAULT_ISSUER))

    def verify(self, token: str | None) -> Principal:
        if token is None or (isinstance(token, str) and not token.strip()):
            raise TokenMissing("no token: send 'Authorization: Bearer <token>' (chakong token issue)")
        if not isinstance(token, str):
            raise TokenMalformed("token is not text")
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenMalformed(f"token is longer than {MAX_TOKEN_CHARS} characters")
        if not token.isascii():
            raise TokenMalformed("token is not a JWT (non-ASCII characters)")
        claims = self._verified_claims(token)
        return self._principal(claims)

    def _verified_claims(self, token: str) -> dict:
        """The claims of a token whose signature verifies, remembered by token:
        an executor sends the same token on every call, and checking an
        Ed25519 signature costs more than the rest of the gateway's door.
        Times, audience and issuer are still checked on every call."""
        claims = self._verified.get(token)
        if claims is not None:
            self._verified.move_to_end(token)
            return claims
        claims = self._verify_signature(token)
        self._verified[token] = claims
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return claims

    def _verify_signature(self, token: str) -> dict:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenMalformed("token is not a JWT (expected three base64url parts)") from None
        if header.get("alg") != ALGORITHM:
            raise TokenMalformed(f"token algorithm must be {ALGORITHM}")
        kid = header.get("kid")
        if kid is None and len(self._keys) == 1:
            key = next(iter(self._keys.values()))
        elif isinstance(kid, str) and kid in self._keys:
            key = self._keys[kid]
        else:
            raise TokenBadSignature("token is signed by an unknown key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                # Times, audience and issuer are checked below, against our clock, with our messages.
                options={
                    "verify_signature": True,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                    "verify_sub": False,
                    "verify_jti": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise TokenBadSignature("token signature does not verify") from None
        except jwt.PyJWTError:
            raise TokenMalformed("token is not a well-formed JWT") from None
        if not isinstance(claims, dict):
            raise TokenMalformed("token payload is not a JSON object")
        return claims

    def _principal(self, claims: dict) -> Principal:
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
        if self.audience not in audiences:
            raise TokenWrongAudience(f"token is not meant for this service (audience must include {self.audience!r})")
        if claims.get("iss") != self.issuer:
            raise TokenWrongIssuer(f"token was not issued by {self.issuer!r}")
        now = self._clock()
        exp = _numeric_date(claims, "exp")
        iat = _numeric_date(claims, "iat")
        nbf = _numeric_date(claims, "nbf") if "nbf" in claims else iat
        if now > exp + self.leeway_s:
            raise TokenExpired(f"token expired at {_when(exp)}")
        if nbf > now + self.leeway_s:
            raise TokenNotYetValid(f"token is not valid before {_when(nbf)}")
        if iat > now + self.leeway_s:
            raise TokenNotYetValid(f"token was issued in the future ({_when(iat)})")
        if exp <= iat:
            raise TokenInvalidClaims("token expires before it was issued")
        if exp - iat > self.max_lifetime_s:
            raise TokenInvalidClaims(f"token lives longer than {self.max_lifetime_s // 3600} h; issue a shorter one")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not _JTI.fullmatch(jti):
            raise TokenInvalidClaims("token has no valid 'jti' claim")
        roles = claims.get("roles")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise TokenInvalidClaims("token claim 'roles' must be a list of role names")
        try:
            role_set = _check_identity(claims.get("sub"), claims.get("court"), roles)  # type: ignore[arg-type]
        except ValueError as exc:
            raise TokenInvalidClaims(f"token claim {exc}") from None
        return Principal(claims["sub"], claims["court"], role_set, token_id=jti, expires_at=exp)


def bearer_token(authorization: str | None) -> str | None:
    """The token in an 'Authorization: Bearer <token>' value; None when there is none."""
    if authorization is None or not authorization.strip():
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenMalformed("authorization must be 'Bearer <token>'")
    return token.strip()


def token_from_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The bearer token in gRPC metadata ('authorization: Bearer <token>'); None when there is none."""
    values = [v for k, v in metadata or () if k == AUTHORIZATION_METADATA_KEY]
    if not values:
        return None
    if len(values) > 1:
        raise TokenMalformed("more than one authorization header")
    value = values[0]
    if isinstance(value, bytes):
        raise TokenMalformed("authorization must be text")
    return bearer_token(value)
