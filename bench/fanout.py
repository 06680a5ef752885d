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
"""

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protos.bank.v1 import bank_pb2, bank_pb2_grpc  # noqa: E402
from protos.common.v1 import common_pb2  # noqa: E402
from protos.gateway.v1 import control_pb2, control_pb2_grpc, gateway_pb2, gateway_pb2_grpc  # noqa: E402
from services import datagen  # noqa: E402
from services.cli.auth import gateway_channel as gateway_channel_for  # noqa: E402
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


class Stack:
    """N mock banks and a gateway, each its own process."""

    def __init__(self, n: int, workdir: Path):
        self.n, self.workdir = n, workdir
        self.agencies: list[ServiceProcess] = []
        self.gateway: ServiceProcess | None = None
        self.token_key = workdir / "token-signing.key"
        if not self.token_key.is_file():
            write_signing_key(self.token_key, self.token_key.with_suffix(".pub"))

    def start(self) -> None:
        for i in range(self.n):
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
        registry = self.workdir / f"agencies-{self.n}.toml"
        registry.write_text(
            "".join(
                f'[[agency]]\nid = "bank{i:02d}"\nkind = "bank"\nname = "Bench bank {i}"\n'
                f'address = "{a.endpoints["grpc"]}"\ntimeout_ms = 2000\n\n'
                for i, a in enumerate(self.agencies)
            )
        )
        self.gateway = ServiceProcess(
            "services.gateway",
            {
                "AGENCY_REGISTRY": str(registry),
                # Ledger and audit trail in the bench's own directory, never var/.
                "DATA_DIR": str(self.workdir),
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
            },
        ).start()

    def stop(self) -> None:
        for process in [self.gateway, *self.agencies]:
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


async def interleaved_latency(modes: dict, workload: Workload, seconds: float, latency: dict) -> None:
    """One query at a time, the modes taking turns query by query: whatever
    the machine does meanwhile slows every mode alike, so their p50s compare."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        subject = workload.next_subject()
        for name, query in modes.items():
            start = time.perf_counter()
            await query(subject)
            latency[name].append(time.perf_counter() - start)


async def measure(stack: Stack, seconds: float, concurrency: int, rounds: int) -> dict:
    workload = Workload()
    channels = [grpc.aio.insecure_channel(a.endpoints["grpc"]) for a in stack.agencies]
    bank_stubs = [bank_pb2_grpc.BankStub(c) for c in channels]
    # Queries need a registered case naming the subjects as debtors, asked by an assigned executor.
    signer = TokenSigner.from_file(stack.token_key)
    admin = gateway_channel_for(stack.gateway.endpoints["grpc"], signer.issue("ADMIN", CASE.court_code, ("admin",)))
    async with admin:
        await control_pb2_grpc.EnforcementControlStub(admin).RegisterCase(
            control_pb2.RegisterCaseRequest(
                case=CASE, debtors=workload.subjects, amount_owed_fen=1_000_000, executor_ids=[CASE.executor_id]
            ),
            timeout=10,
        )
    token = signer.issue(CASE.executor_id, CASE.court_code, ("executor",))
    # Metadata on each call, not a client interceptor: grpc.aio's interceptors
    # cost the client more than the gateway's whole overhead.
    auth_metadata = (("authorization", f"Bearer {token}"),)
    gateway_channel = grpc.aio.insecure_channel(stack.gateway.endpoints["grpc"])
    gateway_stub = gateway_pb2_grpc.AssetGatewayStub(gateway_channel)
    http_url = f"http://{stack.gateway.endpoints['http']}/v1/queries"
    http = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency * 2), headers={"Authorization": f"Bearer {token}"}
    )

    async def gateway_grpc(subject):
        response = await gateway_stub.QueryAssets(
            gateway_pb2.AssetQueryRequest(case=CASE, subject=subject), timeout=5, metadata=auth_metadata
        )
        if not response.complete:
            raise RuntimeError(f"partial answer: {response}")

    async def gateway_http(subject):
        body = {"case": {"case_number": CASE.case_number, "court_code": CASE.court_code,
                         "executor_id": CASE.executor_id, "document_number": CASE.document_number},
                "subject": {"type": common_pb2.SubjectType.Name(subject.type), "id_number": subject.id_number,
                            "name": subject.name}}
        async with http.post(http_url, json=body) as reply:
            data = await reply.json()
            if reply.status != 200 or not data.get("complete"):
                raise RuntimeError(f"HTTP {reply.status}: {data}")

    modes = {"direct": lambda s: direct_query(bank_stubs, s), "gateway_grpc": gateway_grpc, "gateway_http": gateway_http}
    latency = {m: [] for m in modes}
    completed = {m: 0 for m in modes}
    elapsed = {m: 0.0 for m in modes}
    try:
        for query in modes.values():  # warm channels and caches
            await run_mode(query, workload, 0.5, concurrency)
        for _ in range(rounds):
            await interleaved_latency(modes, workload, seconds / 2 * len(modes), latency)
            for name, query in modes.items():
                start = time.perf_counter()
                completed[name] += len(await run_mode(query, workload, seconds / 2, concurrency))
                elapsed[name] += time.perf_counter() - start
    finally:
        await http.close()
        await gateway_channel.close()
        for channel in channels:
            await channel.close()

    figures = {
        name: {
            "p50_ms": round(percentile(latency[name], 0.50) * 1000, 3),
            "p99_ms": round(percentile(latency[name], 0.99) * 1000, 3),
            "qps": round(completed[name] / elapsed[name], 1),
            "latency_samples": len(latency[name]),
        }
        for name in modes
    }
    for api in ("grpc", "http"):
        gateway = figures[f"gateway_{api}"]
        figures[f"throughput_ratio_{api}"] = round(gateway["qps"] / figures["direct"]["qps"], 3)
        figures[f"overhead_p50_ms_{api}"] = round(gateway["p50_ms"] - figures["direct"]["p50_ms"], 3)
        figures[f"latency_ratio_p50_{api}"] = round(gateway["p50_ms"] / figures["direct"]["p50_ms"], 3)
    return figures


def print_table(n: int, figures: dict) -> None:
    print(f"\n{n} agencies")
    print(f"  {'mode':<14}{'p50 ms':>10}{'p99 ms':>10}{'qps':>10}")
    for mode in ("direct", "gateway_grpc", "gateway_http"):
        f = figures[mode]
        print(f"  {mode:<14}{f['p50_ms']:>10.2f}{f['p99_ms']:>10.2f}{f['qps']:>10.1f}")
    for api in ("grpc", "http"):
        print(f"  gateway/direct ({api}): throughput x{figures[f'throughput_ratio_{api}']:.2f},"
              f" p50 overhead {figures[f'overhead_p50_ms_{api}']:+.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agencies", type=int, action="append", help="agency count (repeatable; default 5 and 20)")
    parser.add_argument("--seconds", type=float, default=4.0, help="measuring time per mode and round")
    parser.add_argument("--concurrency", type=int, default=8, help="queries in flight in the throughput phase")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--client-loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="this process's event loop, so the direct fan-out's baseline (the services always run uvloop)",
    )
    args = parser.parse_args()
    if args.client_loop == "uvloop":
        import uvloop

        uvloop.run(run(args))
    else:
        asyncio.run(run(args))


async def run(args: argparse.Namespace) -> None:
    counts = args.agencies or [5, 20]
    results = {}
    with tempfile.TemporaryDirectory(prefix="chakong-bench-") as workdir:
        for n in counts:
            stack = Stack(n, Path(workdir))
            try:
                stack.start()
                results[str(n)] = await measure(stack, args.seconds, args.concurrency, args.rounds)
            finally:
                stack.stop()
            print_table(n, results[str(n)])
    headline = results[str(max(counts))]
    summary = {
        "agencies": max(counts),
        "throughput_ratio_grpc": headline["throughput_ratio_grpc"],
        "overhead_p50_ms_grpc": headline["overhead_p50_ms_grpc"],
        "throughput_ratio_http": headline["throughput_ratio_http"],
        "overhead_p50_ms_http": headline["overhead_p50_ms_http"],
        "seconds": args.seconds,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "client_loop": args.client_loop,
        "results": results,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
