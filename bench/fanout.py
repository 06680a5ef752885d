"""Gateway fan-out against direct fan-out, measured in one run on the same agencies.

For each agency count N, starts N mock banks and one gateway as real
processes on loopback, then sends the same workload three ways:
  direct        this process calls the N agencies itself, in parallel
  gateway-grpc  one AssetGateway.QueryAssets call per query
  gateway-http  one POST /v1/queries per query
Latency (p50/p99) is measured one query at a time, the modes taking turns
query by query; throughput (queries per second) with --concurrency queries
in flight, the modes alternating over --rounds rounds, so drift on a noisy
machine hits all of them alike.
The last line printed is one JSON object with every figure.

    .venv/bin/python bench/fanout.py                 # N = 5 and 20
    .venv/bin/python bench/fanout.py --agencies 20 --seconds 5
    .venv/bin/python bench/fanout.py --client-loop uvloop   # baseline on the services' loop
    .venv/bin/python bench/fanout.py --mock-host --agencies 1000   # every bank in one mock host process

--mock-host serves the N banks from one services.mockhost process (one
port each, answers made once, the lowest cost per call a Python agency
has) instead of N services.bank processes: 100 bank processes saturate
two cores by themselves. Each mode's throughput phase also measures CPU
time: the gateway process's in the gateway modes, this process's in
direct (a bare grpc.aio client making the same calls), each divided by
the agency calls made, and the gateway's RSS and open file descriptors.

A/B of two commits' gateways: --compare-checkout DIR, DIR another checkout
of this repository (say `git worktree add /work/ab-old <old commit>`),
starts a second gateway from DIR's code (cwd DIR and DIR first on
PYTHONPATH, so neither this checkout nor an editable install wins; checked
before the run, the file it imports is printed) on the same agencies with
the same settings (registry, token key, plaintext, rate limits) and its own
data directory (ledger, audit trail). The gateway of this checkout is the
"new" one. Two more modes take turns with the others in both phases:
  baseline-grpc  QueryAssets on DIR's gateway
  baseline-http  POST /v1/queries on DIR's gateway
The table labels the gateway modes with their short commits ("+dirty" if
services/ or protos/ differ from it) and adds baseline/direct and
new/baseline lines; the JSON adds new_vs_baseline_throughput_ratio_{grpc,http}
(new qps / baseline qps), new_vs_baseline_p50_diff_ms_{grpc,http} (new p50 -
baseline p50), the baseline's own ratios against direct, both commits and
the imported files. The gateway and baseline modes swap places every other
turn (latency) and, each round, run in both orders (throughput, blocks of
half the time), so neither always runs right after the other.

    git worktree add /work/ab-old <old commit>
    .venv/bin/python bench/fanout.py --agencies 20 --compare-checkout /work/ab-old

Every gateway listens in plaintext (INSECURE_PLAINTEXT=1) unless --tls: then
this checkout's gateway serves TLS on its own ports (INSECURE_PLAINTEXT=agencies,
a development CA made for the run; the agency links stay plaintext) and the
bench's clients dial it over TLS, trusting that CA. The cost of TLS on the
client hop, in one run: `--tls --compare-checkout .` (the baseline, this same
checkout, stays on plaintext ports).
"""

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import grpc

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from protos.bank.v1 import bank_pb2, bank_pb2_grpc  # noqa: E402
from protos.common.v1 import common_pb2  # noqa: E402
from protos.gateway.v1 import control_pb2, control_pb2_grpc, gateway_pb2, gateway_pb2_grpc  # noqa: E402
from services import datagen  # noqa: E402
from services.cli.auth import gateway_channel as gateway_channel_for  # noqa: E402
from services.common.tls import gateway_client_context, gateway_client_credentials  # noqa: E402
from services.gateway.agencies.registry import load_registry  # noqa: E402
from services.security import pki  # noqa: E402
from services.security.tokens import TokenSigner, write_signing_key  # noqa: E402
from tests.support.harness import ServiceProcess  # noqa: E402

SEED = 7
SUBJECTS = 2000
CASE = common_pb2.CaseRef(
    case_number="(2026)皖01执1号", court_code="340100", executor_id="BENCH", document_number="(2026)皖01执1号"
)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_seconds(pid: int | None = None) -> float:
    """User plus system CPU time of a process (this one by default), from /proc."""
    fields = Path(f"/proc/{pid or 'self'}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def footprint(pid: int) -> dict[str, float]:
    """A process's resident memory (MB), open file descriptors and threads."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {
        "rss_mb": round(int(status["VmRSS"].split()[0]) / 1024, 1),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": int(status["Threads"]),
    }


def checkout_commit(checkout: Path) -> str:
    """The checkout's short commit, "+dirty" if tracked files of the code a gateway
    runs (services/, protos/) differ from it."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(checkout), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "services", "protos")
    return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")


def checkout_env(checkout: Path) -> dict[str, str]:
    """Environment that makes `python -m services.gateway` import the checkout's code."""
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(checkout), os.environ.get("PYTHONPATH")]))}


def gateway_source(cwd: Path, env: dict[str, str]) -> Path:
    """The services/gateway/__init__.py a gateway started in `cwd` with `env` imports:
    the same interpreter, directory and environment as ServiceProcess gives it."""
    found = subprocess.run(
        [sys.executable, "-c", "import services.gateway as g; print(g.__file__)"],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(found.stdout.strip()).resolve()


class Stack:
    """N mock banks and a gateway, each its own process; with `baseline_checkout`
    a second gateway from that checkout's code on the same agencies."""

    def __init__(self, n: int, workdir: Path, baseline_checkout: Path | None = None, tls: bool = False, *,
                 mock_host: bool = False, gateway_env: dict[str, str] | None = None):
        self.n, self.workdir = n, workdir
        self.baseline_checkout = baseline_checkout
        self.mock_host = mock_host
        self.extra_gateway_env = gateway_env or {}
        # This checkout's gateway on TLS ports, with the run's own CA; the baseline stays plaintext.
        self.pki = pki.PkiLayout(workdir / "pki") if tls else None
        if self.pki is not None:
            pki.init_pki(self.pki.directory, [])
        self.agencies: list[ServiceProcess] = []
        # Where the N banks listen, in registry order.
        self.addresses: list[str] = []
        self.gateway: ServiceProcess | None = None
        self.baseline: ServiceProcess | None = None
        self.token_key = workdir / "token-signing.key"
        if not self.token_key.is_file():
            write_signing_key(self.token_key, self.token_key.with_suffix(".pub"))

    def start(self) -> None:
        registry = self.workdir / f"agencies-{self.n}.toml"
        if self.mock_host:
            self.agencies.append(ServiceProcess("services.mockhost", {
                "MOCK_AGENCIES": str(self.n), "MOCK_REGISTRY": str(registry), "SEED": str(SEED),
                "SUBJECTS": str(SUBJECTS), "LOG_LEVEL": "WARNING", "INSECURE_PLAINTEXT": "1",
            }, ready_timeout=120).start())
        for i in range(0 if self.mock_host else self.n):
            self.agencies.append(
                ServiceProcess(
                    "services.bank",
                    {
                        "AGENCY_ID": f"bank{i:02d}",
                        "AGENCY_NAME": f"Bench bank {i}",
                        "GRPC_ADDRESS": "127.0.0.1:0",
                        "METRICS_ADDRESS": "127.0.0.1:0",
                        "DATA_DIR": str(self.workdir),
                        "SEED": str(SEED),
                        "SUBJECTS": str(SUBJECTS),
                        "LOG_LEVEL": "WARNING",
                        # Measures fan-out, not TLS: plaintext, deliberately.
                        "INSECURE_PLAINTEXT": "1",
                    },
                    ready_timeout=120,
                ).start()
            )
        if not self.mock_host:
            registry.write_text(
                "".join(
                    f'[[agency]]\nid = "bank{i:02d}"\nkind = "bank"\nname = "Bench bank {i}"\n'
                    f'address = "{a.endpoints["grpc"]}"\ntimeout_ms = 2000\n\n'
                    for i, a in enumerate(self.agencies)
                )
            )
        self.addresses = [config.address for config in load_registry(registry)]
        tls_env = {}
        if self.pki is not None:
            server = self.pki.gateway_server
            tls_env = {"INSECURE_PLAINTEXT": "agencies", "GATEWAY_TLS_CERT": str(server.cert),
                       "GATEWAY_TLS_KEY": str(server.key), "GATEWAY_TLS_CA": str(self.pki.ca.cert)}
        env = {**self.gateway_env(registry, self.workdir), **tls_env}
        self.gateway = ServiceProcess("services.gateway", env).start()
        if self.baseline_checkout:
            # Same registry, token key, plaintext and limits; its own ledger and
            # audit trail; the checkout's code (cwd and PYTHONPATH).
            data_dir = self.workdir / "baseline-gateway"
            data_dir.mkdir(exist_ok=True)
            self.baseline = ServiceProcess(
                "services.gateway",
                {**self.gateway_env(registry, data_dir), **checkout_env(self.baseline_checkout)},
                cwd=self.baseline_checkout,
            ).start()

    def gateway_env(self, registry: Path, data_dir: Path) -> dict[str, str]:
        return {
            "AGENCY_REGISTRY": str(registry),
            # Ledger and audit trail in the bench's own directory, never var/.
            "DATA_DIR": str(data_dir),
            "GATEWAY_GRPC_ADDRESS": "127.0.0.1:0",
            "GATEWAY_HTTP_ADDRESS": "127.0.0.1:0",
            "LOG_LEVEL": "WARNING",
            "INSECURE_PLAINTEXT": "1",
            "CHAKONG_TOKEN_PUBLIC_KEY": str(self.token_key.with_suffix(".pub")),
            # The bench asks as fast as it can: no rate limit in its way.
            "RATE_LIMIT_EXECUTOR_PER_MINUTE": "1000000",
            "RATE_LIMIT_EXECUTOR_BURST": "1000000",
            "RATE_LIMIT_COURT_PER_MINUTE": "10000000",
            "RATE_LIMIT_COURT_BURST": "1000000",
            **self.extra_gateway_env,
        }

    def stop(self) -> None:
        for process in [self.baseline, self.gateway, *self.agencies]:
            if process:
                process.stop()


class Workload:
    """The same queries for every mode: subjects that hold accounts, and some that don't."""

    def __init__(self):
        population = datagen.subjects(SEED, SUBJECTS)
        self.subjects = [
            common_pb2.Subject(type=s.subject_type, id_number=s.id_number, name=s.name) for s in population[:500]
        ]
        self.rng = random.Random(1)

    def next_subject(self) -> common_pb2.Subject:
        return self.rng.choice(self.subjects)


async def direct_query(stubs, subject) -> None:
    request = bank_pb2.QueryAccountsRequest(case=CASE, subject=subject)
    await asyncio.gather(*(stub.QueryAccounts(request, timeout=2) for stub in stubs))


async def run_mode(query, workload: Workload, seconds: float, concurrency: int) -> list[float]:
    """Latencies (s) of queries completed in `seconds` with `concurrency` in flight."""
    latencies: list[float] = []
    end = time.perf_counter() + seconds

    async def worker():
        while time.perf_counter() < end:
            start = time.perf_counter()
            await query(workload.next_subject())
            latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def interleaved_latency(
    modes: dict, workload: Workload, seconds: float, latency: dict, orders: list[list[str]]
) -> None:
    """One query at a time, the modes taking turns query by query: whatever
    the machine does meanwhile slows every mode alike, so their p50s compare.
    Turn t runs the modes in orders[t % len(orders)]."""
    end = time.perf_counter() + seconds
    turn = 0
    while time.perf_counter() < end:
        subject = workload.next_subject()
        for name in orders[turn % len(orders)]:
            start = time.perf_counter()
            await modes[name](subject)
            latency[name].append(time.perf_counter() - start)
        turn += 1


def credentials(gateway: ServiceProcess, stack: "Stack"):
    """TLS trusting the run's CA for a gateway that announced https; None (plaintext) for the others."""
    return gateway_client_credentials(stack.pki.ca.cert) if gateway.endpoints.get("scheme") == "https" else None


async def register_case(gateway: ServiceProcess, stack: "Stack", signer: TokenSigner, workload: Workload) -> None:
    """Queries need a registered case naming the subjects as debtors, asked by an assigned executor."""
    admin = gateway_channel_for(gateway.endpoints["grpc"], signer.issue("ADMIN", CASE.court_code, ("admin",)),
                                credentials(gateway, stack))
    async with admin:
        await control_pb2_grpc.EnforcementControlStub(admin).RegisterCase(
            control_pb2.RegisterCaseRequest(
                case=CASE, debtors=workload.subjects, amount_owed_fen=1_000_000, executor_ids=[CASE.executor_id]
            ),
            timeout=10,
        )


class GatewayClient:
    """One gateway's two APIs, the executor token on every call."""

    def __init__(self, gateway: ServiceProcess, stack: "Stack", token: str, concurrency: int):
        # Metadata on each call, not a client interceptor: grpc.aio's interceptors
        # cost the client more than the gateway's whole overhead.
        self.auth_metadata = (("authorization", f"Bearer {token}"),)
        tls = credentials(gateway, stack)
        address = gateway.endpoints["grpc"]
        self.channel = grpc.aio.insecure_channel(address) if tls is None else grpc.aio.secure_channel(address, tls)
        self.stub = gateway_pb2_grpc.AssetGatewayStub(self.channel)
        scheme = "http" if tls is None else "https"
        self.http_url = f"{scheme}://{gateway.endpoints['http']}/v1/queries"
        context = True if tls is None else gateway_client_context(stack.pki.ca.cert)
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency * 2, ssl=context),
            headers={"Authorization": f"Bearer {token}"},
        )

    async def grpc(self, subject) -> None:
        response = await self.stub.QueryAssets(
            gateway_pb2.AssetQueryRequest(case=CASE, subject=subject), timeout=5, metadata=self.auth_metadata
        )
        if not response.complete:
            raise RuntimeError(f"partial answer: {response}")

    async def http_query(self, subject) -> None:
        body = {"case": {"case_number": CASE.case_number, "court_code": CASE.court_code,
                         "executor_id": CASE.executor_id, "document_number": CASE.document_number},
                "subject": {"type": common_pb2.SubjectType.Name(subject.type), "id_number": subject.id_number,
                            "name": subject.name}}
        async with self.http.post(self.http_url, json=body) as reply:
            data = await reply.json()
            if reply.status != 200 or not data.get("complete"):
                raise RuntimeError(f"HTTP {reply.status}: {data}")

    async def close(self) -> None:
        await self.http.close()
        await self.channel.close()


async def measure(stack: Stack, seconds: float, concurrency: int, rounds: int) -> dict:
    workload = Workload()
    channels = [grpc.aio.insecure_channel(address) for address in stack.addresses]
    bank_stubs = [bank_pb2_grpc.BankStub(c) for c in channels]
    signer = TokenSigner.from_file(stack.token_key)
    gateways = {"gateway": stack.gateway, **({"baseline": stack.baseline} if stack.baseline else {})}
    for gateway in gateways.values():  # each its own ledger
        await register_case(gateway, stack, signer, workload)
    token = signer.issue(CASE.executor_id, CASE.court_code, ("executor",))
    clients = {name: GatewayClient(gateway, stack, token, concurrency) for name, gateway in gateways.items()}

    modes = {"direct": lambda s: direct_query(bank_stubs, s)}
    for name, client in clients.items():
        modes |= {f"{name}_grpc": client.grpc, f"{name}_http": client.http_query}
    if stack.baseline:
        # Gateway and baseline swap places every other turn (latency) and every
        # other block (throughput): each of their modes follows direct or the
        # other gateway, equally often, never its own gateway.
        orders = [["direct", "gateway_grpc", "baseline_grpc", "gateway_http", "baseline_http"],
                  ["direct", "baseline_grpc", "gateway_grpc", "baseline_http", "gateway_http"]]
    else:
        orders = [list(modes)]
    latency = {m: [] for m in modes}
    completed = {m: 0 for m in modes}
    elapsed = {m: 0.0 for m in modes}
    # Whose CPU a mode costs: the bench's own for direct (the bare client), each gateway's for its modes.
    pids = {m: (None if m == "direct" else gateways[m.rpartition("_")[0]].proc.pid) for m in modes}
    cpu = {m: 0.0 for m in modes}
    try:
        for query in modes.values():  # warm channels and caches
            await run_mode(query, workload, 0.5, concurrency)
        for _ in range(rounds):
            await interleaved_latency(modes, workload, seconds / 2 * len(modes), latency, orders)
            block = seconds / 2 / len(orders)
            for order in orders:  # every order in every round
                for name in order:
                    start, cpu_start = time.perf_counter(), cpu_seconds(pids[name])
                    completed[name] += len(await run_mode(modes[name], workload, block, concurrency))
                    elapsed[name] += time.perf_counter() - start
                    cpu[name] += cpu_seconds(pids[name]) - cpu_start
        sizes = {name: footprint(gateway.proc.pid) for name, gateway in gateways.items()}
    finally:
        for client in clients.values():
            await client.close()
        for channel in channels:
            await channel.close()

    figures = {
        name: {
            "p50_ms": round(percentile(latency[name], 0.50) * 1000, 3),
            "p99_ms": round(percentile(latency[name], 0.99) * 1000, 3),
            "qps": round(completed[name] / elapsed[name], 1),
            "latency_samples": len(latency[name]),
            "cpu_us_per_agency_call": round(cpu[name] / max(1, completed[name] * stack.n) * 1e6, 1),
        }
        for name in modes
    }
    figures["gateway_footprint"] = sizes["gateway"]
    for api in ("grpc", "http"):
        gateway = figures[f"gateway_{api}"]
        figures[f"throughput_ratio_{api}"] = round(gateway["qps"] / figures["direct"]["qps"], 3)
        figures[f"overhead_p50_ms_{api}"] = round(gateway["p50_ms"] - figures["direct"]["p50_ms"], 3)
        figures[f"latency_ratio_p50_{api}"] = round(gateway["p50_ms"] / figures["direct"]["p50_ms"], 3)
        figures[f"cpu_ratio_{api}"] = round(
            gateway["cpu_us_per_agency_call"] / max(0.1, figures["direct"]["cpu_us_per_agency_call"]), 3)
    if stack.baseline:
        for api in ("grpc", "http"):
            gateway, baseline = figures[f"gateway_{api}"], figures[f"baseline_{api}"]
            figures[f"throughput_ratio_baseline_{api}"] = round(baseline["qps"] / figures["direct"]["qps"], 3)
            figures[f"overhead_p50_ms_baseline_{api}"] = round(baseline["p50_ms"] - figures["direct"]["p50_ms"], 3)
            figures[f"new_vs_baseline_throughput_ratio_{api}"] = round(gateway["qps"] / baseline["qps"], 3)
            figures[f"new_vs_baseline_p50_diff_ms_{api}"] = round(gateway["p50_ms"] - baseline["p50_ms"], 3)
    return figures


def print_table(n: int, figures: dict, commits: dict[str, str] | None = None) -> None:
    """`commits` ({"gateway": ..., "baseline": ...}) when comparing two checkouts."""
    modes = ["direct", "gateway_grpc", "gateway_http"]
    labels = {mode: mode for mode in modes}
    if commits:
        modes += ["baseline_grpc", "baseline_http"]
        labels = {mode: mode if mode == "direct" else f"{mode} @{commits[mode.split('_')[0]]}" for mode in modes}
        print(f"\n{n} agencies (new gateway {commits['gateway']}, baseline gateway {commits['baseline']})")
    else:
        print(f"\n{n} agencies")
    width = max(14, max(len(label) for label in labels.values()) + 2)
    print(f"  {'mode':<{width}}{'p50 ms':>10}{'p99 ms':>10}{'qps':>10}{'CPU us/call':>13}")
    for mode in modes:
        f = figures[mode]
        print(f"  {labels[mode]:<{width}}{f['p50_ms']:>10.2f}{f['p99_ms']:>10.2f}{f['qps']:>10.1f}"
              f"{f['cpu_us_per_agency_call']:>13.1f}")
    for api in ("grpc", "http"):
        print(f"  gateway/direct ({api}): throughput x{figures[f'throughput_ratio_{api}']:.2f},"
              f" p50 x{figures[f'latency_ratio_p50_{api}']:.2f} ({figures[f'overhead_p50_ms_{api}']:+.2f} ms),"
              f" CPU per agency call x{figures[f'cpu_ratio_{api}']:.2f}")
    size = figures["gateway_footprint"]
    print(f"  gateway: RSS {size['rss_mb']:.1f} MB, {size['fds']} fds, {size['threads']} threads")
    if commits:
        for api in ("grpc", "http"):
            print(f"  baseline/direct ({api}): throughput x{figures[f'throughput_ratio_baseline_{api}']:.2f},"
                  f" p50 overhead {figures[f'overhead_p50_ms_baseline_{api}']:+.2f} ms")
        for api in ("grpc", "http"):
            print(f"  new {commits['gateway']} / baseline {commits['baseline']} ({api}):"
                  f" throughput x{figures[f'new_vs_baseline_throughput_ratio_{api}']:.3f},"
                  f" p50 {figures[f'new_vs_baseline_p50_diff_ms_{api}']:+.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agencies", type=int, action="append", help="agency count (repeatable; default 5 and 20)")
    parser.add_argument("--seconds", type=float, default=4.0, help="measuring time per mode and round")
    parser.add_argument("--concurrency", type=int, help="queries in flight in the throughput phase"
                        " (default 8, fewer from 250 agencies up: at most 2,000 agency calls in flight)")
    parser.add_argument("--mock-host", action="store_true",
                        help="serve the banks from one services.mockhost process instead of one process each")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--client-loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="this process's event loop, so the direct fan-out's baseline (the services always run uvloop)",
    )
    parser.add_argument(
        "--compare-checkout",
        type=Path,
        metavar="DIR",
        help="another checkout of this repository: a second gateway from its code on the same agencies,"
        " modes baseline_grpc and baseline_http, new/baseline figures",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="this checkout's gateway serves TLS on its ports (the baseline stays plaintext): with"
        " --compare-checkout ., the cost of TLS on the client hop",
    )
    args = parser.parse_args()
    if args.compare_checkout:
        args.compare_checkout = args.compare_checkout.resolve()
        if not (args.compare_checkout / "services" / "gateway" / "__main__.py").is_file():
            parser.error(f"--compare-checkout {args.compare_checkout}: no services/gateway/__main__.py there")
    if args.client_loop == "uvloop":
        import uvloop

        uvloop.run(run(args))
    else:
        asyncio.run(run(args))


def check_sources(baseline_checkout: Path) -> dict[str, dict[str, str]]:
    """Which code each gateway will run, checked before anything starts."""
    sides = {}
    for name, checkout in (("gateway", REPO), ("baseline", baseline_checkout)):
        source = gateway_source(checkout, checkout_env(checkout) if name == "baseline" else {})
        if not source.is_relative_to(checkout / "services" / "gateway"):
            raise SystemExit(f"the {name} gateway would import {source}, not {checkout}'s code")
        sides[name] = {"checkout": str(checkout), "commit": checkout_commit(checkout), "source": str(source)}
        print(f"{'new' if name == 'gateway' else name} gateway: commit {sides[name]['commit']}, code {source}")
    return sides


async def run(args: argparse.Namespace) -> None:
    counts = args.agencies or [5, 20]
    sides = check_sources(args.compare_checkout) if args.compare_checkout else None
    commits = {name: side["commit"] for name, side in sides.items()} if sides else None
    if commits and args.tls:
        commits = {"gateway": commits["gateway"] + " TLS", "baseline": commits["baseline"] + " plaintext"}
    results = {}
    with tempfile.TemporaryDirectory(prefix="chakong-bench-") as workdir:
        for n in counts:
            stack = Stack(n, Path(workdir), args.compare_checkout, tls=args.tls, mock_host=args.mock_host)
            concurrency = args.concurrency or max(1, min(8, 2000 // n))
            try:
                stack.start()
                results[str(n)] = await measure(stack, args.seconds, concurrency, args.rounds)
                results[str(n)]["concurrency"] = concurrency
            finally:
                stack.stop()
            print_table(n, results[str(n)], commits)
    headline = results[str(max(counts))]
    summary = {
        "agencies": max(counts),
        "throughput_ratio_grpc": headline["throughput_ratio_grpc"],
        "overhead_p50_ms_grpc": headline["overhead_p50_ms_grpc"],
        "throughput_ratio_http": headline["throughput_ratio_http"],
        "overhead_p50_ms_http": headline["overhead_p50_ms_http"],
        "latency_ratio_p50_grpc": headline["latency_ratio_p50_grpc"],
        "cpu_ratio_grpc": headline["cpu_ratio_grpc"],
        "mock_host": args.mock_host,
    }
    if sides:
        summary |= {
            "commit": sides["gateway"]["commit"],
            "baseline_commit": sides["baseline"]["commit"],
            "baseline_checkout": sides["baseline"]["checkout"],
            **{
                f"{key}_{api}": headline[f"{key}_{api}"]
                for api in ("grpc", "http")
                for key in (
                    "new_vs_baseline_throughput_ratio",
                    "new_vs_baseline_p50_diff_ms",
                    "throughput_ratio_baseline",
                    "overhead_p50_ms_baseline",
                )
            },
            "gateway_source": sides["gateway"]["source"],
            "baseline_gateway_source": sides["baseline"]["source"],
        }
    summary |= {
        "seconds": args.seconds,
        "concurrency": args.concurrency or "auto",
        "rounds": args.rounds,
        "client_loop": args.client_loop,
        "tls": args.tls,
        "results": results,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
