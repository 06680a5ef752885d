"""QueryAccounts latency against a 1,000,000-account bank DB versus a 10,000-subject one.

Both DBs are built once from the generator and cached under var/bench/;
both banks run in this process on 127.0.0.1:0 and are called over real
channels, one call at a time, alternating between them so that both see
the same machine load. `rpc` is the round trip seen by the client (this
process's client side included); `server` is what the server's metrics
interceptor measured for the same call (handler and interceptors, no
transport); `store` times the SQLite lookups and message building alone.

    .venv/bin/python bench/agency_query.py [--seconds 10]

The last line is one JSON object for scripts.
"""

import argparse
import asyncio
import json
import logging
import random
import statistics
import sys
import time
from pathlib import Path

import grpc
from prometheus_client import REGISTRY

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protos.bank.v1 import bank_pb2, bank_pb2_grpc  # noqa: E402
from protos.common.v1 import common_pb2  # noqa: E402
from services import datagen  # noqa: E402
from services.agency import store as agency_store  # noqa: E402
from services.agency.server import start_agency  # noqa: E402
from services.bank import store as bank_store  # noqa: E402
from services.bank.config import DEFAULTS, Settings  # noqa: E402
from services.bank.server import BANK  # noqa: E402
from services.common.interceptors import FaultSettings  # noqa: E402

CASE = common_pb2.CaseRef(
    case_number="(2024)皖01执123号", court_code="340100", executor_id="E0001", document_number="(2024)皖01执123号"
)
SAMPLE_SUBJECTS = 2000


def bank_settings(label: str, subjects: int, cache: Path, seed: int) -> Settings:
    return Settings(
        agency_id=DEFAULTS.agency_id,
        agency_name=DEFAULTS.agency_name,
        grpc_address="127.0.0.1:0",
        metrics_address="127.0.0.1:0",
        data_dir=cache,
        # Named by size label: a new generator or size rebuilds it in place.
        db_path=cache / f"{DEFAULTS.agency_id}-{label}.db",
        seed=seed,
        subjects=subjects,
        grace_seconds=0.0,
        faults=FaultSettings(),
        profile="bank",
    )


def sample_holders(db_path: Path, rng: random.Random) -> list[common_pb2.Subject]:
    conn = agency_store.connect(db_path)
    try:
        rows = conn.execute("SELECT id_number, subject_type, name FROM holders").fetchall()
    finally:
        conn.close()
    return [
        common_pb2.Subject(type=r["subject_type"], id_number=r["id_number"], name=r["name"])
        for r in rng.sample(rows, min(SAMPLE_SUBJECTS, len(rows)))
    ]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def time_store(db_path: Path, subjects: list[common_pb2.Subject], rounds: int) -> list[float]:
    """Server-side work per query: holder check plus accounts and freezes, in ms."""
    conn = agency_store.connect(db_path)
    try:
        timings = []
        for i in range(rounds):
            subject = subjects[i % len(subjects)]
            started = time.perf_counter()
            agency_store.holder(conn, subject.id_number)
            bank_store.accounts_of(conn, subject.id_number)
            timings.append((time.perf_counter() - started) * 1000)
        return timings
    finally:
        conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time, shared by both DBs")
    parser.add_argument("--accounts", type=int, default=1_000_000, help="accounts in the large DB")
    parser.add_argument("--small-subjects", type=int, default=10_000, help="subjects in the small DB")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cache", type=Path, default=Path("var/bench"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("services.agency.store").setLevel(logging.INFO)

    large_subjects = datagen.accounts_population_size(args.accounts, "bank")
    sizes = {"1m": large_subjects, "10k": args.small_subjects}
    rng = random.Random(args.seed)
    running, subjects, stubs, channels, records = {}, {}, {}, {}, {}
    for label, count in sizes.items():
        settings = bank_settings(label, count, args.cache, args.seed)
        running[label] = await start_agency(settings, BANK)
        records[label] = int(agency_store.read_meta(settings.db_path)["records"])
        subjects[label] = sample_holders(settings.db_path, rng)
        channels[label] = grpc.aio.insecure_channel(running[label].grpc_address)
        stubs[label] = bank_pb2_grpc.BankStub(channels[label])

    def server_seconds() -> float:
        # Calls go one at a time, so the growth of the interceptor's
        # histogram sum across one call is that call's server-side time.
        return REGISTRY.get_sample_value(
            "grpc_server_handling_seconds_sum", {"grpc_service": BANK.service_name, "grpc_method": "QueryAccounts"}
        ) or 0.0

    async def call(label: str) -> tuple[float, float]:
        subject = rng.choice(subjects[label])
        request = bank_pb2.QueryAccountsRequest(request_id="bench", case=CASE, subject=subject)
        server_before = server_seconds()
        started = time.perf_counter()
        response = await stubs[label].QueryAccounts(request, timeout=5)
        elapsed = (time.perf_counter() - started) * 1000
        assert response.accounts, "a sampled holder must have accounts"
        return elapsed, (server_seconds() - server_before) * 1000

    # Silence the per-query INFO lines: they would time the terminal.
    logging.getLogger("services.agency.queries").setLevel(logging.WARNING)
    for label in sizes:  # warm up channels, page cache and code paths
        for _ in range(200):
            await call(label)
    rpc: dict[str, list[float]] = {label: [] for label in sizes}
    server: dict[str, list[float]] = {label: [] for label in sizes}
    deadline = time.perf_counter() + args.seconds
    while time.perf_counter() < deadline:
        for label in sizes:
            round_trip, server_side = await call(label)
            rpc[label].append(round_trip)
            server[label].append(server_side)

    for label in sizes:
        await channels[label].close()
        await running[label].stop()
    local = {label: time_store(running[label].settings.db_path, subjects[label], 20_000) for label in sizes}

    def p50(samples):
        return statistics.median(samples)

    def p99(samples):
        return percentile(samples, 0.99)

    print(f"{'db':<5} {'subjects':>9} {'accounts':>9} {'calls':>7} {'rpc p50':>8} {'rpc p99':>8}"
          f" {'server p50':>10} {'server p99':>10} {'store p50':>9} {'store p99':>9}   (ms)")
    for label, count in sizes.items():
        print(f"{label:<5} {count:>9,} {records[label]:>9,} {len(rpc[label]):>7,}"
              f" {p50(rpc[label]):>8.3f} {p99(rpc[label]):>8.3f}"
              f" {p50(server[label]):>10.3f} {p99(server[label]):>10.3f}"
              f" {p50(local[label]):>9.4f} {p99(local[label]):>9.4f}")
    result = {
        "p50_ms_1m": round(p50(rpc["1m"]), 4),
        "p99_ms_1m": round(p99(rpc["1m"]), 4),
        "p50_ms_10k": round(p50(rpc["10k"]), 4),
        "p99_ms_10k": round(p99(rpc["10k"]), 4),
        "ratio_p50": round(p50(rpc["1m"]) / p50(rpc["10k"]), 3),
        "server_p50_ms_1m": round(p50(server["1m"]), 4),
        "server_p99_ms_1m": round(p99(server["1m"]), 4),
        "server_p50_ms_10k": round(p50(server["10k"]), 4),
        "server_p99_ms_10k": round(p99(server["10k"]), 4),
        "store_p50_ms_1m": round(p50(local["1m"]), 4),
        "store_p99_ms_1m": round(p99(local["1m"]), 4),
        "accounts_1m": records["1m"],
        "accounts_10k": records["10k"],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
