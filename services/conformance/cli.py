"""`chakong conform`: run the conformance cases against an agency endpoint; exit 0 conforms, 1 does not, 2 cannot run."""

import argparse
import asyncio
import fnmatch
import sys
import time
from pathlib import Path

from services.conformance import report
from services.conformance.cases import CASES_DIR, KINDS, load_cases
from services.conformance.expressions import CaseError
from services.conformance.runner import CAPABILITIES, Capabilities, KnownFailing, Run
from services.conformance.target import (
    Credentials,
    Target,
    TargetError,
    TargetOptions,
    load_ca,
    load_credentials,
)
from services.security import pki

INTRUDER_ID = "conformance-intruder"


def _intruder_from_ca(directory: Path) -> Credentials | None:
    """Another client of the same CA, minted with the CA key of a development PKI directory."""
    if not (directory / "ca.key").is_file():
        return None
    leaf = pki.load_ca(directory).issue_agency(INTRUDER_ID, days=1)
    return Credentials(leaf.cert_pem(), leaf.key_pem())


def target_options(args: argparse.Namespace) -> TargetOptions:
    if args.plaintext:
        return TargetOptions(args.target, args.agency_id, args.kind)
    directory = Path(args.pki_dir) if args.pki_dir else None
    ca = args.ca or (directory / "ca.crt" if directory else None)
    cert = args.cert or (directory / "gateway-client.crt" if directory else None)
    key = args.key or (directory / "gateway-client.key" if directory else None)
    if not (ca and cert and key):
        raise TargetError("mutual TLS needs --ca, --cert and --key (the gateway's client certificate), or --pki-dir;"
                          " --plaintext for an endpoint without TLS (development only)")
    intruder = None
    if args.intruder_cert or args.intruder_key:
        if not (args.intruder_cert and args.intruder_key):
            raise TargetError("--intruder-cert and --intruder-key go together")
        intruder = load_credentials(args.intruder_cert, args.intruder_key, "intruder")
    elif directory is not None:
        try:
            intruder = _intruder_from_ca(directory)
        except pki.PkiError as exc:
            raise TargetError(str(exc)) from None
    return TargetOptions(args.target, args.agency_id, args.kind, ca=load_ca(ca),
                         gateway=load_credentials(cert, key, "client"), intruder=intruder)


async def run_conform(args: argparse.Namespace) -> int:
    try:
        cases = [c for c in load_cases(args.cases) if args.kind in c.kinds]
        if args.case:
            cases = [c for c in cases if any(fnmatch.fnmatchcase(c.id, p) for p in args.case)]
        if args.list:
            for case in cases:
                print(f"{case.id:<48} {case.title}")
            return 0
        capabilities = Capabilities.load(args.kind, args.capabilities)
        known_failing = KnownFailing.load(args.known_failing)
        options = target_options(args)
    except (CaseError, TargetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not cases:
        print("error: no case matches", file=sys.stderr)
        return 2
    async with Target(options) as target:
        try:
            await asyncio.wait_for(target.channel().channel_ready(), args.connect_timeout)
        except asyncio.TimeoutError:
            print(f"error: cannot connect to {options.address} within {args.connect_timeout:g} s"
                  f" ({'plaintext' if options.plaintext else 'mutual TLS, server name ' + options.agency_id});"
                  " is it running, and does its certificate name the agency?", file=sys.stderr)
            return 2
        started = time.perf_counter()

        def progress(result) -> None:
            if not args.quiet and (args.verbose or result.status != "passed"):
                print(report.line(result), flush=True)

        results = await Run(target, cases, capabilities, known_failing).execute(progress)
        seconds = time.perf_counter() - started
    print(("\n" if not args.quiet else "") + report.summary(options, results, seconds))
    if args.report_json:
        report.write_json(args.report_json, options, results, seconds)
    if args.junit:
        report.write_junit(args.junit, options, results, seconds)
    return 1 if any(r.bad for r in results) else 0


def register(commands: argparse._SubParsersAction) -> None:
    conform = commands.add_parser(
        "conform", help="check an agency endpoint against the contract (any language)",
        description="Drive an agency endpoint through the contract's cases (services/conformance/cases/) and say"
        " whether it conforms. The endpoint must be in test mode (chakong.testing.v1.AgencyTesting). Exit"
        " status: 0 conforms, 1 does not, 2 could not run.",
    )
    conform.add_argument("--target", required=True, help="the agency's gRPC address, host:port")
    conform.add_argument("--agency-id", required=True, help="its agency ID: the name its certificate must carry")
    conform.add_argument("--kind", required=True, choices=KINDS, help="the contract it serves")
    tls = conform.add_argument_group("mutual TLS (as the gateway dials it)")
    tls.add_argument("--pki-dir", help="a `chakong pki` directory: ca.crt and gateway-client.crt/.key; with ca.key"
                     " also an intruder certificate for the identity cases")
    tls.add_argument("--ca", help="the CA certificate the agency's certificate comes from")
    tls.add_argument("--cert", help="a client certificate naming spiffe://chakong/gateway")
    tls.add_argument("--key", help="its private key")
    tls.add_argument("--intruder-cert", help="a client certificate of the same CA naming someone else (must be refused)")
    tls.add_argument("--intruder-key", help="its private key")
    tls.add_argument("--plaintext", action="store_true", help="no TLS (development only; identity cases skipped)")
    conform.add_argument("--cases", default=str(CASES_DIR), help="directory of YAML case files (default: the kit's)")
    conform.add_argument("--case", action="append", metavar="PATTERN", help="run only cases whose id matches"
                         " (fnmatch, repeatable), e.g. 'bank.freeze.*'")
    conform.add_argument("--capabilities", metavar="FILE", help="YAML: kind and the capabilities offered"
                         f" (bank: {', '.join(CAPABILITIES['bank'])}); cases needing others are skipped")
    conform.add_argument("--known-failing", metavar="FILE", help="case id patterns expected to fail, one a line"
                         " ('# why' after it); such failures do not fail the run, and a listed case that passes does")
    conform.add_argument("--report-json", metavar="PATH", help="write the results as JSON")
    conform.add_argument("--junit", metavar="PATH", help="write the results as JUnit XML")
    conform.add_argument("--connect-timeout", type=float, default=10.0, help="seconds (default %(default)s)")
    conform.add_argument("--list", action="store_true", help="list the cases that would run, and exit")
    out = conform.add_mutually_exclusive_group()
    out.add_argument("--verbose", "-v", action="store_true", help="print passing cases too")
    out.add_argument("--quiet", "-q", action="store_true", help="print the summary only")
    conform.set_defaults(run=run_conform)
