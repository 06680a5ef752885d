"""`chakong batch submit|status|watch|results|cancel`: batches of queries (多案集中查询) through the gateway.

`submit` reads a CSV or XLSX case summary list with the gateway's own reader
(services/gateway/batch/rows.py: the same columns, the same line numbers),
so what it cannot read is reported by line as the HTTP upload reports it.
`watch` draws a live progress bar (rich) until the batch ends. Exit status:
0 done, 2 refused or invalid, 3 the batch ended CANCELLED.
"""

import argparse
import contextlib
import sys
from pathlib import Path

from protos.gateway.v1 import batch_pb2, batch_pb2_grpc
from services.cli import render
from services.cli.auth import COURT_HELP, EXECUTOR_HELP, channel_for
from services.cli.render import to_json
from services.gateway.batch.rows import read_csv, read_xlsx

EXIT_REFUSED = 2
EXIT_CANCELLED = 3
# The reader's cap here only stops a runaway file; the gateway applies its own (BATCH_MAX_ROWS).
READ_CAP = 1_000_000
TIMEOUT_S = 60


def _roles(args) -> tuple[str, ...]:
    return ("executor", "query_team") if args.team else ("executor",)


def read_list(path: str) -> batch_pb2.SubmitBatchRequest:
    data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    if path.lower().endswith(".xlsx"):
        return read_xlsx(data, READ_CAP)
    return read_csv(data, READ_CAP)


def summary(batch: batch_pb2.Batch) -> str:
    rows = [[agency_id, str(c.ok), str(c.timeout), str(c.error), str(c.pending)]
            for agency_id, c in sorted(batch.agencies.items(), key=lambda kv: list(batch.agency_ids).index(kv[0])
                                       if kv[0] in batch.agency_ids else 0)]
    lines = [
        f"batch {batch.batch_id}: {batch.state}, {batch.done} of {batch.total} rows done"
        + (f", {batch.cancelled} cancelled" if batch.cancelled else "")
        + (f", about {batch.eta_seconds:.0f} s left" if batch.eta_seconds else ""),
        render.table(["Agency 机构", "OK", "Timeout", "Error", "Pending 未答"], rows) if rows else "",
    ]
    if batch.rejected:
        lines.append(f"{len(batch.rejected)} rows rejected 被拒绝的行:")
        lines.extend(f"  line {r.line}: {r.field or 'row'}: {r.rule}" for r in batch.rejected)
    return "\n".join(line for line in lines if line)


async def run_submit(args) -> int:
    request = read_list(args.file)
    request.agency_ids.extend(a for a in (args.agencies or "").split(",") if a)
    async with channel_for(args, _roles(args)) as channel:
        batch = await batch_pb2_grpc.BatchQueriesStub(channel).SubmitBatch(request, timeout=TIMEOUT_S)
        print(to_json(batch) if args.json else summary(batch))
        if args.watch:
            return await _watch(channel, batch.batch_id)
    return 0


async def run_status(args) -> int:
    async with channel_for(args, _roles(args)) as channel:
        batch = await batch_pb2_grpc.BatchQueriesStub(channel).GetBatch(
            batch_pb2.GetBatchRequest(batch_id=args.batch_id), timeout=TIMEOUT_S)
    print(to_json(batch) if args.json else summary(batch))
    return 0


async def run_watch(args) -> int:
    async with channel_for(args, _roles(args)) as channel:
        return await _watch(channel, args.batch_id)


async def _watch(channel, batch_id: str) -> int:
    """A live bar of rows done (and the agencies' answers) until the batch ends."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    stub = batch_pb2_grpc.BatchQueriesStub(channel)
    last = None
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
               TextColumn("{task.fields[answers]}"))
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(f"batch {batch_id} 批量查询", total=None, answers="")
        async for batch in stub.WatchBatch(batch_pb2.GetBatchRequest(batch_id=batch_id)):
            last = batch
            answers = "  ".join(f"{a} {c.ok}✓ {c.timeout + c.error}✗" for a, c in sorted(batch.agencies.items()))
            progress.update(task, total=batch.total, completed=batch.done + batch.cancelled, answers=answers)
    if last is None:
        return EXIT_REFUSED
    print(summary(last))
    return EXIT_CANCELLED if last.state == "CANCELLED" else 0


async def run_results(args) -> int:
    out = contextlib.nullcontext(sys.stdout.buffer) if args.output in (None, "-") else open(args.output, "wb")
    async with channel_for(args, _roles(args)) as channel:
        with out as file:
            stream = batch_pb2_grpc.BatchQueriesStub(channel).ExportBatch(
                batch_pb2.ExportBatchRequest(batch_id=args.batch_id, format=args.format), timeout=600)
            async for chunk in stream:
                file.write(chunk.data)
    if args.output not in (None, "-"):
        print(f"results of {args.batch_id} written to {args.output}", file=sys.stderr)
    return 0


async def run_cancel(args) -> int:
    async with channel_for(args, _roles(args)) as channel:
        batch = await batch_pb2_grpc.BatchQueriesStub(channel).CancelBatch(
            batch_pb2.GetBatchRequest(batch_id=args.batch_id), timeout=TIMEOUT_S)
    print(to_json(batch) if args.json else summary(batch))
    return 0


def register(commands) -> None:
    batch = commands.add_parser("batch", help="batches of queries (多案集中查询): submit, watch, results")
    sub = batch.add_subparsers(dest="batch_command", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--court", default=None, help=COURT_HELP)
        parser.add_argument("--executor", default=None, help=EXECUTOR_HELP)
        parser.add_argument("--team", action="store_true",
                            help="a development token with the query_team role (any case of the court)")

    submit = sub.add_parser("submit", help="submit a CSV or XLSX case summary list (案件汇总查询清单)")
    submit.add_argument("file", help="the .csv or .xlsx file ('-': CSV on stdin); columns case_number, debtor_id,"
                                     " and optionally court_code, document_number, debtor_name")
    submit.add_argument("--agencies", help="comma-separated agency IDs to ask (default: all)")
    submit.add_argument("--watch", action="store_true", help="then draw its progress until it ends")
    submit.add_argument("--json", action="store_true")
    common(submit)
    submit.set_defaults(run=run_submit)
    for name, run, text in (("status", run_status, "where a batch stands"),
                            ("watch", run_watch, "a live progress bar until the batch ends"),
                            ("cancel", run_cancel, "stop asking; what was answered is kept")):
        parser = sub.add_parser(name, help=text)
        parser.add_argument("batch_id")
        if name != "watch":
            parser.add_argument("--json", action="store_true")
        common(parser)
        parser.set_defaults(run=run)
    results = sub.add_parser("results", help="download the results (JSON lines, CSV or XLSX)")
    results.add_argument("batch_id")
    results.add_argument("--format", choices=("jsonl", "csv", "xlsx"), default="csv")
    results.add_argument("-o", "--output", help="file to write (default: stdout)")
    common(results)
    results.set_defaults(run=run_results)
