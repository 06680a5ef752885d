"""The HTTP door under 1,000 slow clients: is a normal query still answered promptly?

Starts --agencies mock banks and one gateway (GATEWAY_WORKERS=1) as real
processes on loopback. Measures HTTP POST /v1/queries latency, one query at
a time over one keep-alive connection, first alone (baseline), then while
--slow connections are held open: half of them trickle a request's headers
one byte every --drip seconds (slowloris), half send nothing. Then waits
past the header-read timeout (http_api/limits.py HEADER_TIMEOUT_S) and
counts how many slow connections the gateway closed (and with 408). The
last line printed is one JSON object with every figure. A figure, not a
pass/fail: see BENCHMARKS.md.

    .venv/bin/python bench/slow_clients.py
    .venv/bin/python bench/slow_clients.py --slow 1000 --seconds 6
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from google.protobuf import json_format

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fanout import CASE, Workload, percentile  # noqa: E402
from bench.scaleout import register_case, start_bank, start_gateway  # noqa: E402
from services.gateway.http_api.limits import HEADER_TIMEOUT_S  # noqa: E402
from services.security.tokens import TokenSigner, write_signing_key  # noqa: E402
from tests.support.harness import ServiceProcess  # noqa: E402


async def timed_queries(session: aiohttp.ClientSession, url: str, workload: Workload, seconds: float) -> list[float]:
    latencies = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        body = {"case": json_format.MessageToDict(CASE), "subject": json_format.MessageToDict(workload.next_subject())}
        start = time.perf_counter()
        async with session.post(url, json=body) as response:
            await response.read()
            assert response.status == 200, response.status
        latencies.append(time.perf_counter() - start)
    return latencies


class SlowClients:
    """Connections that never finish a request: trickling headers, or silent."""

    def __init__(self, host: str, port: int, count: int, drip: float):
        self.host, self.port, self.count, self.drip = host, port, count, drip
        self.open = 0
        self.refused = 0
        self.closed_with: dict[str, int] = {}
        self.tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        self.tasks = [asyncio.create_task(self.one(trickle=i % 2 == 0)) for i in range(self.count)]
        while self.open + self.refused + sum(self.closed_with.values()) < self.count:
            await asyncio.sleep(0.05)

    async def one(self, trickle: bool) -> None:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            self.refused += 1
            return
        self.open += 1
        request = b"GET /healthz HTTP/1.1\r\nHost: bench\r\nX-Slow: " + b"z" * 4000
        try:
            read = asyncio.create_task(reader.read(64))
            for byte in request if trickle else ():
                if read.done():
                    break
                writer.write(bytes([byte]))
                await asyncio.wait([read], timeout=self.drip)
            first = await read
            status = first.split(b" ")[1].decode() if first.startswith(b"HTTP/") else "closed"
        except (ConnectionError, OSError):
            status = "reset"
        self.open -= 1
        self.closed_with[status] = self.closed_with.get(status, 0) + 1
        writer.close()

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def measure(gateway: ServiceProcess, signer: TokenSigner, args) -> dict:
    workload = Workload()
    await register_case(gateway, signer, workload)
    token = signer.issue(CASE.executor_id, CASE.court_code, ("executor",))
    host, port = gateway.endpoints["http"].rsplit(":", 1)
    url = f"http://{gateway.endpoints['http']}/v1/queries"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        await timed_queries(session, url, workload, 1.0)  # warm up
        baseline = await timed_queries(session, url, workload, args.seconds)
        slow = SlowClients(host, int(port), args.slow, args.drip)
        opened = time.perf_counter()
        await slow.start()
        held_at_start = slow.open
        loaded = await timed_queries(session, url, workload, args.seconds)
        held_at_end = slow.open
        # Past the header timeout: the gateway should have closed them all.
        await asyncio.sleep(max(0.0, HEADER_TIMEOUT_S + 2 - (time.perf_counter() - opened)))
        still_open = slow.open
        after = await timed_queries(session, url, workload, 1.0)
        await slow.stop()
    figure = lambda xs, q: round(percentile(xs, q) * 1000, 2)  # noqa: E731
    return {
        "slow_connections": args.slow,
        "held_open_while_measuring": min(held_at_start, held_at_end),
        "refused_at_connect": slow.refused,
        "baseline_p50_ms": figure(baseline, 0.5), "baseline_p99_ms": figure(baseline, 0.99),
        "with_slow_p50_ms": figure(loaded, 0.5), "with_slow_p99_ms": figure(loaded, 0.99),
        "with_slow_max_ms": round(max(loaded) * 1000, 2),
        "p50_ratio": round(percentile(loaded, 0.5) / percentile(baseline, 0.5), 3),
        "p99_ratio": round(percentile(loaded, 0.99) / percentile(baseline, 0.99), 3),
        "samples": {"baseline": len(baseline), "with_slow": len(loaded), "after": len(after)},
        "header_timeout_s": HEADER_TIMEOUT_S,
        "still_open_after_timeout": still_open,
        "closed_with": slow.closed_with,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agencies", type=int, default=3)
    parser.add_argument("--deadline-ms", type=int, default=500)
    parser.add_argument("--slow", type=int, default=1000, help="slow connections held open")
    parser.add_argument("--drip", type=float, default=1.0, help="seconds between the trickling clients' bytes")
    parser.add_argument("--seconds", type=float, default=6.0, help="measuring time, each phase (below the"
                                                                   " header timeout)")
    args = parser.parse_args()
    started: list[ServiceProcess] = []
    with tempfile.TemporaryDirectory(prefix="chakong-bench-") as workdir:
        work = Path(workdir)
        write_signing_key(work / "token-signing.key", work / "token-signing.pub")
        signer = TokenSigner.from_file(work / "token-signing.key")
        try:
            banks = []
            for i in range(args.agencies):
                bank = start_bank(f"bank-{i}", work)
                started.append(bank)
                banks.append((f"bank-{i}", bank))
            gateway = start_gateway("slow", banks, work, 1, args.deadline_ms, work / "token-signing.pub")
            started.append(gateway)
            figures = await measure(gateway, signer, args)
        finally:
            for process in reversed(started):
                process.stop()
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
