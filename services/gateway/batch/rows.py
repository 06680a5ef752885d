"""The case summary list (案件汇总查询清单): read from CSV or XLSX, and each row checked.

An upload's columns are named by its first row (English or Chinese names,
`COLUMNS`); only `case_number` and `debtor_id` are required. Every row
that breaks a rule becomes a `RejectedRow` naming its line, the column and
the rule, and the other rows run: a bad byte, a missing cell, a bad check
character, a duplicate of an earlier row. A header that lacks a required
column, or an upload with no rows at all, refuses the whole upload
(FieldError naming it).
"""

import csv
import io
from dataclasses import dataclass

from protos.common.v1 import common_pb2
from protos.gateway.v1 import batch_pb2
from services.common import identifiers
from services.common.validation import (
    MAX_DOCUMENT_NUMBER_CHARS,
    MAX_NAME_CHARS,
    FieldError,
    check_identifier,
    require_text,
    subject_type_of,
    validate_case,
    validate_subject,
)

CSV, XLSX, JSON = "csv", "xlsx", "json"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MEDIA_TYPES = {"text/csv": CSV, XLSX_MEDIA_TYPE: XLSX, "application/json": JSON}

# Column -> the header names that mean it (compared without case and surrounding spaces).
COLUMNS: dict[str, tuple[str, ...]] = {
    "case_number": ("case_number", "案号"),
    "court_code": ("court_code", "法院代码"),
    "document_number": ("document_number", "文书号", "法律文书号"),
    "debtor_id": ("debtor_id", "证件号码", "被执行人证件号码"),
    "debtor_name": ("debtor_name", "姓名", "被执行人", "被执行人姓名"),
}
REQUIRED = ("case_number", "debtor_id")
_BY_NAME = {name.casefold(): column for column, names in COLUMNS.items() for name in names}


class TooManyRows(FieldError):
    """More rows than a batch may hold: 413, not 400."""


@dataclass(frozen=True)
class CheckedRow:
    """A row that may run: its case and debtor, as every agency is asked about them."""

    line: int
    case: common_pb2.CaseRef
    subject: common_pb2.Subject


def _header(cells: list[str]) -> list[str | None]:
    columns: list[str | None] = []
    for cell in cells:
        column = _BY_NAME.get(cell.strip().lstrip("\ufeff").casefold())
        if column is not None and column in columns:
            raise FieldError(column, f"the header names column {column} twice")
        columns.append(column)
    for column in REQUIRED:
        if column not in columns:
            raise FieldError(column, f"the header has no column {column} (or {' / '.join(COLUMNS[column][1:])});"
                                     f" it names: {', '.join(c.strip() for c in cells) or 'nothing'}")
    return columns


def _row(line: int, columns: list[str | None], cells: list[str],
         unread: list[batch_pb2.RejectedRow]) -> batch_pb2.BatchRow | None:
    """The row's cells by column, or None with the reason appended to `unread`."""
    for column, cell in zip(columns, cells):
        bad = next((c for c in cell if "\udc80" <= c <= "\udcff"), None)
        if bad is not None:
            unread.append(batch_pb2.RejectedRow(
                line=line, field=column or "", rule=f"is not valid UTF-8 (byte 0x{ord(bad) - 0xDC00:02X})"))
            return None
    if len(cells) < len(columns):
        missing = next(c for c in columns[len(cells):] if c is not None) if any(columns[len(cells):]) else ""
        unread.append(batch_pb2.RejectedRow(
            line=line, field=missing or "", rule=f"is missing: the row has {len(cells)} of {len(columns)} columns"))
        return None
    if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns):]):
        unread.append(batch_pb2.RejectedRow(
            line=line, field="", rule=f"has {len(cells)} cells, more than the header's {len(columns)} columns"))
        return None
    row = batch_pb2.BatchRow(line=line)
    for column, cell in zip(columns, cells):
        if column is not None:
            setattr(row, column, cell)
    return row


def read_csv(data: bytes, max_rows: int) -> batch_pb2.SubmitBatchRequest:
    """UTF-8 (with or without a BOM); a byte that is not UTF-8 costs its row only."""
    text = data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    request = batch_pb2.SubmitBatchRequest()
    try:
        header = next(reader, None)
        if header is None:
            raise FieldError("body", "is empty; expected a header row and one row per debtor")
        if any("\udc80" <= c <= "\udcff" for cell in header for c in cell):
            raise FieldError("body", "line 1 (the header) is not valid UTF-8")
        columns = _header(header)
        for cells in reader:
            if not cells or not any(cell.strip() for cell in cells):
                continue
            _count(request, max_rows)
            row = _row(reader.line_num, columns, cells, request.unread)
            if row is not None:
                request.rows.append(row)
    except csv.Error as exc:
        raise FieldError("body", f"line {reader.line_num}: not readable as CSV ({exc})") from None
    return request


def read_xlsx(data: bytes, max_rows: int) -> batch_pb2.SubmitBatchRequest:
    """The workbook's first sheet; line numbers are its row numbers."""
    import zipfile

    import openpyxl

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise FieldError("body", f"is not an XLSX workbook ({type(exc).__name__})") from None
    request = batch_pb2.SubmitBatchRequest()
    try:
        rows = workbook.worksheets[0].iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise FieldError("body", "the first sheet is empty; expected a header row and one row per debtor")
        columns = _header(["" if v is None else str(v) for v in header])
        for line, values in enumerate(rows, start=2):
            if all(v is None or str(v).strip() == "" for v in values):
                continue
            _count(request, max_rows)
            cells = []
            for column, value in zip(columns, values):
                if isinstance(value, float) and column is not None:
                    # A long ID typed as a number has lost digits already.
                    request.unread.append(batch_pb2.RejectedRow(
                        line=line, field=column, rule="is a number in the sheet; format the column as text"))
                    break
                cells.append("" if value is None else str(value))
            else:
                # Trailing empty cells are not "missing": a sheet row is as wide as its widest row.
                cells += [""] * (len(columns) - len(cells))
                row = _row(line, columns, cells, request.unread)
                if row is not None:
                    request.rows.append(row)
    finally:
        workbook.close()
    return request


def _count(request: batch_pb2.SubmitBatchRequest, max_rows: int) -> None:
    if len(request.rows) + len(request.unread) >= max_rows:
        raise TooManyRows("rows", f"a batch holds at most {max_rows} rows; split the list")


def check_rows(request: batch_pb2.SubmitBatchRequest, court_code: str, executor_id: str,
               max_rows: int) -> tuple[list[CheckedRow], list[batch_pb2.RejectedRow]]:
    """The rows that may run and the rows refused (with those the reader could not read), by line."""
    if len(request.rows) + len(request.unread) > max_rows:
        raise TooManyRows("rows", f"a batch holds at most {max_rows} rows; split the list")
    rejected = list(request.unread)
    good: list[CheckedRow] = []
    seen: dict[tuple[str, str], int] = {}
    lines: set[int] = {r.line for r in request.unread}
    for position, row in enumerate(request.rows, start=1):
        line = row.line or position
        if line in lines:
            rejected.append(batch_pb2.RejectedRow(line=line, field="line", rule="is given to two rows"))
            continue
        lines.add(line)
        try:
            checked = _check(row, line, court_code, executor_id)
        except FieldError as error:
            rejected.append(batch_pb2.RejectedRow(line=line, field=error.field, rule=error.rule))
            continue
        key = (checked.case.case_number, checked.subject.id_number)
        if key in seen:
            rejected.append(batch_pb2.RejectedRow(
                line=line, field="debtor_id", rule=f"duplicates line {seen[key]} (same case and debtor)"))
            continue
        seen[key] = line
        good.append(checked)
    rejected.sort(key=lambda r: r.line)
    return good, rejected


def _check(row: batch_pb2.BatchRow, line: int, court_code: str, executor_id: str) -> CheckedRow:
    case_number = check_identifier(identifiers.check_case_number, row.case_number.strip(), "case_number")
    case = common_pb2.CaseRef(
        case_number=identifiers.normal_case_number(case_number),
        court_code=row.court_code.strip() or court_code,
        executor_id=executor_id,
        document_number=row.document_number.strip() or case_number,
    )
    try:
        validate_case(case, "")
    except FieldError as error:
        raise FieldError(error.field.removeprefix("."), error.rule) from None
    if len(case.document_number) > MAX_DOCUMENT_NUMBER_CHARS:
        raise FieldError("document_number", f"must be at most {MAX_DOCUMENT_NUMBER_CHARS} characters")
    id_number = row.debtor_id.strip().upper()
    name = row.debtor_name.strip()
    subject = common_pb2.Subject(type=subject_type_of(id_number), id_number=id_number, name=name)
    try:
        validate_subject(subject, "")
    except FieldError as error:
        field = {".id_number": "debtor_id", ".name": "debtor_name"}.get(error.field, "debtor_id")
        raise FieldError(field, error.rule) from None
    if name:
        require_text(name, "debtor_name", MAX_NAME_CHARS)
    return CheckedRow(line, case, subject)
