"""`chakong`: query assets and take control actions through the gateway from a terminal."""

import argparse
import asyncio
import os
import sys

import grpc

from protos.common.v1 import common_pb2
from protos.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.cli import agencies as agency_admin
from services.cli import batch, control, render, security
from services.cli.render import to_json
from services.cli.auth import COURT_HELP, DEV_CA, EXECUTOR_HELP, channel_for, fill_identity
from services.common.tls import TlsError
from services.common.validation import subject_type_of
from services.conformance import cli as conformance


def build_query(args: argparse.Namespace) -> gateway_pb2.AssetQueryRequest:
    id_number = args.subject.strip().upper()
    return gateway_pb2.AssetQueryRequest(
        case=common_pb2.CaseRef(
            case_number=args.case.strip(),
            court_code=args.court,
            executor_id=args.executor,
            # The enforcement ruling carries the case number unless told otherwise.
            document_number=args.document or args.case.strip(),
        ),
        subject=common_pb2.Subject(type=subject_type_of(id_number), id_number=id_number, name=args.name),
        agency_ids=[a for a in (args.agencies or "").split(",") if a],
        deadline_ms=args.deadline_ms,
        request_id=args.request_id,
    )


async def run_query(args: argparse.Namespace) -> int:
    request = build_query(args)
    async with channel_for(args) as channel:
        stub = gateway_pb2_grpc.AssetGatewayStub(channel)
        # Generous: the gateway answers by its own deadline; this only guards a hung gateway.
        timeout = (args.deadline_ms or 10_000) / 1000 + 5
        if args.stream and not args.json:
            rows, results = [], []
            async for event in stub.StreamAssets(request, timeout=timeout):
                if event.HasField("result"):
                    results.append(event.result)
                    rows.append(render.result_row(event.result))
                    print(render.pad(rows[-1][0], 32), "  ".join(rows[-1][2:]), flush=True)
                    for line in render.asset_lines(event.result):
                        print(line, flush=True)
                else:
                    print("\n" + render.summary_text(event.final, results))
            return 0
        response = await stub.QueryAssets(request, timeout=timeout)
    print(to_json(response) if args.json else render.query_report(response))
    return 0


async def run_agencies(args: argparse.Namespace) -> int:
    async with channel_for(args) as channel:
        response = await gateway_pb2_grpc.AssetGatewayStub(channel).ListAgencies(
            gateway_pb2.ListAgenciesRequest(), timeout=10
        )
    if args.json:
        print(to_json(response))
        return 0
    rows = [
        [a.agency_id, gateway_pb2.AgencyKind.Name(a.kind).removeprefix("AGENCY_KIND_").lower(), a.display_name,
         a.address, f"{a.timeout_ms} ms", a.health, ("external, " if a.external else "") + (a.source or "file")]
        for a in response.agencies
    ]
    print(render.table(["ID", "Kind", "Name 名称", "Address", "Timeout", "Health", "Entry"], rows))
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="chakong", description="Court enforcement asset query (执行查控) client.")
    top.add_argument(
        "--gateway",
        default=os.environ.get("CHAKONG_GATEWAY", "127.0.0.1:50051"),
        help="gateway gRPC address (env CHAKONG_GATEWAY; default %(default)s)",
    )
    top.add_argument(
        "--ca",
        default=os.environ.get("CHAKONG_CA", str(DEV_CA)),
        help="CA certificate the gateway's must come from (env CHAKONG_CA; default %(default)s, the development CA"
        " `make run` creates); INSECURE_PLAINTEXT=1 talks plaintext to a gateway started with it",
    )
    top.add_argument(
        "--token",
        default=os.environ.get("CHAKONG_TOKEN", ""),
        help="executor token (env CHAKONG_TOKEN; `chakong token issue`). Without one, a 15-minute development"
        " token for --executor/--court is minted if var/pki/token-signing.key exists",
    )
    commands = top.add_subparsers(dest="command", required=True)

    query = commands.add_parser("query", help="find a debtor's accounts, vehicles and properties")
    query.add_argument("--subject", required=True, help="resident ID, unified social credit code or passport number")
    query.add_argument("--name", default="", help="the subject's registered name (optional; agencies check it when given)")
    query.add_argument("--case", required=True, help="case number 案号, e.g. '(2024)皖01执123号'")
    query.add_argument("--court", default=None, help=COURT_HELP)
    query.add_argument(
        "--executor", default=None, help=EXECUTOR_HELP
    )
    query.add_argument("--document", default="", help="legal document number (default: the case number)")
    query.add_argument("--agencies", help="comma-separated agency IDs to ask (default: all)")
    query.add_argument("--deadline-ms", type=int, default=0, help="overall deadline (default: the gateway's)")
    query.add_argument("--request-id", default="", help="correlation ID (default: the gateway makes one)")
    query.add_argument("--stream", action="store_true", help="print each agency's result as it arrives")
    query.add_argument("--json", action="store_true", help="print the aggregate as JSON")
    query.set_defaults(run=run_query)

    agencies = commands.add_parser("agencies", help="list the agencies the gateway knows")
    agencies.add_argument("--json", action="store_true")
    agencies.set_defaults(run=run_agencies)
    security.register(commands)
    conformance.register(commands)
    agency_admin.register(commands)
    control.add_commands(commands)
    batch.register(commands)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    fill_identity(args)
    try:
        return asyncio.run(args.run(args))
    except TlsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNAVAILABLE:
            print(f"error: cannot reach the gateway at {args.gateway} ({exc.details()}); is it running (make run)?",
                  file=sys.stderr)
            return 1
        print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
