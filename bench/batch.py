"""A batch of cases against the same cases sent as interactive queries, in one run on the same stack.

Starts the default 8 agencies of config/agencies.toml as mocks and one
gateway, as real processes on loopback (plaintext: this measures batches,
not TLS), registers the cases (20 debtors each), then:
  idle         interactive query latency, one at a time, nothing else running
  interactive  every row sent as POST /v1/queries by a client keeping
               --concurrency queries in flight (the batch's concurrency)
  batch        the same rows as one CSV batch (BATCH_CONCURRENCY the same),
               with one interactive query at a time running beside it
Reports batch rows per second and its ratio to the interactive client's,
interactive p50/p99 during the batch against idle, and the gateway's peak
RSS during the batch (VmHWM of /proc/<pid>/status). The last line printed
is one JSON object with every figure.

    .venv/bin/python bench/batch.py                  # 10,000 rows
    .venv/bin/python bench/batch.py --rows 2000 --concurrency 32
"""

import argparse
import asyncio
import csv
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from services import datagen  # noqa: E402
from services.gateway.agencies.registry import load_registry  # noqa: E402
from services.security.tokens import TokenSigner, write_signing_key  # noqa: E402
from tests.support.harness import ServiceProcess  # noqa: E402

SEED = 7
SUBJECTS = 2000
COURT, EXECUTOR = "340100", "BENCH"
MODULES = {"bank": "services.bank", "vehicle": "services.vehicle", "realestate": "services.realestate"}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Stack:
    def __init__(self, workdir: Path, concurrency: int):
        self.workdir = workdir
        self.concurrency = concurrency
        self.processes: list[ServiceProcess] = []
        key = workdir / "token-signing.key"
        write_signing_key(key, key.with_suffix(".pub"))
        roles = ("executor", "admin", "query_team")
        self.token = TokenSigner.from_file(key).issue(EXECUTOR, COURT, roles, ttl_s=8 * 3600)
        self.key = key

    def start(self) -> None:
        entries = load_registry(REPO / "config" / "agencies.toml")
        started = []
        for entry in entries:
            env = {"AGENCY_ID": entry.id, "AGENCY_NAME": entry.name, "GRPC_ADDRESS": "127.0.0.1:0",
                   "METRICS_ADDRESS": "127.0.0.1:0", "DATA_DIR": str(self.workdir), "SEED": str(SEED),
                   "SUBJECTS": str(SUBJECTS), "LOG_LEVEL": "WARNING", "INSECURE_PLAINTEXT": "1"}
            if entry.profile:
                env["BANK_PROFILE"] = entry.profile
            started.append((entry, ServiceProcess(MODULES[entry.kind], env, ready_timeout=180).start()))
        self.processes.extend(p for _, p in started)
        registry = self.workdir / "agencies.toml"
        registry.write_text("".join(
            f'[[agency]]\nid = "{e.id}"\nkind = "{e.kind}"\nname = "{e.name}"\naddress = "{p.endpoints["grpc"]}"\n'
            f"timeout_ms = {e.timeout_ms}\n\n" for e, p in started), encoding="utf-8")
        self.gateway = ServiceProcess("services.gateway", {
            "AGENCY_REGISTRY": str(registry), "DATA_DIR": str(self.workdir), "GATEWAY_GRPC_ADDRESS": "127.0.0.1:0",
            "GATEWAY_HTTP_ADDRESS": "127.0.0.1:0", "LOG_LEVEL": "WARNING", "INSECURE_PLAINTEXT": "1",
            "CHAKONG_TOKEN_PUBLIC_KEY": str(self.key.with_suffix(".pub")),
            "RATE_LIMIT_EXECUTOR_PER_MINUTE": "1000000", "RATE_LIMIT_EXECUTOR_BURST": "1000000",
            "RATE_LIMIT_COURT_PER_MINUTE": "10000000", "RATE_LIMIT_COURT_BURST": "1000000",
            "BATCH_CONCURRENCY": str(self.concurrency), "BATCH_MAX_ROWS": "100000",
            "BATCH_MAX_UPLOAD_BYTES": str(64 * 1024 * 1024), "AUDIT_CHECKPOINT_SECONDS": "0",
        }).start()
        self.processes.append(self.gateway)
        self.base = f"http://{self.gateway.endpoints['http']}"

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


async def register(session: aiohttp.ClientSession, rows: int) -> list[dict]:
    people = [s for s in datagen.subjects(SEED, SUBJECTS) if s.subject_type == 1]
    out, cases = [], []
    number = 0
    while len(out) < rows:
        number += 1
        case_number = f"(2026)皖01执{10_000 + number}号"
        debtors = [people[(len(out) + i) % len(people)] for i in range(min(20, rows - len(out)))]
        cases.append((case_number, debtors))
        out.extend({"case_number": case_number, "debtor_id": d.id_number, "debtor_name": d.name, "type": d.subject_type}
                   for d in debtors)

    async def one(case_number, debtors):
        body = {"case": {"case_number": case_number, "court_code": COURT, "executor_id": EXECUTOR,
                         "document_number": case_number},
                "debtors": [{"type": d.subject_type, "id_number": d.id_number, "name": d.name} for d in debtors],
                "amount_owed_fen": "100000000", "executor_ids": [EXECUTOR]}
        async with session.post("/v1/cases", json=body) as response:
            assert response.status in (200, 201), await response.text()

    for start in range(0, len(cases), 16):
        await asyncio.gather(*(one(*c) for c in cases[start:start + 16]))
    return out


def query_body(row: dict) -> dict:
    return {"case": {"case_number": row["case_number"], "court_code": COURT, "executor_id": EXECUTOR,
                     "document_number": row["case_number"]},
            "subject": {"type": row["type"], "id_number": row["debtor_id"]}}


async def ask(session: aiohttp.ClientSession, row: dict) -> float:
    started = time.perf_counter()
    async with session.post("/v1/queries", json=query_body(row)) as response:
        await response.read()
        assert response.status == 200
    return time.perf_counter() - started


async def probe(session, rows: list[dict], stop: asyncio.Event, count: int | None = None) -> list[float]:
    """One interactive query at a time (every 20 ms at most), until `stop` or `count` queries."""
    latencies = []
    i = 0
    while not stop.is_set() and (count is None or len(latencies) < count):
        latencies.append(await ask(session, rows[i % len(rows)]))
        i += 1
        await asyncio.sleep(0.02)
    return latencies


async def interactive(session, rows: list[dict], concurrency: int) -> float:
    queue = iter(rows)

    async def worker():
        for row in queue:
            await ask(session, row)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(rows) / (time.perf_counter() - started)


async def batch(session, stack: Stack, rows: list[dict]) -> dict:
    text = io.StringIO()
    writer = csv.DictWriter(text, ("case_number", "debtor_id", "debtor_name"), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    stop = asyncio.Event()
    pid = stack.gateway.proc.pid
    rss_before = rss_mb(pid)
    started = time.perf_counter()
    async with session.post("/v1/batches", data=text.getvalue().encode(),
                            headers={"Content-Type": "text/csv"}) as response:
        submitted = await response.json()
        assert response.status == 202, submitted
    accepted = time.perf_counter() - started
    probing = asyncio.create_task(probe(session, rows, stop))
    peak_rss = rss_before
    while True:
        async with session.get(f"/v1/batches/{submitted['batch_id']}") as response:
            shown = await response.json()
        peak_rss = max(peak_rss, rss_mb(pid))
        if shown["state"] != "RUNNING":
            break
        await asyncio.sleep(0.5)
    elapsed = time.perf_counter() - started
    stop.set()
    latencies = await probing
    assert shown["state"] == "DONE" and shown["done"] == len(rows), shown
    return {"batch_rows_per_s": len(rows) / elapsed, "batch_seconds": elapsed, "accepted_seconds": accepted,
            "during_p50_ms": percentile(latencies, 0.5) * 1000, "during_p99_ms": percentile(latencies, 0.99) * 1000,
            "during_queries": len(latencies), "rss_before_mb": rss_before, "peak_rss_mb": peak_rss,
            "hwm_rss_mb": peak_rss_mb(pid), "agencies": shown["agencies"]}


async def run(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="chakong-bench-batch-") as directory:
        stack = Stack(Path(directory), args.concurrency)
        stack.start()
        try:
            async with aiohttp.ClientSession(base_url=stack.base, headers={
                    "Authorization": f"Bearer {stack.token}"}) as session:
                rows = await register(session, args.rows)
                idle = await probe(session, rows, asyncio.Event(), count=args.idle_queries)
                interactive_qps = await interactive(session, rows, args.concurrency)
                figures = await batch(session, stack, rows)
        finally:
            stack.stop()
    figures.update({
        "rows": args.rows, "concurrency": args.concurrency, "interactive_rows_per_s": interactive_qps,
        "ratio_batch_to_interactive": figures["batch_rows_per_s"] / interactive_qps,
        "idle_p50_ms": percentile(idle, 0.5) * 1000, "idle_p99_ms": percentile(idle, 0.99) * 1000,
        "load_before": os.getloadavg(),
    })
    figures["during_p99_vs_idle"] = figures["during_p99_ms"] / figures["idle_p99_ms"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--idle-queries", type=int, default=300)
    args = parser.parse_args()
    load = os.getloadavg()
    figures = asyncio.run(run(args))
    figures["load_before"] = load
    figures["load_after"] = os.getloadavg()
    print(f"rows {args.rows}, concurrency {args.concurrency}; load {load[0]:.2f} -> {figures['load_after'][0]:.2f}")
    print(f"interactive client   {figures['interactive_rows_per_s']:8.1f} rows/s")
    print(f"batch                {figures['batch_rows_per_s']:8.1f} rows/s  (ratio "
          f"{figures['ratio_batch_to_interactive']:.2f}; accepted in {figures['accepted_seconds']:.2f} s)")
    print(f"interactive idle     p50 {figures['idle_p50_ms']:7.1f} ms  p99 {figures['idle_p99_ms']:7.1f} ms")
    print(f"interactive in batch p50 {figures['during_p50_ms']:7.1f} ms  p99 {figures['during_p99_ms']:7.1f} ms"
          f"  ({figures['during_p99_vs_idle']:.2f}x idle p99)")
    print(f"gateway RSS          {figures['rss_before_mb']:.0f} MB before, peak {figures['hwm_rss_mb']:.0f} MB")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
