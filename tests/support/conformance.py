"""The conformance kit against real agency processes: agencies in test mode (optionally in a
deliberate fault), over mutual TLS with a development PKI, and the kit run in-process or as `chakong conform`.
"""

import asyncio
import fnmatch
import os
import subprocess
import sys
from pathlib import Path

from services.conformance import cli
from services.conformance.cases import load_cases
from services.conformance.runner import Capabilities, CaseResult, KnownFailing, Run
from services.conformance.target import Target
from services.security import pki
from tests.support.harness import REPO, ServiceProcess

MODULES = {"bank": "services.bank", "vehicle": "services.vehicle", "realestate": "services.realestate"}
AGENCY_IDS = {"bank": "icbc", "vehicle": "hefei-vmo", "realestate": "hefei-rer"}


def make_pki(directory: Path) -> pki.PkiLayout:
    pki.init_pki(directory, list(AGENCY_IDS.values()) + ["node-bank"])
    return pki.PkiLayout(directory)


def test_mode_env(layout: pki.PkiLayout | None, agency_id: str, data_dir: Path, *faults: str) -> dict[str, str]:
    env = {
        "AGENCY_ID": agency_id,
        "AGENCY_TEST_MODE": "1",
        "GRPC_ADDRESS": "127.0.0.1:0",
        "METRICS_ADDRESS": "127.0.0.1:0",
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "WARNING",
        "AGENCY_DELIBERATE_FAULTS": ",".join(faults),
    }
    if layout is None:
        env["INSECURE_PLAINTEXT"] = "1"
    else:
        files = layout.agency(agency_id)
        env.update(TLS_CERT=str(files.cert), TLS_KEY=str(files.key), TLS_CA=str(layout.ca.cert))
    return env


def start_in_test_mode(kind: str, layout: pki.PkiLayout | None, data_dir: Path, *faults: str) -> ServiceProcess:
    return ServiceProcess(MODULES[kind], test_mode_env(layout, AGENCY_IDS[kind], data_dir, *faults)).start()


def conform_args(kind: str, address: str, layout: pki.PkiLayout | None, agency_id: str | None = None) -> list[str]:
    args = ["--target", address, "--agency-id", agency_id or AGENCY_IDS[kind], "--kind", kind]
    return args + (["--plaintext"] if layout is None else ["--pki-dir", str(layout.directory)])


def run_kit(kind: str, address: str, layout: pki.PkiLayout | None, *patterns: str,
            agency_id: str | None = None) -> list[CaseResult]:
    """The kit in-process, as `chakong conform` runs it; only cases matching `patterns` when given."""
    args = cli_parser().parse_args(["conform", *conform_args(kind, address, layout, agency_id)])
    cases = [c for c in load_cases() if kind in c.kinds and (not patterns or any(
        fnmatch.fnmatchcase(c.id, p) for p in patterns))]

    async def run() -> list[CaseResult]:
        async with Target(cli.target_options(args)) as target:
            return await Run(target, cases, Capabilities.load(kind, None), KnownFailing()).execute()

    return asyncio.run(run())


def cli_parser():
    from services.cli.main import parser

    return parser()


def chakong(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli.main", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ})


def failing(results: list[CaseResult]) -> dict[str, str]:
    return {r.case.id: r.message for r in results if r.bad}
