"""How the `chakong` client reaches the gateway: TLS trusting the CA (--ca), and executor tokens: --token,
CHAKONG_TOKEN, or a development token minted locally.

The gateway serves TLS; the CLI trusts the development CA `make run` and
`chakong pki init` create (var/pki/ca.crt; --ca or CHAKONG_CA for another).
Plaintext only behind the development flag the gateway has, INSECURE_PLAINTEXT=1.

The development fallback: with no token given and the signing key at
var/pki/token-signing.key (CHAKONG_TOKEN_SIGNING_KEY to point elsewhere;
`make run` and `chakong pki init` create it), the CLI mints a 15-minute
token for --executor/--court itself. That is only possible where the
private key is, i.e. on a developer's machine; in production executors
get tokens from their court's identity provider and pass them with --token.
"""

import argparse
import os
import sys
from pathlib import Path

import grpc
import jwt

from services.common.tls import gateway_client_credentials
from services.security.tokens import AUTHORIZATION_METADATA_KEY, TokenSigner

DEV_SIGNING_KEY = Path("var/pki/token-signing.key")
DEV_CA = Path("var/pki/ca.crt")
DEV_TTL_S = 15 * 60
DEFAULT_COURT, DEFAULT_EXECUTOR = "340100", "E0001"
COURT_HELP = "court code (default: the token's court, else env CHAKONG_COURT, else 340100)"
EXECUTOR_HELP = "executor ID (default: the token's executor, else env CHAKONG_EXECUTOR, else E0001)"


def fill_identity(args: argparse.Namespace) -> None:
    """Court and executor for the request: as given, else the token's own, else the environment's, else the defaults.

    A court-340200 token then needs no --court 340200 as well. The claims are
    only read here (the gateway verifies the token); an unreadable token
    leaves the defaults, and the gateway answers 401.
    """
    if not hasattr(args, "court"):
        return
    claims = {}
    if getattr(args, "token", ""):
        try:
            claims = jwt.decode(args.token, options={"verify_signature": False})
        except jwt.PyJWTError:
            claims = {}
    if args.court is None:
        court = claims.get("court")
        args.court = court if isinstance(court, str) else os.environ.get("CHAKONG_COURT", DEFAULT_COURT)
    if args.executor is None:
        executor = claims.get("sub")
        args.executor = executor if isinstance(executor, str) else os.environ.get("CHAKONG_EXECUTOR", DEFAULT_EXECUTOR)


def resolve_token(token: str, executor_id: str, court_code: str, roles=("executor",)) -> str:
    """The token to send: the one given, else a development token, else '' (the gateway will say 401)."""
    if token:
        return token
    key = Path(os.environ.get("CHAKONG_TOKEN_SIGNING_KEY", str(DEV_SIGNING_KEY)))
    if key.is_file():
        return TokenSigner.from_file(key).issue(executor_id, court_code, roles, ttl_s=DEV_TTL_S)
    return ""


class _Bearer:
    def __init__(self, token: str):
        self._metadata = ((AUTHORIZATION_METADATA_KEY, f"Bearer {token}"),)

    def _with_token(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), *self._metadata)
        return details._replace(metadata=metadata)


# Two classes: grpc.aio files an interceptor under the first call kind it implements only.
class _BearerUnary(_Bearer, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, client_call_details, request):
        return await continuation(self._with_token(client_call_details), request)


class _BearerStream(_Bearer, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, client_call_details, request):
        return await continuation(self._with_token(client_call_details), request)


def gateway_credentials(ca: Path | str) -> grpc.ChannelCredentials | None:
    """TLS trusting only the CA in `ca`; None (plaintext, said on stderr) behind INSECURE_PLAINTEXT=1."""
    if os.environ.get("INSECURE_PLAINTEXT", "").strip() == "1":
        print("warning: INSECURE_PLAINTEXT=1: talking to the gateway without TLS; the token travels in clear",
              file=sys.stderr)
        return None
    return gateway_client_credentials(ca)


def gateway_channel(address: str, token: str, credentials: grpc.ChannelCredentials | None) -> grpc.aio.Channel:
    """A channel to the gateway that sends `token` with every call (none when token is '').

    TLS with `credentials`; plaintext only when they are None, which
    gateway_credentials returns behind the development flag alone.
    """
    interceptors = [_BearerUnary(token), _BearerStream(token)] if token else None
    if credentials is None:
        return grpc.aio.insecure_channel(address, interceptors=interceptors)
    return grpc.aio.secure_channel(address, credentials, interceptors=interceptors)


def channel_for(args, roles=("executor",)) -> grpc.aio.Channel:
    """The gateway channel for a parsed command line (--gateway, --ca, --token, --executor, --court)."""
    executor_id = getattr(args, "executor", None) or os.environ.get("CHAKONG_EXECUTOR", DEFAULT_EXECUTOR)
    court_code = getattr(args, "court", None) or os.environ.get("CHAKONG_COURT", DEFAULT_COURT)
    token = resolve_token(getattr(args, "token", ""), executor_id, court_code, roles)
    return gateway_channel(args.gateway, token, gateway_credentials(args.ca))
