"""Executor tokens for the `chakong` client: --token, CHAKONG_TOKEN, or a development token minted locally.

The development fallback: with no token given and the signing key at
var/pki/token-signing.key (CHAKONG_TOKEN_SIGNING_KEY to point elsewhere;
`make run` and `chakong pki init` create it), the CLI mints a 15-minute
token for --executor/--court itself. That is only possible where the
private key is, i.e. on a developer's machine; in production executors
get tokens from their court's identity provider and pass them with --token.
"""

import argparse
import os
from pathlib import Path

import grpc
import jwt

from services.security.tokens import AUTHORIZATION_METADATA_KEY, TokenSigner

DEV_SIGNING_KEY = Path("var/pki/token-signing.key")
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


def gateway_channel(address: str, token: str) -> grpc.aio.Channel:
    """A channel to the gateway that sends `token` with every call (none when token is '')."""
    interceptors = [_BearerUnary(token), _BearerStream(token)] if token else None
    return grpc.aio.insecure_channel(address, interceptors=interceptors)


def channel_for(args, roles=("executor",)) -> grpc.aio.Channel:
    """The gateway channel for a parsed command line (--gateway, --token, --executor, --court)."""
    executor_id = getattr(args, "executor", None) or os.environ.get("CHAKONG_EXECUTOR", DEFAULT_EXECUTOR)
    court_code = getattr(args, "court", None) or os.environ.get("CHAKONG_COURT", DEFAULT_COURT)
    return gateway_channel(args.gateway, resolve_token(getattr(args, "token", ""), executor_id, court_code, roles))
