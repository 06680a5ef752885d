"""One-click 查冻扣 at scale: --cases cases planned (dry run) and then executed, on the default stack's agencies.

Starts every agency of config/agencies.toml as a mock (SEED 42, SUBJECTS
10,000, as `make run` seeds them) and one gateway, all real processes on
loopback in plaintext, with executor tokens, authorization and the audit
trail on, and the shipped enforcement policy (config/enforcement.toml: court
340100 deducts above ¥50,000 only with approval). Registers --cases cases of
court 340100, each with one seeded subject as its debtor and an amount owed
drawn log-uniformly from ¥100 to ¥2,000,000, so that some settle, some are
short and some debtors hold nothing. Then it runs every dry run, then every
execution, --concurrency at a time, over HTTP; or, with --batch, submits the
cases as one batch (POST /v1/batches) and asks for its enforcement, a dry run
then an execution (POST /v1/batches/{id}/enforce), waiting for each to end.
It prints the time of each phase and the cases per triage class; the last
line is one JSON object.

    .venv/bin/python bench/enforce.py --batch
    .venv/bin/python bench/enforce.py --cases 200 --concurrency 4
"""

import argparse
import asyncio
import collections
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protos.common.v1 import common_pb2  # noqa: E402
from services import datagen  # noqa: E402
from services.gateway.agencies.registry import load_registry  # noqa: E402
from services.security.tokens import TokenSigner, write_signing_key  # noqa: E402
from tests.support.harness import REPO, ServiceProcess  # noqa: E402

SEED, SUBJECTS, COURT = 42, 10_000, "340100"
MODULES = {"bank": "services.bank", "vehicle": "services.vehicle", "realestate": "services.realestate"}
OPEN = {
    "INSECURE_PLAINTEXT": "1", "LOG_LEVEL": "WARNING",
    # The bench asks as fast as it can: no rate limit in its way.
    **{f"RATE_LIMIT_{scope}_{kind}": "1000000" for scope in ("EXECUTOR", "COURT", "CONTROL_EXECUTOR",
                                                                 "CONTROL_COURT") for kind in ("PER_MINUTE", "BURST")},
}


def start_stack(workdir: Path, started: list[ServiceProcess]) -> tuple[ServiceProcess, TokenSigner]:
    """The agencies and the gateway, each appended to `started` as it starts (the caller stops them)."""
    agencies = load_registry(REPO / "config" / "agencies.toml")
    processes = []
    for a in agencies:
        process = ServiceProcess(MODULES[a.kind], {
            "AGENCY_ID": a.id, "AGENCY_NAME": a.name, "GRPC_ADDRESS": "127.0.0.1:0", "METRICS_ADDRESS": "127.0.0.1:0",
            "DATA_DIR": str(workdir), "SEED": str(SEED), "SUBJECTS": str(SUBJECTS), **OPEN,
            **({"BANK_PROFILE": a.profile} if a.profile else {}),
        }, ready_timeout=300)
        started.append(process)
        processes.append(process.start())
    registry = workdir / "agencies.toml"
    registry.write_text("".join(
        f'[[agency]]\nid = "{a.id}"\nkind = "{a.kind}"\nname = "{a.name}"\naddress = "{p.endpoints["grpc"]}"\n'
        f"timeout_ms = {a.timeout_ms}\n\n" for a, p in zip(agencies, processes)
    ), encoding="utf-8")
    write_signing_key(workdir / "token.key", workdir / "token.pub")
    gateway = ServiceProcess("services.gateway", {
        "AGENCY_REGISTRY": str(registry), "GATEWAY_GRPC_ADDRESS": "127.0.0.1:0", "GATEWAY_HTTP_ADDRESS": "127.0.0.1:0",
        "DATA_DIR": str(workdir), "CHAKONG_TOKEN_PUBLIC_KEY": str(workdir / "token.pub"),
        "ENFORCE_POLICY": str(REPO / "config" / "enforcement.toml"), **OPEN,
    }, ready_timeout=120)
    started.append(gateway)
    return gateway.start(), TokenSigner.from_file(workdir / "token.key")


def cases(count: int) -> list[tuple[str, dict, int]]:
    rng = random.Random(SEED)
    # Residents only: a batch row names its debtor by ID alone, and an all-digit credit code reads as a resident ID.
    residents = [s for s in datagen.subjects(SEED, SUBJECTS) if s.subject_type == common_pb2.SUBJECT_TYPE_RESIDENT_ID]
    people = rng.sample(residents, count)
    return [
        (f"(2026)皖01执{20000 + i}号", {"type": person.subject_type, "id_number": person.id_number, "name": person.name},
         int(10 ** rng.uniform(math.log10(10_000), math.log10(200_000_000))))
        for i, person in enumerate(people)
    ]


async def run(args) -> dict:
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        processes: list[ServiceProcess] = []
        try:
            gateway, signer = await asyncio.to_thread(start_stack, workdir, processes)
        except BaseException:
            for process in reversed(processes):
                process.stop()
            raise
        base = f"http://{gateway.endpoints['http']}"
        executor = {"Authorization": f"Bearer {signer.issue('E0001', COURT, ('executor', 'admin'), ttl_s=7200)}"}
        todo = cases(args.cases)
        semaphore = asyncio.Semaphore(args.concurrency)
        try:
            async with aiohttp.ClientSession(base_url=base, headers=executor,
                                             timeout=aiohttp.ClientTimeout(total=300)) as session:
                async def call(method, path, body=None):
                    async with semaphore, session.request(method, path, json=body) as response:
                        answer = await response.json()
                        assert response.status in (200, 201, 202), (path, response.status, answer)
                        return answer

                await asyncio.gather(*(call("POST", "/v1/cases", {
                    "case": {"case_number": number, "court_code": COURT, "executor_id": "E0001",
                             "document_number": f"{number}执行通知书"},
                    "debtors": [debtor], "amount_owed_fen": str(owed), "executor_ids": ["E0001"],
                }) for number, debtor, owed in todo))
                if args.batch:
                    drafts, plans, dry_s, execute_s = await by_batch(call, todo)
                else:
                    started = time.perf_counter()
                    drafts = await asyncio.gather(*(call("POST", f"/v1/cases/{n}/enforce", {"dry_run": True})
                                                    for n, _, _ in todo))
                    dry_s = time.perf_counter() - started
                    started = time.perf_counter()
                    plans = await asyncio.gather(*(call("POST", f"/v1/cases/{n}/plans/{d['plan_id']}/execute")
                                                   for (n, _, _), d in zip(todo, drafts)))
                    execute_s = time.perf_counter() - started
        finally:
            for process in reversed(processes):
                process.stop()
    expected = collections.Counter(d["triage"]["expected_class"].removeprefix("TRIAGE_CLASS_") for d in drafts)
    classes = collections.Counter(p["triage"]["triage_class"].removeprefix("TRIAGE_CLASS_") for p in plans)
    totals = {name: sum(int(p["triage"][f"{name}_fen"]) for p in plans) for name in ("deducted", "frozen")}
    figures = {
        "cases": args.cases, "batch": args.batch, "concurrency": args.concurrency, "agencies": len(processes) - 1,
        "dry_run_s": round(dry_s, 1), "execute_s": round(execute_s, 1),
        "dry_runs_per_s": round(args.cases / dry_s, 1), "executions_per_s": round(args.cases / execute_s, 1),
        "expected": dict(expected), "classes": dict(classes),
        # A batch's view has each case's plan, not its steps.
        "steps": None if args.batch else sum(len(p["steps"]) for p in plans),
        "deducted_fen": totals["deducted"], "frozen_fen": totals["frozen"],
    }
    return figures


async def by_batch(call, todo):
    """The cases as one batch: its enforcement dry run, then its execution, each waited for to the end.
    The plans come back as the batch's CasePlans, shaped for the figures like plans."""
    batch = await call("POST", "/v1/batches", {"rows": [
        {"case_number": n, "debtor_id": d["id_number"], "debtor_name": d["name"]} for n, d, _ in todo]})
    path = f"/v1/batches/{batch['batch_id']}"

    async def phase(body, count) -> tuple[list[dict], float]:
        started = time.perf_counter()
        await call("POST", f"{path}/enforce", body)
        while True:
            await asyncio.sleep(0.5)
            shown = await call("GET", f"{path}/enforcement")
            if not shown["running"]:
                break
        if shown[count] != len(todo):
            print(f"{count}: {shown[count]} of {len(todo)} cases; rows the batch refused: {batch['rejected']}",
                  file=sys.stderr)
        return [{"triage": p} for p in shown["plans"]], time.perf_counter() - started

    drafts, dry_s = await phase({"dry_run": True}, "planned")
    plans, execute_s = await phase({}, "executed")
    return drafts, plans, dry_s, execute_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (not with --batch: the"
                                                                    " gateway runs a batch's plans 8 at a time)")
    parser.add_argument("--batch", action="store_true", help="as one batch of the batch API")
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    print(f"{figures['cases']} cases on {figures['agencies']} agencies, {figures['concurrency']} at a time:"
          f" dry runs {figures['dry_run_s']} s, executions {figures['execute_s']} s"
          + ("" if args.batch else f"; {figures['steps']} steps"))
    print("expected:", figures["expected"], "triaged:", figures["classes"])
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
