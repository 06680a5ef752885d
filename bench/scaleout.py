"""Gateway scale-out and a slow agency, measured in one run on the same agencies.

Starts --agencies mock banks plus one slow bank (FAULT_LATENCY_P50_MS /
FAULT_LATENCY_P99_MS, its p99 above the query deadline) and three gateways
as real processes on loopback:
  w1_fast   GATEWAY_WORKERS=1, every agency fast
  w2_fast   GATEWAY_WORKERS=2, every agency fast (SO_REUSEPORT workers)
  w1_slow   GATEWAY_WORKERS=1, one of the agencies replaced by the slow one
Queries are gRPC QueryAssets over --channels connections (the kernel
spreads connections, not calls, over workers). Latency (p50/p99) is taken
with --latency-concurrency queries in flight, throughput with
--concurrency; scenarios alternate over --rounds rounds so drift on a
noisy machine hits all alike. Every gateway checks executor tokens (EdDSA,
a key pair made for the run) and the registered case, and audits each
query, as in production; only transport is plaintext. Checked: w1_slow p99 <= deadline + 20 ms,
and w1_slow throughput at most 10% below w1_fast. The last line printed
is one JSON object with every figure.

    .venv/bin/python bench/scaleout.py
    .venv/bin/python bench/scaleout.py --seconds 6 --rounds 3 --deadline-ms 500
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fanout import CASE, SEED, SUBJECTS, Workload, percentile  # noqa: E402
from protos.gateway.v1 import control_pb2, control_pb2_grpc, gateway_pb2, gateway_pb2_grpc  # noqa: E402
from services.cli.auth import gateway_channel as gateway_channel_for  # noqa: E402
from services.security.tokens import TokenSigner, write_signing_key  # noqa: E402
from tests.support.harness import ServiceProcess  # noqa: E402

# Transport security is not what is measured here: plaintext, deliberately.
# Executor tokens and the case check stay on, as in production.
PLAINTEXT = {"INSECURE_PLAINTEXT": "1"}
# The bench asks as fast as it can: no rate limit in its way.
NO_RATE_LIMIT = {
    "RATE_LIMIT_EXECUTOR_PER_MINUTE": "1000000", "RATE_LIMIT_EXECUTOR_BURST": "1000000",
    "RATE_LIMIT_COURT_PER_MINUTE": "10000000", "RATE_LIMIT_COURT_BURST": "1000000",
}
SCENARIOS = ("w1_fast", "w2_fast", "w1_slow")


def start_bank(agency_id: str, workdir: Path, **faults: str) -> ServiceProcess:
    return ServiceProcess(
        "services.bank",
        {
            "AGENCY_ID": agency_id, "AGENCY_NAME": f"Bench {agency_id}", "BANK_PROFILE": "bank",
            "GRPC_ADDRESS": "127.0.0.1:0", "METRICS_ADDRESS": "127.0.0.1:0", "DATA_DIR": str(workdir),
            "SEED": str(SEED), "SUBJECTS": str(SUBJECTS), "LOG_LEVEL": "WARNING", **PLAINTEXT, **faults,
        },
        ready_timeout=120,
    ).start()


def start_gateway(name: str, banks: list[tuple[str, ServiceProcess]], workdir: Path, workers: int,
                  deadline_ms: int, token_public_key: Path) -> ServiceProcess:
    registry = workdir / f"agencies-{name}.toml"
    registry.write_text("".join(
        f'[[agency]]\nid = "{agency_id}"\nkind = "bank"\nname = "Bench {agency_id}"\n'
        f'address = "{process.endpoints["grpc"]}"\ntimeout_ms = {deadline_ms * 4}\n\n'
        for agency_id, process in banks
    ))
    return ServiceProcess(
        "services.gateway",
        {
            "AGENCY_REGISTRY": str(registry), "GATEWAY_GRPC_ADDRESS": "127.0.0.1:0",
            "GATEWAY_HTTP_ADDRESS": "127.0.0.1:0", "GATEWAY_WORKERS": str(workers),
            "QUERY_DEADLINE_MS": str(deadline_ms), "LEDGER_URL": f"sqlite:///{workdir}/ledger-{name}.db",
            "LOG_LEVEL": "WARNING", "CHAKONG_TOKEN_PUBLIC_KEY": str(token_public_key), **PLAINTEXT,
            **NO_RATE_LIMIT,
        },
        ready_timeout=60,
    ).start()


class Client:
    """--channels separate connections to one gateway (no shared subchannels), used in turn."""

    def __init__(self, address: str, channels: int, token: str):
        # Metadata on each call, not a client interceptor: grpc.aio's
        # interceptors cost the client more than the gateway's overhead.
        self.metadata = (("authorization", f"Bearer {token}"),)
        self.channels = [
            grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
            for _ in range(channels)
        ]
        self.stubs = [gateway_pb2_grpc.AssetGatewayStub(c) for c in self.channels]
        self.turn = 0
        self.partial = 0

    async def query(self, subject) -> None:
        self.turn = (self.turn + 1) % len(self.stubs)
        response = await self.stubs[self.turn].QueryAssets(
            gateway_pb2.AssetQueryRequest(case=CASE, subject=subject), timeout=10, metadata=self.metadata
        )
        self.partial += not response.complete

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()


async def run_phase(client: Client, workload: Workload, seconds: float, concurrency: int) -> list[float]:
    latencies: list[float] = []
    end = time.perf_counter() + seconds

    async def loop():
        while time.perf_counter() < end:
            start = time.perf_counter()
            await client.query(workload.next_subject())
            latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return latencies


async def register_case(gateway: ServiceProcess, signer: TokenSigner, workload: Workload) -> None:
    """Queries need a registered case naming the subjects as debtors, asked by an assigned executor."""
    # Plaintext, as every process of this bench (PLAINTEXT): it measures scale-out, not TLS.
    admin = gateway_channel_for(gateway.endpoints["grpc"], signer.issue("ADMIN", CASE.court_code, ("admin",)), None)
    async with admin:
        await control_pb2_grpc.EnforcementControlStub(admin).RegisterCase(
            control_pb2.RegisterCaseRequest(
                case=CASE, debtors=workload.subjects, amount_owed_fen=1_000_000, executor_ids=[CASE.executor_id]
            ),
            timeout=10,
        )


async def measure(gateways: dict[str, ServiceProcess], signer: TokenSigner, args) -> dict:
    workload = Workload()
    for gateway in gateways.values():  # each gateway has its own ledger
        await register_case(gateway, signer, workload)
    token = signer.issue(CASE.executor_id, CASE.court_code, ("executor",))
    clients = {name: Client(g.endpoints["grpc"], args.channels, token) for name, g in gateways.items()}
    latency = {name: [] for name in gateways}
    completed = {name: 0 for name in gateways}
    elapsed = {name: 0.0 for name in gateways}
    try:
        for client in clients.values():  # warm connections and caches
            await run_phase(client, workload, 1.0, args.concurrency)
        for client in clients.values():
            client.partial = 0
        for _ in range(args.rounds):
            for name, client in clients.items():
                latency[name] += await run_phase(client, workload, args.seconds / 2, args.latency_concurrency)
                start = time.perf_counter()
                completed[name] += len(await run_phase(client, workload, args.seconds / 2, args.concurrency))
                elapsed[name] += time.perf_counter() - start
    finally:
        for client in clients.values():
            await client.close()
    figures = {
        name: {
            "p50_ms": round(percentile(latency[name], 0.50) * 1000, 2),
            "p99_ms": round(percentile(latency[name], 0.99) * 1000, 2),
            "max_ms": round(max(latency[name]) * 1000, 2),
            "qps": round(completed[name] / elapsed[name], 1),
            "partial_ratio": round(clients[name].partial / (completed[name] + len(latency[name])), 4),
            "latency_samples": len(latency[name]),
        }
        for name in gateways
    }
    fast, two, slow = figures["w1_fast"], figures["w2_fast"], figures["w1_slow"]
    figures["workers_2_vs_1_throughput"] = round(two["qps"] / fast["qps"], 3)
    figures["slow_throughput_drop"] = round(1 - slow["qps"] / fast["qps"], 3)
    figures["slow_p99_budget_ms"] = args.deadline_ms + 20
    figures["slow_p99_ok"] = slow["p99_ms"] <= args.deadline_ms + 20
    figures["slow_throughput_ok"] = figures["slow_throughput_drop"] <= 0.10
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agencies", type=int, default=5, help="agencies per gateway (one of them slow in w1_slow)")
    parser.add_argument("--deadline-ms", type=int, default=500, help="QUERY_DEADLINE_MS of every gateway")
    parser.add_argument("--slow-p50-ms", type=float, default=20.0)
    parser.add_argument("--slow-p99-ms", type=float, default=1000.0, help="above the deadline")
    parser.add_argument("--seconds", type=float, default=6.0, help="measuring time per scenario and round")
    parser.add_argument("--concurrency", type=int, default=64, help="queries in flight in the throughput phase")
    parser.add_argument("--latency-concurrency", type=int, default=4, help="queries in flight in the latency phase")
    parser.add_argument("--channels", type=int, default=8, help="gRPC connections per gateway")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.slow_p99_ms <= args.deadline_ms:
        parser.error("--slow-p99-ms must be above --deadline-ms: the point is an agency slower than the deadline")

    started: list[ServiceProcess] = []
    with tempfile.TemporaryDirectory(prefix="chakong-bench-") as workdir:
        work = Path(workdir)
        token_key = work / "token-signing.key"
        write_signing_key(token_key, token_key.with_suffix(".pub"))
        signer = TokenSigner.from_file(token_key)
        try:
            fast = [(f"bank{i:02d}", start_bank(f"bank{i:02d}", work)) for i in range(args.agencies)]
            slow = ("slowbank", start_bank("slowbank", work, FAULT_LATENCY_P50_MS=str(args.slow_p50_ms),
                                           FAULT_LATENCY_P99_MS=str(args.slow_p99_ms)))
            started += [p for _, p in fast] + [slow[1]]
            public_key = token_key.with_suffix(".pub")
            gateways = {}
            for name, banks, workers in (("w1_fast", fast, 1), ("w2_fast", fast, 2),
                                         ("w1_slow", [*fast[:-1], slow], 1)):
                gateways[name] = start_gateway(name, banks, work, workers, args.deadline_ms, public_key)
                started.append(gateways[name])
            figures = await measure(gateways, signer, args)
        finally:
            for process in reversed(started):
                process.stop()

    print(f"\n{args.agencies} agencies, deadline {args.deadline_ms} ms, slow agency p50 {args.slow_p50_ms:g} ms"
          f" p99 {args.slow_p99_ms:g} ms, {os.cpu_count()} CPUs")
    print(f"  {'scenario':<10}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}{'qps':>10}{'partial':>10}")
    for name in SCENARIOS:
        f = figures[name]
        print(f"  {name:<10}{f['p50_ms']:>10.2f}{f['p99_ms']:>10.2f}{f['max_ms']:>10.2f}{f['qps']:>10.1f}"
              f"{f['partial_ratio']:>10.3f}")
    print(f"  workers 2 vs 1: throughput x{figures['workers_2_vs_1_throughput']:.2f}")
    print(f"  slow agency: p99 {figures['w1_slow']['p99_ms']:.1f} ms (budget {figures['slow_p99_budget_ms']} ms,"
          f" {'ok' if figures['slow_p99_ok'] else 'OVER'}), throughput drop {figures['slow_throughput_drop']:.1%}"
          f" ({'ok' if figures['slow_throughput_ok'] else 'OVER'})")
    print(json.dumps({
        "agencies": args.agencies, "deadline_ms": args.deadline_ms, "slow_p50_ms": args.slow_p50_ms,
        "slow_p99_ms": args.slow_p99_ms, "seconds": args.seconds, "concurrency": args.concurrency,
        "latency_concurrency": args.latency_concurrency, "channels": args.channels, "rounds": args.rounds,
        "cpus": os.cpu_count(), **figures,
    }))


if __name__ == "__main__":
    asyncio.run(main())
