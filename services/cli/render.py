"""Plain-text rendering of gateway answers for a terminal."""

import unicodedata

from protos.bank.v1 import bank_pb2
from protos.gateway.v1 import gateway_pb2
from protos.realestate.v1 import realestate_pb2
from protos.vehicle.v1 import vehicle_pb2


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


def status_label(status: int) -> str:
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
        status_label(result.status),
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


def summary_text(response: gateway_pb2.AssetQueryResponse) -> str:
    s = response.summary
    state = "complete" if response.complete else "PARTIAL (some agencies did not answer)"
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
