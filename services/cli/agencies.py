"""`chakong agency register|update|remove`: change the gateway's agency set at run time (admin role)."""

import argparse

from protos.gateway.v1 import admin_pb2, admin_pb2_grpc, gateway_pb2
from services.cli.auth import channel_for
from services.cli.render import to_json

KINDS = {"bank": gateway_pb2.AGENCY_KIND_BANK, "vehicle": gateway_pb2.AGENCY_KIND_VEHICLE,
         "realestate": gateway_pb2.AGENCY_KIND_REALESTATE}


def _entry(args: argparse.Namespace) -> admin_pb2.AgencyEntry:
    return admin_pb2.AgencyEntry(agency_id=args.id, kind=KINDS[args.kind], display_name=args.name,
                                 address=args.address, timeout_ms=args.timeout_ms)


async def run_agency(args: argparse.Namespace) -> int:
    # The development token carries the admin role too; in production pass an admin's --token.
    async with channel_for(args, ("executor", "admin")) as channel:
        stub = admin_pb2_grpc.AgencyAdminStub(channel)
        if args.agency_command == "register":
            answer = await stub.RegisterAgency(admin_pb2.RegisterAgencyRequest(agency=_entry(args)), timeout=10)
        elif args.agency_command == "update":
            answer = await stub.UpdateAgency(admin_pb2.UpdateAgencyRequest(agency=_entry(args)), timeout=10)
        else:
            answer = await stub.RemoveAgency(admin_pb2.RemoveAgencyRequest(agency_id=args.id), timeout=10)
    if args.json:
        print(to_json(answer))
    elif args.agency_command == "remove":
        print(f"removed {answer.removed.agency_id} ({answer.removed.address}); the gateway no longer asks it")
    else:
        done = {"register": "registered", "update": "updated"}[args.agency_command]
        print(f"{done} {answer.agency_id} at {answer.address}: asked from now on by every gateway sharing the ledger")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    agency = commands.add_parser("agency", help="register, update or remove an agency at run time (admin role)")
    sub = agency.add_subparsers(dest="agency_command", required=True)
    for name, what in (("register", "add an agency"), ("update", "replace an agency's entry")):
        command = sub.add_parser(name, help=what)
        command.add_argument("--id", required=True, help="agency ID (a-z, 0-9, '-'), as its certificate names it")
        command.add_argument("--kind", required=True, choices=sorted(KINDS))
        command.add_argument("--name", required=True, help="display name shown to executors")
        command.add_argument("--address", required=True, help="host:port of its gRPC endpoint")
        command.add_argument("--timeout-ms", type=int, default=1500, help="cap on one call (default %(default)s)")
        command.add_argument("--json", action="store_true")
        command.set_defaults(run=run_agency)
    remove = sub.add_parser("remove", help="stop asking an agency")
    remove.add_argument("--id", required=True)
    remove.add_argument("--json", action="store_true")
    remove.set_defaults(run=run_agency)
