"""Soak: a long run of queries, a tenth of them abandoned mid-flight, and the gateway's footprint along the way.

One services.mockhost process serves --agencies banks and one gateway asks
them, --concurrency queries in flight, until the gateway has made --calls
agency calls (its own chakong_gateway_agency_calls_total). Of the queries:
  90%  unary QueryAssets, answered
   4%  unary QueryAssets, cancelled by the client after 0-4 ms
   3%  StreamAssets, closed by the client after the first event
   3%  unary QueryAssets with deadline_ms 3: the gateway cuts calls off
Every --sample-every calls it samples the gateway's RSS, open file
descriptors and live asyncio tasks (chakong_gateway_tasks); at the end,
after the gateway has been idle for --settle seconds, once more. Reported:
the curve, RSS growth between the sample at --compare-from calls and the
last one, and fds and tasks at the end against the first sample. The last
line printed is one JSON object with every figure.

    .venv/bin/python bench/soak.py --calls 1000000
"""

import argparse
import asyncio
import json
import random
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

from fanout import CASE, SEED, SUBJECTS, Workload, footprint, register_case  # noqa: E402
from hedging import gateway_env  # noqa: E402
from protos.gateway.v1 import gateway_pb2, gateway_pb2_grpc  # noqa: E402
from services.security.tokens import TokenSigner, write_signing_key  # noqa: E402
from tests.support.harness import ServiceProcess  # noqa: E402


async def outcomes(http: aiohttp.ClientSession, gateway: ServiceProcess) -> dict[str, int]:
    """The gateway's agency calls by outcome, the ones that happened."""
    async with http.get(f"http://{gateway.endpoints['http']}/metrics") as reply:
        text = await reply.text()
    totals: dict[str, int] = {}
    for outcome, value in re.findall(r'^chakong_gateway_agency_calls_total\{[^}]*outcome="(\w+)"[^}]*\} (\S+)$', text, re.M):
        totals[outcome] = totals.get(outcome, 0) + int(float(value))
    return {outcome: n for outcome, n in sorted(totals.items()) if n}


async def scrape(http: aiohttp.ClientSession, gateway: ServiceProcess) -> tuple[float, float]:
    """(agency calls made so far, live tasks) from the gateway's /metrics."""
    async with http.get(f"http://{gateway.endpoints['http']}/metrics") as reply:
        text = await reply.text()
    calls = sum(float(v) for v in re.findall(r"^chakong_gateway_agency_calls_total\{[^}]*\} (\S+)$", text, re.M))
    tasks = re.search(r"^chakong_gateway_tasks (\S+)$", text, re.M)
    # -1: a gateway of a commit before the family existed (--gateway-checkout).
    return calls, float(tasks.group(1)) if tasks else -1.0


class Client:
    def __init__(self, stub, metadata, workload: Workload):
        self.stub, self.metadata, self.workload = stub, metadata, workload
        self.rng = random.Random(3)
        self.counts = {"answered": 0, "cancelled": 0, "stream_closed": 0, "deadline": 0}

    async def one(self) -> None:
        request = gateway_pb2.AssetQueryRequest(case=CASE, subject=self.workload.next_subject())
        roll = self.rng.random()
        if roll < 0.90:
            await self.stub.QueryAssets(request, timeout=10, metadata=self.metadata)
            self.counts["answered"] += 1
        elif roll < 0.94:
            call = self.stub.QueryAssets(request, timeout=10, metadata=self.metadata)
            await asyncio.sleep(self.rng.uniform(0, 0.004))
            call.cancel()
            try:
                await call
            except (asyncio.CancelledError, grpc.aio.AioRpcError):
                pass
            self.counts["cancelled"] += 1
        elif roll < 0.97:
            call = self.stub.StreamAssets(request, timeout=10, metadata=self.metadata)
            async for _ in call:
                break
            call.cancel()
            self.counts["stream_closed"] += 1
        else:
            request.deadline_ms = 3
            await self.stub.QueryAssets(request, timeout=10, metadata=self.metadata)
            self.counts["deadline"] += 1


async def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="chakong-soak-") as tmp:
        workdir = Path(tmp)
        token_key = workdir / "token-signing.key"
        write_signing_key(token_key, token_key.with_suffix(".pub"))
        registry = workdir / "agencies.toml"
        host = ServiceProcess("services.mockhost", {
            "MOCK_AGENCIES": str(args.agencies), "MOCK_REGISTRY": str(registry), "SEED": str(SEED),
            "SUBJECTS": str(SUBJECTS), "LOG_LEVEL": "WARNING", "INSECURE_PLAINTEXT": "1",
        }, ready_timeout=120).start()
        gateway = None
        try:
            env = gateway_env(registry, workdir / "gateway", token_key, hedging=not args.no_hedging)
            checkout = args.gateway_checkout
            if checkout:  # another commit's gateway, as bench/fanout.py --compare-checkout runs it
                env["PYTHONPATH"] = str(checkout)
            gateway = ServiceProcess("services.gateway", env, cwd=checkout).start()
            pid = gateway.proc.pid
            signer = TokenSigner.from_file(token_key)
            workload = Workload()
            await register_case(gateway, None, signer, workload)  # plaintext ports: no CA needed
            metadata = (("authorization", f"Bearer {signer.issue(CASE.executor_id, CASE.court_code, ('executor',))}"),)
            channel = grpc.aio.insecure_channel(gateway.endpoints["grpc"])
            client = Client(gateway_pb2_grpc.AssetGatewayStub(channel), metadata, workload)
            curve = []
            started = time.perf_counter()
            async with aiohttp.ClientSession() as http:
                async def sample(calls: float) -> None:
                    _, tasks = await scrape(http, gateway)
                    point = {"calls": int(calls), "seconds": round(time.perf_counter() - started, 1), **footprint(pid),
                             "tasks": int(tasks)}
                    curve.append(point)
                    print(json.dumps(point), flush=True)

                # Warm-up: channels, caches, the hedging windows.
                for _ in range(200):
                    await client.one()
                await asyncio.sleep(args.settle)
                calls, _ = await scrape(http, gateway)
                await sample(calls)
                next_sample = calls + args.sample_every
                done = asyncio.Event()

                async def worker():
                    while not done.is_set():
                        await client.one()

                workers = [asyncio.create_task(worker()) for _ in range(args.concurrency)]
                while calls < args.calls:
                    await asyncio.sleep(0.5)
                    calls, _ = await scrape(http, gateway)
                    if calls >= next_sample:
                        await sample(calls)
                        next_sample += args.sample_every
                done.set()
                await asyncio.gather(*workers)
                await asyncio.sleep(args.settle)
                calls, _ = await scrape(http, gateway)
                await sample(calls)
                by_outcome = await outcomes(http, gateway)
            await channel.close()
        finally:
            for process in (gateway, host):
                if process:
                    process.stop()
    first, last = curve[0], curve[-1]
    reference = next((p for p in curve if p["calls"] >= args.compare_from), first)
    return {
        "agencies": args.agencies, "calls": int(last["calls"]), "concurrency": args.concurrency,
        "hedging": not args.no_hedging,
        "seconds": last["seconds"], "queries": client.counts, "outcomes": by_outcome,
        "rss_growth_from": reference["calls"],
        "rss_growth": round(last["rss_mb"] / reference["rss_mb"] - 1, 4),
        "fds_start_end": [first["fds"], last["fds"]], "tasks_start_end": [first["tasks"], last["tasks"]],
        "curve": curve,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agencies", type=int, default=20)
    parser.add_argument("--calls", type=int, default=1_000_000, help="agency calls the gateway makes in all")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--sample-every", type=int, default=50_000)
    parser.add_argument("--compare-from", type=int, default=100_000, help="RSS growth from the first sample here")
    parser.add_argument("--gateway-checkout", type=Path, metavar="DIR",
                        help="run the gateway from another checkout of this repository (an older commit)")
    parser.add_argument("--no-hedging", action="store_true", help="the gateway with HEDGE_QUERIES=0")
    parser.add_argument("--settle", type=float, default=3.0, help="idle seconds before the first and last sample")
    result = asyncio.run(run(parser.parse_args()))
    print(f"\n{result['calls']} agency calls in {result['seconds']} s; queries {result['queries']};"
          f" calls by outcome {result['outcomes']}")
    print(f"  RSS {result['rss_growth']:+.2%} from {result['rss_growth_from']} calls to the end;"
          f" fds {result['fds_start_end']}, tasks {result['tasks_start_end']} (start, end)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
