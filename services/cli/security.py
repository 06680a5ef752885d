"""`chakong pki|token|audit`: development certificates, executor tokens and audit-chain checks."""

import argparse
import os
import sys
import time
from pathlib import Path

from services.common.settings import SettingsError
from services.common.tls import certificate_names as tls_names
from services.gateway.agencies.registry import load_registry
from services.security import audit, checkpoints, pki, tokens

DEFAULT_PKI_DIR = "var/pki"
SIGNING_KEY_NAME = "token-signing.key"
PUBLIC_KEY_NAME = "token-signing.pub"
DEFAULT_CHECKPOINTS = "var/audit-checkpoints.jsonl"


def _error(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


async def run_pki_init(args: argparse.Namespace) -> int:
    try:
        agency_ids = [a.id for a in load_registry(args.agencies)] if args.agencies else []
        actions = pki.init_pki(args.dir, agency_ids, ca_days=args.ca_days, leaf_days=args.days)
        signing = Path(args.dir) / SIGNING_KEY_NAME
        if not signing.exists():
            tokens.write_signing_key(signing, Path(args.dir) / PUBLIC_KEY_NAME)
            key_action = "created"
        else:
            key_action = "kept"
        checkpoint_action = "created" if checkpoints.ensure_key(args.dir) else "kept"
    except (pki.PkiError, SettingsError, OSError) as exc:
        return _error(str(exc))
    for action in actions:
        print(action)
    print(f"token signing key: {key_action} ({signing})")
    print(f"audit checkpoint key: {checkpoint_action} ({Path(args.dir) / checkpoints.KEY_NAME})")
    return 0


async def run_pki_issue(args: argparse.Namespace) -> int:
    try:
        actions = pki.issue_files(args.dir, agency_id=args.agency, gateway=args.gateway, days=args.days)
    except (pki.PkiError, OSError) as exc:
        return _error(str(exc))
    for action in actions:
        print(action)
    if args.gateway:
        print("send the gateway SIGHUP to serve the new server certificate (no restart);"
              " restart it to dial the agencies with the new client certificate")
    else:
        print("restart the service to load the new certificate")
    return 0


async def run_pki_csr(args: argparse.Namespace) -> int:
    key, csr = Path(args.key_out), Path(args.csr_out)
    if key.exists() and not args.force:
        return _error(f"{key} exists; pass --force to replace the agency's private key")
    try:
        key_pem, csr_pem = pki.agency_csr(args.agency)
        pki.write_private(key, key_pem)
        pki.write_public(csr, csr_pem)
    except (pki.PkiError, OSError) as exc:
        return _error(str(exc))
    print(f"private key: {key} (keep it here; it never leaves this machine)\n"
          f"certificate request: {csr} (send it to the court's CA: `chakong pki sign-csr`)")
    return 0


async def run_pki_sign_csr(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path(args.csr).with_suffix(".crt")
    try:
        ca = pki.load_ca(args.dir)
        leaf = ca.sign_agency_csr(Path(args.csr).read_bytes(), args.agency, extra_dns=args.dns or (), days=args.days)
        pki.write_public(out, leaf.cert_pem())
    except (pki.PkiError, OSError) as exc:
        return _error(str(exc))
    names = tls_names(leaf.certificate)
    print(f"certificate: {out}\n  for agency {args.agency}: {', '.join(names.uris + names.dns_names)}\n"
          f"  valid until {names.not_after:%Y-%m-%d}\n"
          f"give the agency {out} and the CA certificate {pki.PkiLayout(Path(args.dir)).ca.cert} (its TLS_CA)")
    return 0


async def run_token_issue(args: argparse.Namespace) -> int:
    try:
        ttl_s = tokens.parse_ttl(args.ttl)
        signer = tokens.TokenSigner.from_file(args.signing_key, issuer=args.issuer)
        print(signer.issue(args.executor, args.court, args.role or ["executor"], ttl_s=ttl_s))
    except (ValueError, SettingsError) as exc:
        return _error(str(exc))
    return 0


async def run_token_keygen(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    private, public = directory / SIGNING_KEY_NAME, directory / PUBLIC_KEY_NAME
    if private.exists() and not args.force:
        return _error(f"{private} exists; pass --force to replace it (tokens it signed stop verifying "
                      "once the gateway drops its public key)")
    try:
        tokens.write_signing_key(private, public)
    except OSError as exc:
        return _error(f"{private}: {exc.strerror}")
    print(f"token signing key: {private}\npublic key (for the gateway): {public}")
    return 0


async def run_token_verify(args: argparse.Namespace) -> int:
    try:
        verifier = tokens.TokenVerifier.from_files(args.public_key.split(","), issuer=args.issuer)
        principal = verifier.verify(args.token)
    except SettingsError as exc:
        return _error(str(exc))
    except tokens.TokenError as exc:
        return _error(f"token refused ({exc.reason}): {exc}", 1)
    expires = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(principal.expires_at))
    roles = ", ".join(sorted(principal.roles))
    print(f"executor {principal.executor_id}, court {principal.court_code}, roles {roles}, expires {expires}")
    return 0


async def run_audit_verify(args: argparse.Namespace) -> int:
    files = args.checkpoints or [args.default_checkpoints]
    try:
        if not args.checkpoints and not Path(args.default_checkpoints).is_file():
            print(f"note: no checkpoint file at {args.default_checkpoints} (--checkpoints): the chain is checked "
                  "against itself only", file=sys.stderr)
            result = await audit.verify_store(args.store)
        else:
            keys = args.checkpoint_key or [args.default_checkpoint_key]
            result = await checkpoints.verify_anchored(args.store, files, keys)
    except (audit.AuditError, SettingsError) as exc:
        return _error(str(exc))
    print(result)
    return 0 if result.ok else 1


def register(commands: argparse._SubParsersAction) -> None:
    """Add the pki, token and audit commands to `chakong`."""
    pki_dir = os.environ.get("CHAKONG_PKI_DIR", DEFAULT_PKI_DIR)

    pki_cmd = commands.add_parser("pki", help="development CA and service certificates for mutual TLS")
    pki_sub = pki_cmd.add_subparsers(dest="pki_command", required=True)
    init = pki_sub.add_parser(
        "init", help="create the CA (kept if present) and every missing or expired certificate, and the token key"
    )
    init.add_argument("--dir", default=pki_dir, help="PKI directory (env CHAKONG_PKI_DIR; default %(default)s)")
    init.add_argument(
        "--agencies", default=os.environ.get("AGENCY_REGISTRY", "config/agencies.toml"),
        help="agency registry: one certificate per agency (env AGENCY_REGISTRY; default %(default)s)",
    )
    init.add_argument(
        "--days", type=int, default=pki.DEFAULT_LEAF_DAYS, help="certificate validity (default %(default)s)"
    )
    init.add_argument("--ca-days", type=int, default=pki.DEFAULT_CA_DAYS, help="CA validity (default %(default)s)")
    init.set_defaults(run=run_pki_init)

    issue = pki_sub.add_parser("issue", help="issue (rotate) the gateway's certificates or one agency's")
    issue.add_argument("--dir", default=pki_dir, help="PKI directory holding the CA (default %(default)s)")
    who = issue.add_mutually_exclusive_group(required=True)
    who.add_argument("--agency", help="agency ID, as in the registry")
    who.add_argument("--gateway", action="store_true", help="the gateway's server and client certificates")
    issue.add_argument("--days", type=int, default=pki.DEFAULT_LEAF_DAYS, help="validity (default %(default)s)")
    issue.set_defaults(run=run_pki_issue)

    csr = pki_sub.add_parser(
        "csr", help="an agency's private key and certificate request, made where the agency runs (no CA needed)"
    )
    csr.add_argument("--agency", required=True, help="agency ID, as in the registry")
    csr.add_argument("--key-out", required=True, help="where to write the private key (0600)")
    csr.add_argument("--csr-out", required=True, help="where to write the request (PEM)")
    csr.add_argument("--force", action="store_true", help="replace an existing key")
    csr.set_defaults(run=run_pki_csr)

    sign = pki_sub.add_parser(
        "sign-csr", help="issue an agency's certificate for its request; the agency keeps its private key"
    )
    sign.add_argument("--dir", default=pki_dir, help="PKI directory holding the CA (default %(default)s)")
    sign.add_argument("--agency", required=True, help="agency ID the certificate names (URI and DNS)")
    sign.add_argument("--csr", required=True, help="the agency's certificate request (PEM)")
    sign.add_argument("--out", help="where to write the certificate (default: the request's name, .crt)")
    sign.add_argument("--dns", action="append", help="grant another DNS name (the agency's host), repeatable")
    sign.add_argument("--days", type=int, default=pki.DEFAULT_LEAF_DAYS, help="validity (default %(default)s)")
    sign.set_defaults(run=run_pki_sign_csr)

    token_cmd = commands.add_parser("token", help="executor tokens")
    token_sub = token_cmd.add_subparsers(dest="token_command", required=True)
    signing_key = os.environ.get("CHAKONG_TOKEN_SIGNING_KEY", str(Path(pki_dir) / SIGNING_KEY_NAME))
    public_key = os.environ.get("CHAKONG_TOKEN_PUBLIC_KEY", str(Path(pki_dir) / PUBLIC_KEY_NAME))
    issuer = os.environ.get("CHAKONG_TOKEN_ISSUER", tokens.DEFAULT_ISSUER)

    token_issue = token_sub.add_parser("issue", help="print a signed token for an executor")
    token_issue.add_argument("--executor", required=True, help="executor ID, e.g. E0001")
    token_issue.add_argument("--court", required=True, help="court code, e.g. 340100")
    token_issue.add_argument(
        "--role", action="append", choices=sorted(tokens.ROLES), help="repeat for several (default: executor)"
    )
    token_issue.add_argument("--ttl", default="8h", help="lifetime, e.g. 30m, 8h (at most 24h; default %(default)s)")
    token_issue.add_argument(
        "--signing-key", default=signing_key,
        help="Ed25519 private key (env CHAKONG_TOKEN_SIGNING_KEY; default %(default)s)",
    )
    token_issue.add_argument("--issuer", default=issuer, help="iss claim (env CHAKONG_TOKEN_ISSUER)")
    token_issue.set_defaults(run=run_token_issue)

    keygen = token_sub.add_parser("keygen", help="create the token signing key pair")
    keygen.add_argument("--dir", default=pki_dir, help="where to write it (default %(default)s)")
    keygen.add_argument("--force", action="store_true", help="replace an existing key")
    keygen.set_defaults(run=run_token_keygen)

    verify = token_sub.add_parser("verify", help="check a token and print whom it names")
    verify.add_argument("token")
    verify.add_argument(
        "--public-key", default=public_key, help="public key file(s), comma-separated (env CHAKONG_TOKEN_PUBLIC_KEY)"
    )
    verify.add_argument("--issuer", default=issuer)
    verify.set_defaults(run=run_token_verify)

    audit_cmd = commands.add_parser("audit", help="the audit trail")
    audit_sub = audit_cmd.add_subparsers(dest="audit_command", required=True)
    audit_verify = audit_sub.add_parser(
        "verify", help="check the hash chain and the signed checkpoints; exit 1 and name the first bad record"
    )
    audit_verify.add_argument(
        "--store", default=os.environ.get("AUDIT_STORE", "sqlite:///var/audit.db"),
        help="sqlite:///path.db or postgresql://... (env AUDIT_STORE; default %(default)s)",
    )
    default_checkpoints = os.environ.get("AUDIT_CHECKPOINT_FILE", DEFAULT_CHECKPOINTS)
    default_checkpoint_key = os.environ.get(
        "AUDIT_CHECKPOINT_PUBLIC_KEY", str(Path(pki_dir) / checkpoints.PUBLIC_KEY_NAME)
    )
    audit_verify.add_argument(
        "--checkpoints", action="append",
        help="the gateway's checkpoint file; repeat for several gateways (env AUDIT_CHECKPOINT_FILE; default "
             f"{default_checkpoints}, skipped with a note if absent)",
    )
    audit_verify.add_argument(
        "--checkpoint-key", action="append",
        help="the checkpoint key's public half; repeat while rotating (env AUDIT_CHECKPOINT_PUBLIC_KEY; default "
             f"{default_checkpoint_key})",
    )
    audit_verify.set_defaults(
        run=run_audit_verify, default_checkpoints=default_checkpoints, default_checkpoint_key=default_checkpoint_key
    )
