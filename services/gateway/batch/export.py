"""A batch's results in stable columns: CSV and XLSX (one line per asset found), JSON lines (one per row).

The columns (`COLUMNS`) are a contract: new ones are added at the end,
none is renamed or removed. Money is given twice, in yuan (exact, two
decimals, from the integer fen) and in fen. A row whose agency found
nothing, or failed, has one line with the asset columns empty, so every
agency asked about every row shows.
"""

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass

from services.gateway.ledger.batches import AnswerRecord, BatchItem

COLUMNS = (
    "line", "case_number", "court_code", "document_number", "debtor_id", "debtor_name", "item_state",
    "agency_id", "agency_kind", "status", "arrived_at", "late", "asset_type", "asset_id", "asset_description",
    "balance_yuan", "balance_fen", "available_yuan", "available_fen", "frozen_yuan", "frozen_fen", "error",
)
# Export format -> its media type.
FORMATS = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
# The cells that hold whole numbers (XLSX writes them as numbers).
_INTEGER_COLUMNS = frozenset({"line", "balance_fen", "available_fen", "frozen_fen"})
_KINDS = {"AGENCY_KIND_BANK": "bank", "AGENCY_KIND_VEHICLE": "vehicle", "AGENCY_KIND_REALESTATE": "realestate"}


def yuan(fen: int) -> str:
    """Exact: 123456 fen is "1234.56", -5 fen "-0.05"."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def rfc3339(us: int) -> str:
    if not us:
        return ""
    return dt.datetime.fromtimestamp(us / 1_000_000, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ItemResult:
    """One row of the batch with every agency's answer."""

    item: BatchItem
    answers: tuple[AnswerRecord, ...]

    def agencies(self) -> list[dict]:
        shown = []
        for answer in self.answers:
            result = json.loads(answer.result) if answer.result else {}
            shown.append({
                "agency_id": answer.agency_id,
                "agency_kind": _KINDS.get(result.get("kind", ""), ""),
                "status": answer.status,
                "arrived_at": rfc3339(answer.arrived_at_us),
                "late": bool(answer.late),
                "error": result.get("error_message", ""),
                "accounts": result.get("accounts", []),
                "vehicles": result.get("vehicles", []),
                "properties": result.get("properties", []),
            })
        return shown

    def record(self) -> dict:
        """The JSON line: the row, a summary, and each agency's answer with its assets (proto3 JSON)."""
        agencies = self.agencies()
        accounts = [a for agency in agencies if agency["status"] == "OK" for a in agency["accounts"]]
        total = sum(int(a.get("balance_fen", 0)) for a in accounts)
        available = sum(int(a.get("available_balance_fen", 0)) for a in accounts)
        frozen = sum(int(a.get("frozen_fen", 0)) for a in accounts)
        item = self.item
        return {
            "line": item.line, "case_number": item.case_number, "court_code": item.court_code,
            "document_number": item.document_number, "debtor_id": item.subject_id, "debtor_name": item.subject_name,
            "item_state": item.state, "query_id": item.query_id,
            "summary": {
                "total_balance_fen": total, "total_balance_yuan": yuan(total),
                "available_balance_fen": available, "available_balance_yuan": yuan(available),
                "frozen_fen": frozen, "frozen_yuan": yuan(frozen),
                "accounts": len(accounts),
                "vehicles": sum(len(a["vehicles"]) for a in agencies if a["status"] == "OK"),
                "properties": sum(len(a["properties"]) for a in agencies if a["status"] == "OK"),
                "agencies_asked": len(agencies),
                "agencies_ok": sum(1 for a in agencies if a["status"] == "OK"),
            },
            "agencies": agencies,
        }

    def lines(self) -> Iterator[dict]:
        """The CSV/XLSX lines: one per asset, or one for an agency with none."""
        item = self.item
        head = {"line": item.line, "case_number": item.case_number, "court_code": item.court_code,
                "document_number": item.document_number, "debtor_id": item.subject_id,
                "debtor_name": item.subject_name, "item_state": item.state}
        for agency in self.agencies():
            base = {**head, "agency_id": agency["agency_id"], "agency_kind": agency["agency_kind"],
                    "status": agency["status"], "arrived_at": agency["arrived_at"],
                    "late": "yes" if agency["late"] else "no", "error": agency["error"]}
            assets = list(_assets(agency))
            if not assets:
                yield _full(base)
            for asset in assets:
                yield _full({**base, **asset})


def _assets(agency: dict) -> Iterator[dict]:
    for account in agency["accounts"]:
        balance = int(account.get("balance_fen", 0))
        available = int(account.get("available_balance_fen", 0))
        frozen = int(account.get("frozen_fen", 0))
        yield {"asset_type": "account", "asset_id": account.get("account_number", ""),
               "asset_description": " ".join(x for x in (account.get("type", ""), account.get("currency", ""),
                                                          account.get("branch", "")) if x),
               "balance_yuan": yuan(balance), "balance_fen": balance, "available_yuan": yuan(available),
               "available_fen": available, "frozen_yuan": yuan(frozen), "frozen_fen": frozen}
    for vehicle in agency["vehicles"]:
        yield {"asset_type": "vehicle", "asset_id": vehicle.get("plate", ""),
               "asset_description": " ".join(x for x in (vehicle.get("brand", ""), vehicle.get("model", ""),
                                                          vehicle.get("vin", "")) if x)}
    for prop in agency["properties"]:
        yield {"asset_type": "property", "asset_id": prop.get("certificate_number", ""),
               "asset_description": " ".join(x for x in (prop.get("address", ""), f"{prop.get('area_m2', '')} m²")
                                             if x)}


def _full(values: dict) -> dict:
    return {column: values.get(column, "") for column in COLUMNS}


def csv_text(lines: list[dict], header: bool) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\r\n")
    if header:
        writer.writeheader()
    writer.writerows(lines)
    return out.getvalue()


def xlsx_bytes(lines: list[dict]) -> bytes:
    """A workbook with one sheet, "results"; integers as numbers, everything else as text. Blocking."""
    import openpyxl

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("results")
    sheet.append(list(COLUMNS))
    for line in lines:
        sheet.append([line[c] if c in _INTEGER_COLUMNS and line[c] != "" else str(line[c]) for c in COLUMNS])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
