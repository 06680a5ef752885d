"""`make run`'s launcher and the `chakong` CLI, as a person would use them."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from services import datagen
from services.cli.auth import fill_identity
from services.cli.main import parser
from services.security import pki
from services.security.tokens import TokenSigner, write_signing_key
from tests.support.harness import REPO, ServiceProcess

CASE = "(2026)皖01执1024号"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chakong(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args], cwd=REPO, capture_output=True, text=True, timeout=30,
        env={**os.environ, **env},
    )


def signing_key(banner: str) -> str:
    """The launcher's token signing key, as its Try line names it."""
    return re.search(r"--signing-key (\S+?)\)", banner).group(1)


def external_bank(workdir, port: int) -> ServiceProcess:
    """An agency that runs on its own, as an outside bank would: its own key, a certificate signed from its request."""
    directory = workdir / "data" / "pki"
    pki.init_pki(directory, [])
    key_pem, csr_pem = pki.agency_csr("extbank")
    (workdir / "extbank.key").write_bytes(key_pem)
    (workdir / "extbank.crt").write_bytes(pki.load_ca(directory).sign_agency_csr(csr_pem, "extbank").cert_pem())
    return ServiceProcess("services.bank", {
        "AGENCY_ID": "extbank", "AGENCY_NAME": "外部银行", "GRPC_ADDRESS": f"127.0.0.1:{port}",
        "METRICS_ADDRESS": "127.0.0.1:0", "DATA_DIR": str(workdir / "extbank-data"), "SEED": "42", "SUBJECTS": "400",
        "TLS_CERT": str(workdir / "extbank.crt"), "TLS_KEY": str(workdir / "extbank.key"),
        "TLS_CA": str(directory / "ca.crt"),
    }).start()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The launcher running a bank, a vehicle and a real-estate registry, and an external bank it did not start."""
    workdir = tmp_path_factory.mktemp("stack")
    external_port = free_port()
    external = external_bank(workdir, external_port)
    registry = workdir / "agencies.toml"
    registry.write_text(
        f'[[agency]]\nid = "icbc"\nkind = "bank"\nname = "中国工商银行"\naddress = "127.0.0.1:{free_port()}"\n'
        f'timeout_ms = 1500\nprofile = "bank"\n\n'
        f'[[agency]]\nid = "hefei-vmo"\nkind = "vehicle"\nname = "车管所"\naddress = "127.0.0.1:{free_port()}"\n'
        f"timeout_ms = 1500\n\n"
        f'[[agency]]\nid = "hefei-rer"\nkind = "realestate"\nname = "不动产登记中心"\n'
        f'address = "127.0.0.1:{free_port()}"\ntimeout_ms = 1500\n\n'
        f'[[agency]]\nid = "extbank"\nkind = "bank"\nname = "外部银行"\naddress = "127.0.0.1:{external_port}"\n'
        f"timeout_ms = 1500\nexternal = true\n"
    )
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "AGENCY_REGISTRY": str(registry),
        "DATA_DIR": str(workdir / "data"),
        "SUBJECTS": "400",
        "GATEWAY_GRPC_ADDRESS": f"127.0.0.1:{free_port()}",
        "GATEWAY_HTTP_ADDRESS": "127.0.0.1:0",
        "CONSOLE_HTTP_ADDRESS": "127.0.0.1:0",
        "FIRST_METRICS_PORT": "0",
    }
    # The launcher prints no READY line of its own: wait for its prompt.
    launcher = subprocess.Popen(
        [sys.executable, "-m", "services.launcher"], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output: list[str] = []
    deadline = time.monotonic() + 60
    for line in launcher.stdout:
        output.append(line)
        if "Press Ctrl-C" in line or time.monotonic() > deadline:
            break
    assert any("Press Ctrl-C" in line for line in output), "".join(output)
    # Read on, so the launcher never blocks on a full pipe while the tests run.
    later: list[str] = []
    reader = threading.Thread(target=lambda: later.extend(launcher.stdout), daemon=True)
    reader.start()
    yield launcher, "".join(output)
    launcher.send_signal(signal.SIGINT)
    assert launcher.wait(30) == 0, "".join(later)
    reader.join(10)
    launcher.stdout.close()
    rest = "".join(later)
    assert "Stopped." in rest
    # The launcher stopped what it started, not the agency that runs on its own.
    assert external.proc.poll() is None
    external.stop()


def gateway_address(banner: str) -> str:
    line = next(line for line in banner.splitlines() if line.strip().startswith("gateway gRPC"))
    return line.split()[2]


def at_gateway(banner: str) -> tuple[str, ...]:
    """The CLI's options to reach the launcher's gateway: its address, and the CA its TLS certificate comes from."""
    return "--gateway", gateway_address(banner), "--ca", re.search(r"\(TLS, CA (\S+);", banner).group(1)


def test_launcher_prints_endpoints_and_debtors_with_assets(stack):
    _, banner = stack
    assert "chakong is up." in banner
    for agency_id in ("icbc", "hefei-vmo", "hefei-rer"):
        assert agency_id in banner
    assert re.search(r"extbank +bank +127\.0\.0\.1:\d+ +external, health SERVING", banner), banner
    assert "1 external: extbank" in banner
    assert re.search(r"Web console: http://127\.0\.0\.1:\d+/console ", banner), banner
    population = datagen.subjects(42, 400)
    showcased = datagen.showcase(population, 1)[0]
    assert showcased.id_number in banner


def test_cli_query_prints_every_agency(stack):
    _, banner = stack
    debtor = datagen.showcase(datagen.subjects(42, 400), 1)[0]
    # As the issue's "Done when" says: a token from `chakong token issue`, over the mutual-TLS stack.
    issued = chakong("token", "issue", "--executor", "E0001", "--court", "340100", "--signing-key", signing_key(banner))
    assert issued.returncode == 0, issued.stderr
    result = chakong(
        *at_gateway(banner), "--token", issued.stdout.strip(),
        "query", "--subject", debtor.id_number, "--case", CASE,
    )
    assert result.returncode == 0, result.stderr
    for agency_id in ("icbc", "hefei-vmo", "hefei-rer", "extbank"):
        assert agency_id in result.stdout
    # The external agency answers through the gateway like the mocks.
    assert result.stdout.count(" OK ") == 4
    assert "4/4 agencies OK, complete" in result.stdout


def test_cli_query_json_is_the_aggregate(stack):
    _, banner = stack
    debtor = datagen.showcase(datagen.subjects(42, 400), 1)[0]
    result = chakong(
        *at_gateway(banner), "query", "--subject", debtor.id_number, "--case", CASE, "--json",
        # The development fallback: the CLI signs its own short-lived token.
        CHAKONG_TOKEN_SIGNING_KEY=signing_key(banner),
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["complete"] is True
    assert {r["agency_id"] for r in answer["results"]} == {"icbc", "hefei-vmo", "hefei-rer", "extbank"}
    assert int(answer["summary"]["property_count"]) >= 1


def test_a_newcomer_runs_one_click_enforcement_on_the_demo_case(stack):
    """The issue's "Done when": dry run, execute, approve as a second officer, see the case triaged."""
    _, banner = stack
    assert f"enforce --case '{CASE}' --dry-run" in banner
    key = {"CHAKONG_TOKEN_SIGNING_KEY": signing_key(banner)}
    gateway = at_gateway(banner)
    dry = chakong(*gateway, "enforce", "--case", CASE, "--dry-run", **key)
    assert dry.returncode == 0, dry.stderr
    assert "(dry run: nothing acted on)" in dry.stdout and "Execute it: chakong enforce" in dry.stdout
    plan_id = re.search(r"--plan (pl-[0-9a-f]{24})", dry.stdout).group(1)

    executed = chakong(*gateway, "enforce", "--case", CASE, "--plan", plan_id, **key)
    assert executed.returncode == 0, executed.stderr
    # The demo case owes ¥500,000: above the court's ¥50,000 threshold, the deduction waits for an approver.
    assert "待审批 WAITING_APPROVAL" in executed.stdout, executed.stdout
    approval_id = re.search(r"approvals approve (ap-[0-9a-f]{24})", executed.stdout).group(1)
    listed = chakong(*gateway, "approvals", "list", "--executor", "AP0001", **key)
    assert listed.returncode == 0 and approval_id in listed.stdout, listed.stderr
    own = chakong(*gateway, "approvals", "approve", approval_id, "--reason", "我自己", "--executor", "E0001", **key)
    assert own.returncode == 2 and "PERMISSION_DENIED" in own.stderr
    approved = chakong(*gateway, "approvals", "approve", approval_id, "--reason", "核实无误", "--executor", "AP0001",
                       **key)
    assert approved.returncode == 0, approved.stderr
    assert "已结清 SETTLED" in approved.stdout, approved.stdout

    shown = chakong(*gateway, "case", "show", "--case", CASE, **key)
    assert shown.returncode == 0, shown.stderr
    assert plan_id in shown.stdout and "已结清 SETTLED" in shown.stdout


def test_cli_rejects_a_bad_id_with_the_field_named(stack):
    _, banner = stack
    result = chakong(
        *at_gateway(banner), "query", "--subject", "340104199003071230", "--case", CASE,
        CHAKONG_TOKEN_SIGNING_KEY=signing_key(banner),
    )
    assert result.returncode == 2
    assert "INVALID_ARGUMENT" in result.stderr and "subject.id_number" in result.stderr


def test_cli_says_when_the_gateway_is_down():
    result = chakong("--gateway", f"127.0.0.1:{free_port()}", "query", "--subject", "340104199003071235",
                     "--case", CASE)
    assert result.returncode == 1
    assert "cannot reach the gateway" in result.stderr


def test_cli_takes_court_and_executor_from_the_token(tmp_path, monkeypatch):
    write_signing_key(tmp_path / "key", tmp_path / "key.pub")
    token = TokenSigner.from_file(tmp_path / "key").issue("E0900", "340200", ("executor",), ttl_s=60)

    def identity(*argv: str) -> tuple[str, str]:
        args = parser().parse_args(list(argv))
        fill_identity(args)
        return args.court, args.executor

    freeze = ("freeze", "--case", CASE, "--agency", "icbc", "--subject", "340104198811230027",
              "--account", "6222", "--amount-fen", "100")
    # A court-340200 token needs no --court 340200 --executor E0900 as well.
    assert identity("--token", token, *freeze) == ("340200", "E0900")
    assert identity("--token", token, "query", "--subject", "340104198811230027", "--case", CASE) == ("340200", "E0900")
    # What is given wins; without a token, the environment or the defaults.
    assert identity("--token", token, *freeze, "--court", "340100") == ("340100", "E0900")
    monkeypatch.delenv("CHAKONG_COURT", raising=False)
    monkeypatch.delenv("CHAKONG_EXECUTOR", raising=False)
    assert identity("--token", "", *freeze) == ("340100", "E0001")
    assert identity("--token", "not-a-jwt", *freeze) == ("340100", "E0001")


def child_pid(parent: int, module: str) -> int:
    """The pid of the launcher's child running `python -m module`."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(fields[1]) == parent and module.encode() in cmdline:
            return int(stat.parent.name)
    raise LookupError(f"no child {module} of {parent}")


def test_a_dead_agency_is_started_again_and_the_gateway_carries_on(stack):
    launcher, banner = stack
    debtor = datagen.showcase(datagen.subjects(42, 400), 1)[0]
    key = signing_key(banner)

    def statuses() -> dict[str, str]:
        result = chakong(*at_gateway(banner), "query", "--subject", debtor.id_number,
                         "--case", CASE, "--json", CHAKONG_TOKEN_SIGNING_KEY=key)
        assert result.returncode == 0, result.stderr
        return {r["agency_id"]: r["status"] for r in json.loads(result.stdout)["results"]}

    dead = child_pid(launcher.pid, "services.vehicle")
    os.kill(dead, signal.SIGKILL)
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = statuses()
        seen.append(now["hefei-vmo"])
        # The rest of the stack answers all along.
        assert now["icbc"] == now["hefei-rer"] == "AGENCY_STATUS_OK", now
        if now["hefei-vmo"] == "AGENCY_STATUS_OK" and len(seen) > 1:
            break
        time.sleep(0.5)
    assert seen[0] != "AGENCY_STATUS_OK" and seen[-1] == "AGENCY_STATUS_OK", seen
    assert child_pid(launcher.pid, "services.vehicle") != dead
    assert launcher.poll() is None
