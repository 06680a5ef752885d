"""`chakong case|freeze|renew|release|deduct|seal|unseal|transfer`: control actions through the gateway.

Every action carries an idempotency key: --idempotency-key, or one made here
and printed on stderr, so that a command that failed or timed out can be
run again with the same key and never acts twice. Exit status: 0 done
(or the same request replayed), 2 refused or invalid, 3 accepted but
PENDING (the gateway keeps driving it; run the command again with the
same key, or `chakong case show`).
"""

import argparse
import datetime as dt
import os
import sys
import uuid

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_status import rpc_status

from protos.bank.v1 import bank_pb2
from protos.common.v1 import common_pb2
from protos.gateway.v1 import control_pb2, control_pb2_grpc
from services.cli import render
from services.cli.render import to_json
from services.common.validation import subject_type_of
from services.cli.auth import COURT_HELP, EXECUTOR_HELP, channel_for

EXIT_REFUSED = 2
EXIT_PENDING = 3
TIMEOUT_S = 60


def subject(id_number: str, name: str = "") -> common_pb2.Subject:
    id_number = id_number.strip().upper()
    return common_pb2.Subject(type=subject_type_of(id_number), id_number=id_number, name=name.strip())


def case_ref(args: argparse.Namespace) -> common_pb2.CaseRef:
    number = args.case.strip()
    return common_pb2.CaseRef(
        case_number=number, court_code=args.court, executor_id=args.executor,
        # The enforcement ruling carries the case number unless told otherwise.
        document_number=args.document or number,
    )


def expiry(text: str | None) -> Timestamp | None:
    """YYYY-MM-DD (end of that day, Beijing time) or an RFC 3339 time."""
    if not text:
        return None
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            moment = dt.datetime.combine(day, dt.time(23, 59, 59), dt.timezone(dt.timedelta(hours=8)))
        else:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(f"error: --expires {text!r}: expected YYYY-MM-DD or 2025-06-30T12:00:00+08:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))
    ts = Timestamp()
    ts.FromDatetime(moment.astimezone(dt.UTC))
    return ts


def _key(args: argparse.Namespace) -> str:
    if args.idempotency_key:
        return args.idempotency_key
    key = f"cli-{uuid.uuid4().hex}"
    print(f"idempotency key {key} (to retry this exact request: --idempotency-key {key})", file=sys.stderr)
    return key


def _hold_kind(hold_id: str) -> str:
    # Hold IDs are the IDs of the freeze (fz-) or seal (sl-) actions that placed them.
    if hold_id.startswith("fz-"):
        return "freeze"
    if hold_id.startswith("sl-"):
        return "seal"
    raise SystemExit(f"error: --hold {hold_id!r}: not a hold ID (freeze holds start fz-, seals sl-)")


def build(args: argparse.Namespace) -> tuple[str, object]:
    """The RPC method name and request of an action command."""
    case = case_ref(args)
    key = _key(args)
    command = args.command
    if command == "freeze":
        return "Freeze", control_pb2.FreezeFundsRequest(
            idempotency_key=key, case=case, agency_id=args.agency, subject=subject(args.subject, args.name),
            account_number=args.account, amount_fen=args.amount_fen, expires_at=expiry(args.expires),
        )
    if command == "renew":
        method = "RenewFreeze" if _hold_kind(args.hold) == "freeze" else "RenewSeal"
        return method, control_pb2.RenewHoldRequest(
            idempotency_key=key, case=case, hold_id=args.hold, expires_at=expiry(args.expires)
        )
    if command == "release":
        if _hold_kind(args.hold) == "seal":
            if args.amount_fen:
                raise SystemExit("error: --amount-fen: a seal is released whole")
            return "ReleaseSeal", control_pb2.ReleaseSealRequest(idempotency_key=key, case=case, hold_id=args.hold)
        return "ReleaseFreeze", control_pb2.ReleaseFreezeRequest(
            idempotency_key=key, case=case, hold_id=args.hold, amount_fen=args.amount_fen
        )
    if command in ("unseal", "release-seal"):
        return "ReleaseSeal", control_pb2.ReleaseSealRequest(idempotency_key=key, case=case, hold_id=args.hold)
    if command == "deduct":
        request = control_pb2.DeductFundsRequest(
            idempotency_key=key, case=case, amount_fen=args.amount_fen,
            court_account=bank_pb2.CourtAccount(
                bank_name=args.court_bank, account_number=args.court_account, account_name=args.court_account_name
            ),
        )
        if args.hold:
            request.hold_id = args.hold
        else:
            if not (args.agency and args.account and args.subject):
                raise SystemExit("error: deduct from a freeze (--hold) or from an account (--agency, --account, --subject)")
            request.account.CopyFrom(control_pb2.DirectSource(
                agency_id=args.agency, subject=subject(args.subject, args.name), account_number=args.account
            ))
        return "Deduct", request
    if command == "seal":
        return "Seal", control_pb2.SealAssetRequest(
            idempotency_key=key, case=case, agency_id=args.agency, subject=subject(args.subject, args.name),
            asset_id=args.asset, expires_at=expiry(args.expires),
        )
    if command == "transfer":
        return "Transfer", control_pb2.TransferPropertyRequest(
            idempotency_key=key, case=case, hold_id=args.hold, buyer=subject(args.buyer, args.buyer_name),
            ruling_number=args.ruling, price_fen=args.price_fen,
        )
    raise AssertionError(command)


async def run_action(args: argparse.Namespace) -> int:
    method, request = build(args)
    async with channel_for(args) as channel:
        stub = control_pb2_grpc.EnforcementControlStub(channel)
        try:
            action = await getattr(stub, method)(request, timeout=TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            refused = _refused_action(exc)
            if refused is None:
                raise
            if args.json:
                print(to_json(refused))
            else:
                print(render.action_report(refused))
            print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return EXIT_REFUSED
    print(to_json(action) if args.json else render.action_report(action))
    return EXIT_PENDING if action.state == control_pb2.ACTION_STATE_PENDING else 0


def _refused_action(exc: grpc.aio.AioRpcError) -> control_pb2.Action | None:
    """The recorded action a refusal carries in its status details, if any."""
    status = rpc_status.from_call(exc)
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(control_pb2.Action.DESCRIPTOR):
            action = control_pb2.Action()
            detail.Unpack(action)
            return action
    return None


async def run_case(args: argparse.Namespace) -> int:
    # Registering needs the admin role; the development token has both.
    roles = ("executor", "admin") if args.case_command == "register" else ("executor",)
    async with channel_for(args, roles) as channel:
        stub = control_pb2_grpc.EnforcementControlStub(channel)
        if args.case_command == "register":
            debtors = []
            for spec in args.debtor:
                id_number, _, name = spec.partition(":")
                debtors.append(subject(id_number, name))
            case = await stub.RegisterCase(
                control_pb2.RegisterCaseRequest(
                    case=case_ref(args), debtors=debtors, amount_owed_fen=args.owed_fen, costs_fen=args.costs_fen,
                    executor_ids=[e for e in (args.executors or "").split(",") if e],
                ),
                timeout=TIMEOUT_S,
            )
        else:
            case = await stub.GetCase(control_pb2.GetCaseRequest(case_number=args.case.strip()), timeout=TIMEOUT_S)
    print(to_json(case) if args.json else render.case_report(case))
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """The control commands, added to the `chakong` parser."""

    def common(parser: argparse.ArgumentParser, *, action: bool = True) -> None:
        parser.add_argument("--case", required=True, help="case number 案号, e.g. '(2024)皖01执123号'")
        parser.add_argument("--court", default=None, help=COURT_HELP)
        parser.add_argument("--executor", default=None, help=EXECUTOR_HELP)
        parser.add_argument("--document", default="", help="legal document number (default: the case number)")
        if action:
            parser.add_argument("--idempotency-key", default="",
                                help="reuse to retry a request safely (default: a new one, printed on stderr)")
        parser.add_argument("--json", action="store_true", help="print the answer as JSON")

    def debtor_args(parser: argparse.ArgumentParser, required: bool = True) -> None:
        parser.add_argument("--subject", required=required, help="the debtor's ID number")
        parser.add_argument("--name", default="", help="the debtor's name (default: as registered in the case)")

    case = commands.add_parser("case", help="register or show a case")
    case_commands = case.add_subparsers(dest="case_command", required=True)
    register = case_commands.add_parser("register", help="register a case with its debtors and what they owe")
    common(register, action=False)
    register.add_argument("--debtor", action="append", required=True, metavar="ID[:NAME]",
                          help="a debtor; repeat for several")
    register.add_argument("--owed-fen", type=int, required=True, help="amount owed under the judgment, in fen")
    register.add_argument("--costs-fen", type=int, default=0, help="enforcement costs, in fen")
    register.add_argument("--executors", default="",
                          help="comma-separated executor IDs assigned to the case (default: --executor)")
    register.set_defaults(run=run_case)
    show = case_commands.add_parser("show", help="the case, its holds and every action with its state")
    show.add_argument("--case", required=True)
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=run_case)

    freeze = commands.add_parser("freeze", help="freeze an amount on a debtor's account (冻结)")
    common(freeze)
    freeze.add_argument("--agency", required=True, help="bank agency ID (see `chakong agencies`)")
    debtor_args(freeze)
    freeze.add_argument("--account", required=True, help="account number")
    freeze.add_argument("--amount-fen", type=int, required=True)
    freeze.add_argument("--expires", help="YYYY-MM-DD or RFC 3339 (default: the statutory maximum, 1 year)")

    renew = commands.add_parser("renew", help="renew a freeze or seal before it expires (续冻/续封)")
    common(renew)
    renew.add_argument("--hold", required=True, help="hold ID (the freeze's or seal's action ID)")
    renew.add_argument("--expires", help="default: the statutory maximum from now")

    release = commands.add_parser("release", help="release a freeze, whole or in part, or a seal (解冻/解封)")
    common(release)
    release.add_argument("--hold", required=True)
    release.add_argument("--amount-fen", type=int, default=0, help="release only this much (default: all)")

    for name in ("unseal", "release-seal"):
        unseal = commands.add_parser(name, help="release a seal (解封)")
        common(unseal)
        unseal.add_argument("--hold", required=True)

    deduct = commands.add_parser("deduct", help="deduct funds to the court's account (扣划)")
    common(deduct)
    deduct.add_argument("--hold", help="deduct from this freeze")
    deduct.add_argument("--agency", help="or deduct directly from an account at this bank")
    deduct.add_argument("--account")
    debtor_args(deduct, required=False)
    deduct.add_argument("--amount-fen", type=int, required=True)
    deduct.add_argument("--court-bank", default=os.environ.get("CHAKONG_COURT_BANK", ""),
                        required="CHAKONG_COURT_BANK" not in os.environ, help="env CHAKONG_COURT_BANK")
    deduct.add_argument("--court-account", default=os.environ.get("CHAKONG_COURT_ACCOUNT", ""),
                        required="CHAKONG_COURT_ACCOUNT" not in os.environ, help="env CHAKONG_COURT_ACCOUNT")
    deduct.add_argument("--court-account-name", default=os.environ.get("CHAKONG_COURT_ACCOUNT_NAME", ""),
                        required="CHAKONG_COURT_ACCOUNT_NAME" not in os.environ,
                        help="env CHAKONG_COURT_ACCOUNT_NAME")

    seal = commands.add_parser("seal", help="seal a vehicle or a property (查封)")
    common(seal)
    seal.add_argument("--agency", required=True, help="vehicle or real-estate registry ID")
    debtor_args(seal)
    seal.add_argument("--asset", required=True, help="plate number or property certificate number")
    seal.add_argument("--expires", help="default: the statutory maximum (vehicles 2 years, property 3)")

    transfer = commands.add_parser("transfer", help="transfer a sealed property to the buyer at a court sale (过户)")
    common(transfer)
    transfer.add_argument("--hold", required=True, help="this case's seal on the property")
    transfer.add_argument("--buyer", required=True, help="the buyer's ID number")
    transfer.add_argument("--buyer-name", required=True)
    transfer.add_argument("--ruling", required=True, help="the ruling confirming the sale (成交裁定书)")
    transfer.add_argument("--price-fen", type=int, required=True)

    for parser in (freeze, renew, release, deduct, seal, transfer, *(commands.choices[n] for n in ("unseal", "release-seal"))):
        parser.set_defaults(run=run_action)
