"""Plain-text rendering of gateway answers (queries, actions, cases) for a terminal."""

import datetime as dt
import json
import unicodedata

from google.protobuf import json_format

from protos.bank.v1 import bank_pb2
from protos.common.v1 import common_pb2
from protos.gateway.v1 import control_pb2, gateway_pb2
from protos.realestate.v1 import realestate_pb2
from protos.vehicle.v1 import vehicle_pb2
from services.common.logs import mask_id


_BEIJING = dt.timezone(dt.timedelta(hours=8))


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


def width(text: str) -> int:
    """Columns the text takes in a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, columns: int) -> str:
    return text + " " * max(0, columns - width(text))


def table(headers: list[str], rows: list[list[str]]) -> str:
    columns = [max(width(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(pad(c, w) for c, w in zip(row, columns)).rstrip() for row in [headers, *rows]]
    lines.insert(1, "  ".join("-" * w for w in columns))
    return "\n".join(lines)


def _enum_label(enum, value: int) -> str:
    name = enum.Name(value) if value in enum.values() else str(value)
    return name.split("_", 2)[-1].lower().replace("_", " ")


# The gateway's prefix for an answer it rejected (services/gateway/query/answers.py).
INVALID_PREFIX = "invalid response from agency: "


def invalid(result: gateway_pb2.AgencyResult) -> bool:
    """The agency answered, but with something that breaks the contract (not: did not answer)."""
    return result.status == gateway_pb2.AGENCY_STATUS_ERROR and result.error_message.startswith(INVALID_PREFIX)


def status_label(status: int, result: gateway_pb2.AgencyResult | None = None) -> str:
    if result is not None and invalid(result):
        return "INVALID"
    return gateway_pb2.AgencyStatus.Name(status).removeprefix("AGENCY_STATUS_")


def asset_count(result: gateway_pb2.AgencyResult) -> str:
    if result.status != gateway_pb2.AGENCY_STATUS_OK:
        return result.error_message
    parts = []
    if result.accounts:
        parts.append(f"{len(result.accounts)} account(s), {yuan(sum(a.balance_fen for a in result.accounts))}")
    if result.vehicles:
        parts.append(f"{len(result.vehicles)} vehicle(s)")
    if result.properties:
        parts.append(f"{len(result.properties)} propert{'y' if len(result.properties) == 1 else 'ies'}")
    return ", ".join(parts) or "nothing found"


def result_row(result: gateway_pb2.AgencyResult) -> list[str]:
    return [
        result.display_name or result.agency_id,
        result.agency_id,
        status_label(result.status, result),
        f"{result.latency_ms:.0f} ms",
        asset_count(result),
    ]


RESULT_HEADERS = ["Agency 机构", "ID", "Status", "Latency", "Found"]


def asset_lines(result: gateway_pb2.AgencyResult) -> list[str]:
    lines = []
    for account in result.accounts:
        lines.append(
            f"  {result.agency_id:<10} account  {account.account_number}  "
            f"{_enum_label(bank_pb2.AccountType, account.type)}  balance {yuan(account.balance_fen)}  "
            f"available {yuan(account.available_balance_fen)}  frozen {yuan(account.frozen_fen)}"
        )
    for vehicle in result.vehicles:
        lines.append(
            f"  {result.agency_id:<10} vehicle  {vehicle.plate}  {vehicle.brand} {vehicle.model}  "
            f"{vehicle.color}  {_enum_label(vehicle_pb2.VehicleStatus, vehicle.status)}  seals {len(vehicle.seals)}"
        )
    for prop in result.properties:
        lines.append(
            f"  {result.agency_id:<10} property {prop.certificate_number}  {prop.address}  "
            f"{prop.area_m2:.2f} m²  {_enum_label(realestate_pb2.PropertyUse, prop.use)}  "
            f"mortgages {len(prop.mortgages)}  seals {len(prop.seals)}"
        )
    return lines


def partial_reason(results) -> str:
    """Why a query is partial, in words: who did not answer, who answered wrongly, who refused."""
    silent = sum(r.status in (gateway_pb2.AGENCY_STATUS_TIMEOUT, gateway_pb2.AGENCY_STATUS_UNAVAILABLE)
                 for r in results)
    wrong = sum(invalid(r) for r in results)
    errors = sum(r.status == gateway_pb2.AGENCY_STATUS_ERROR for r in results) - wrong
    parts = [f"{silent} did not answer"] * bool(silent) + [f"{wrong} answered with an invalid response"] * bool(wrong)
    parts += [f"{errors} answered with an error"] * bool(errors)
    return ", ".join(parts) or "some agencies did not answer"


def summary_text(response: gateway_pb2.AssetQueryResponse, results=None) -> str:
    s = response.summary
    state = "complete" if response.complete else f"PARTIAL ({partial_reason(results or response.results)})"
    return (
        f"Summary: {s.agencies_ok}/{s.agencies_asked} agencies OK, {state}, {response.latency_ms:.0f} ms\n"
        f"  accounts {s.account_count}  balance {yuan(s.total_balance_fen)}  "
        f"available {yuan(s.available_balance_fen)}  frozen {yuan(s.frozen_fen)}\n"
        f"  vehicles {s.vehicle_count}  properties {s.property_count}"
    )


def query_report(response: gateway_pb2.AssetQueryResponse) -> str:
    parts = [f"Request {response.request_id}", table(RESULT_HEADERS, [result_row(r) for r in response.results])]
    details = [line for r in response.results for line in asset_lines(r)]
    if details:
        parts.append("Assets:\n" + "\n".join(details))
    parts.append(summary_text(response))
    return "\n\n".join(parts)


# Control: actions and cases


def _when(ts) -> str:
    """A timestamp in Beijing time, to the second."""
    if not ts.seconds and not ts.nanos:
        return "-"
    moment = ts.ToDatetime(tzinfo=_BEIJING)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _hold_state(state: int) -> str:
    return common_pb2.HoldState.Name(state).removeprefix("HOLD_STATE_")


def action_kind(kind: int) -> str:
    return control_pb2.ActionKind.Name(kind).removeprefix("ACTION_KIND_").lower().replace("_", " ")


def action_state(state: int) -> str:
    return control_pb2.ActionState.Name(state).removeprefix("ACTION_STATE_")


def action_result(action: control_pb2.Action) -> str:
    """What the agency did, in one line."""
    which = action.WhichOneof("result")
    if which == "freeze":
        f = action.freeze
        text = f"freeze {f.freeze_id} {_hold_state(f.state)} frozen {yuan(f.frozen_fen)}"
        if f.shortfall_fen:
            text += f" (shortfall {yuan(f.shortfall_fen)})"
        if f.queue_position:
            text += f" queue #{f.queue_position}"
        return text + f" until {_when(f.expires_at)}"
    if which == "deduction":
        d = action.deduction
        return (f"deduction {d.deduction_id} {yuan(d.amount_fen)} to {d.court_account.account_name};"
                f" {yuan(d.freeze.frozen_fen)} stays frozen")
    if which == "seal":
        s = action.seal
        text = f"seal {s.seal_id} {_hold_state(s.state)}"
        if s.queue_position:
            text += f" queue #{s.queue_position}"
        return text + f" until {_when(s.expires_at)}"
    if which == "transfer":
        t = action.transfer
        return f"transfer {t.transfer_id} to {t.buyer.name}, new certificate {t.new_certificate_number}"
    if action.error_code:
        return f"{action.error_code}: {action.error_message}"
    return ""


def action_report(action: control_pb2.Action) -> str:
    head = f"{action_kind(action.kind)} {action.action_id}: {action_state(action.state)}"
    lines = [head]
    if action.hold_id:
        lines.append(f"  hold        {action.hold_id}")
    lines.append(f"  case        {action.case_number} (court {action.court_code}) at {action.agency_id}")
    if action.amount_fen:
        lines.append(f"  amount      {yuan(action.amount_fen)}")
    result = action_result(action)
    if result:
        lines.append(f"  result      {result}")
    lines.append(f"  attempts    {action.attempts}   key {action.idempotency_key}")
    if action.state == control_pb2.ACTION_STATE_PENDING and action.error_code == "INVALID_RESPONSE":
        lines.append(f"  the agency answered with an invalid response ({action.error_message.split(': ', 1)[-1]});"
                     " nothing is recorded as done: the gateway asks again with the same key")
    elif action.state == control_pb2.ACTION_STATE_PENDING:
        lines.append("  the agency has not confirmed it yet; the gateway keeps trying with the same key")
    return "\n".join(lines)


def case_report(case: control_pb2.Case) -> str:
    ref = case.case
    debtors = ", ".join(f"{d.name or '?'} {mask(d.id_number)}" for d in case.debtors)
    parts = [
        f"Case {ref.case_number}  court {ref.court_code}  registered {_when(case.registered_at)}\n"
        f"  debtors   {debtors}\n"
        f"  owed {yuan(case.amount_owed_fen)} + costs {yuan(case.costs_fen)}   deducted {yuan(case.deducted_fen)}"
        f"   frozen {yuan(case.frozen_fen)}   may still freeze {yuan(case.freezable_fen)}"
    ]
    if case.holds:
        rows = []
        for hold in case.holds:
            if hold.HasField("freeze"):
                f = hold.freeze
                rows.append([hold.hold_id, hold.agency_id, hold.asset_id, "freeze", _hold_state(f.state),
                             yuan(f.frozen_fen), yuan(f.deducted_fen), _when(f.expires_at)])
            else:
                s = hold.seal
                rows.append([hold.hold_id, hold.agency_id, hold.asset_id, "seal", _hold_state(s.state),
                             "", "", _when(s.expires_at)])
        parts.append("Holds\n" + table(
            ["Hold", "Agency", "Asset", "Kind", "State", "Frozen", "Deducted", "Expires"], rows))
    if case.actions:
        rows = [
            [_when(a.created_at), a.action_id, action_kind(a.kind), action_state(a.state), a.agency_id,
             yuan(a.amount_fen) if a.amount_fen else "", str(a.attempts), action_result(a)]
            for a in case.actions
        ]
        parts.append("Actions\n" + table(
            ["Time", "Action", "Kind", "State", "Agency", "Amount", "Tries", "Result"], rows))
    else:
        parts.append("No actions yet.")
    return "\n\n".join(parts)


def mask(id_number: str) -> str:
    return mask_id(id_number)


def to_json(message) -> str:
    return json.dumps(
        json_format.MessageToDict(message, preserving_proto_field_name=True), ensure_ascii=False, indent=2
    )
