"""Hedged queries against injected stragglers: fan-out tail latency with hedging off and on, in one run.

One services.mockhost process serves N banks (--agencies, default 20) of
which every call has a --straggler-rate chance (default 1%) of answering
--straggler-ms later (default 1,000 ms); --replicas gives each bank that
many endpoints (a hedge then goes to another one). Two gateways run on
the same banks: one with HEDGE_QUERIES=0, one with hedging on (its
defaults: delay = the 97th percentile of each agency's recent latency,
budget 5% of calls). Both are queried at the same time, --concurrency
queries in flight each, for --seconds, so the machine's drift hits both
alike. Reported: p50, p99, p99.9 and max of the query latency for each,
the p99 ratio off/on, and the hedging gateway's extra calls (hedges sent
over the agency query calls it would make without them), from its own
metrics. The last line printed is one JSON object with every figure.

    .venv/bin/python bench/hedging.py --seconds 60
    .venv/bin/python bench/hedging.py --seconds 60 --replicas 2
"""

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import grpc

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from fanout import CASE, SEED, SUBJECTS, Workload, percentile, register_case  # noqa: E402
from protos.gateway.v1 import gateway_pb2, gateway_pb2_grpc  # noqa: E402
from services.security.tokens import TokenSigner, write_signing_key  # noqa: E402
from tests.support.harness import ServiceProcess  # noqa: E402


def gateway_env(registry: Path, data_dir: Path, token_key: Path, hedging: bool) -> dict[str, str]:
    data_dir.mkdir(exist_ok=True)
    return {
        "AGENCY_REGISTRY": str(registry), "DATA_DIR": str(data_dir), "GATEWAY_GRPC_ADDRESS": "127.0.0.1:0",
        "GATEWAY_HTTP_ADDRESS": "127.0.0.1:0", "LOG_LEVEL": "WARNING", "INSECURE_PLAINTEXT": "1",
        "CHAKONG_TOKEN_PUBLIC_KEY": str(token_key.with_suffix(".pub")), "HEDGE_QUERIES": "1" if hedging else "0",
        "RATE_LIMIT_EXECUTOR_PER_MINUTE": "1000000", "RATE_LIMIT_EXECUTOR_BURST": "1000000",
        "RATE_LIMIT_COURT_PER_MINUTE": "10000000", "RATE_LIMIT_COURT_BURST": "1000000",
        # Hold feeds are not what is measured; neither gateway reads them.
        "HOLD_SYNC_SECONDS": "0",
    }


async def metric_sum(http: aiohttp.ClientSession, gateway: ServiceProcess, family: str, match: str = "") -> float:
    """The sum of a family's samples on the gateway's /metrics whose labels contain `match`."""
    async with http.get(f"http://{gateway.endpoints['http']}/metrics") as reply:
        text = await reply.text()
    pattern = re.compile(rf"^{family}\{{([^}}]*)\}} ([0-9.e+]+)$", re.M)
    return sum(float(value) for labels, value in pattern.findall(text) if match in labels)


async def query_loop(stub, metadata, workload: Workload, end: float, latencies: list[float]) -> None:
    while time.perf_counter() < end:
        request = gateway_pb2.AssetQueryRequest(case=CASE, subject=workload.next_subject())
        start = time.perf_counter()
        response = await stub.QueryAssets(request, timeout=5, metadata=metadata)
        latencies.append(time.perf_counter() - start)
        if not response.complete:
            raise RuntimeError(f"partial answer: {[r.error_message for r in response.results if r.error_message]}")


def summary(latencies: list[float]) -> dict:
    return {
        "queries": len(latencies),
        **{f"p{label}_ms": round(percentile(latencies, q) * 1000, 2)
           for label, q in (("50", 0.5), ("99", 0.99), ("99.9", 0.999))},
        "max_ms": round(max(latencies) * 1000, 2),
    }


async def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="chakong-hedging-") as tmp:
        workdir = Path(tmp)
        token_key = workdir / "token-signing.key"
        write_signing_key(token_key, token_key.with_suffix(".pub"))
        registry = workdir / "agencies.toml"
        host = ServiceProcess("services.mockhost", {
            "MOCK_AGENCIES": str(args.agencies), "MOCK_REPLICAS": str(args.replicas), "MOCK_REGISTRY": str(registry),
            "MOCK_STRAGGLER_RATE": str(args.straggler_rate), "MOCK_STRAGGLER_MS": str(args.straggler_ms),
            "SEED": str(SEED), "SUBJECTS": str(SUBJECTS), "LOG_LEVEL": "WARNING", "INSECURE_PLAINTEXT": "1",
        }, ready_timeout=120).start()
        gateways = {}
        try:
            for name, hedging in (("off", False), ("on", True)):
                gateways[name] = ServiceProcess(
                    "services.gateway", gateway_env(registry, workdir / f"gateway-{name}", token_key, hedging)
                ).start()
            signer = TokenSigner.from_file(token_key)
            workload = Workload()
            for gateway in gateways.values():
                await register_case(gateway, None, signer, workload)  # plaintext ports: no CA needed
            metadata = (("authorization", f"Bearer {signer.issue(CASE.executor_id, CASE.court_code, ('executor',))}"),)
            channels = {name: grpc.aio.insecure_channel(g.endpoints["grpc"]) for name, g in gateways.items()}
            stubs = {name: gateway_pb2_grpc.AssetGatewayStub(channel) for name, channel in channels.items()}
            # Warm-up: channels, and enough answers for the hedging gateway to learn each agency's latency.
            warm = {name: [] for name in gateways}
            end = time.perf_counter() + args.warmup
            await asyncio.gather(*(query_loop(stubs[name], metadata, workload, end, warm[name])
                                   for name in gateways for _ in range(args.concurrency)))
            async with aiohttp.ClientSession() as http:
                before = {
                    "hedges": await metric_sum(http, gateways["on"], "chakong_gateway_agency_hedges_total",
                                               'event="sent"'),
                    "exhausted": await metric_sum(http, gateways["on"], "chakong_gateway_agency_hedges_total",
                                                  'event="budget_exhausted"'),
                    "won": await metric_sum(http, gateways["on"], "chakong_gateway_agency_hedges_total", 'event="won"'),
                }
                latencies = {name: [] for name in gateways}
                end = time.perf_counter() + args.seconds
                await asyncio.gather(*(query_loop(stubs[name], metadata, workload, end, latencies[name])
                                       for name in gateways for _ in range(args.concurrency)))
                sent = await metric_sum(http, gateways["on"], "chakong_gateway_agency_hedges_total",
                                        'event="sent"') - before["hedges"]
                won = await metric_sum(http, gateways["on"], "chakong_gateway_agency_hedges_total",
                                       'event="won"') - before["won"]
                exhausted = await metric_sum(http, gateways["on"], "chakong_gateway_agency_hedges_total",
                                             'event="budget_exhausted"') - before["exhausted"]
            for channel in channels.values():
                await channel.close()
        finally:
            for process in [*gateways.values(), host]:
                process.stop()
    calls = len(latencies["on"]) * args.agencies
    figures = {name: summary(samples) for name, samples in latencies.items()}
    return {
        "agencies": args.agencies, "replicas": args.replicas, "straggler_rate": args.straggler_rate,
        "straggler_ms": args.straggler_ms, "seconds": args.seconds, "concurrency": args.concurrency,
        "off": figures["off"], "on": figures["on"],
        "p99_ratio_off_on": round(figures["off"]["p99_ms"] / figures["on"]["p99_ms"], 2),
        "p99.9_ratio_off_on": round(figures["off"]["p99.9_ms"] / figures["on"]["p99.9_ms"], 2),
        "hedges_sent": int(sent), "hedges_won": int(won), "budget_exhausted": int(exhausted),
        "extra_calls_share": round(sent / calls, 4) if calls else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agencies", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=1, help="endpoints per bank")
    parser.add_argument("--straggler-rate", type=float, default=0.01)
    parser.add_argument("--straggler-ms", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring time (both gateways at once)")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=4, help="queries in flight per gateway")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(f"\n{args.agencies} agencies x {args.replicas} endpoint(s), {args.straggler_rate:.1%} of calls"
          f" +{args.straggler_ms:g} ms")
    print(f"  {'hedging':<10}{'queries':>9}{'p50 ms':>10}{'p99 ms':>10}{'p99.9 ms':>10}{'max ms':>10}")
    for name in ("off", "on"):
        f = result[name]
        print(f"  {name:<10}{f['queries']:>9}{f['p50_ms']:>10.2f}{f['p99_ms']:>10.2f}{f['p99.9_ms']:>10.2f}"
              f"{f['max_ms']:>10.2f}")
    print(f"  p99 off/on x{result['p99_ratio_off_on']}, p99.9 off/on x{result['p99.9_ratio_off_on']};"
          f" hedges sent {result['hedges_sent']} ({result['extra_calls_share']:.2%} extra calls),"
          f" won {result['hedges_won']}, budget exhausted {result['budget_exhausted']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
