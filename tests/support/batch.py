"""Batches through the gateway: cases registered with many debtors, case lists as CSV and XLSX, waiting for the end."""

import asyncio
import csv
import io
import itertools
import random
import time

import aiohttp

from tests.support.auth import register_case_body
from tests.support.gateway import population

COURT = "340100"
DEBTORS_PER_CASE = 20
COLUMNS = ("case_number", "court_code", "document_number", "debtor_id", "debtor_name")
_numbers = itertools.count(random.randrange(100_000, 800_000))


def resident_debtors() -> list:
    return [s for s in population() if s.subject_type == 1]


async def register_cases(session: aiohttp.ClientSession, rows: int, *, court: str = COURT,
                         executors=("E0001",), token_headers: dict | None = None) -> list[dict]:
    """Enough cases of up to 20 debtors each for `rows` rows; the rows (as the CSV columns), in order."""
    people = resident_debtors()
    out: list[dict] = []
    cases = []
    offset = random.randrange(len(people))
    while len(out) < rows:
        number = f"(2026)皖01执{next(_numbers)}号"
        take = min(DEBTORS_PER_CASE, rows - len(out))
        debtors = [people[(offset + len(out) + i) % len(people)] for i in range(take)]
        cases.append((number, debtors))
        out.extend({"case_number": number, "court_code": court, "document_number": number,
                    "debtor_id": d.id_number, "debtor_name": d.name} for d in debtors)

    async def register(number, debtors):
        case = {"case_number": number, "court_code": court, "executor_id": executors[0], "document_number": number}
        body = register_case_body(case, [{"type": d.subject_type, "id_number": d.id_number, "name": d.name}
                                         for d in debtors], executors)
        async with session.post("/v1/cases", json=body, headers=token_headers) as response:
            assert response.status == 201, await response.text()

    for start in range(0, len(cases), 20):
        await asyncio.gather(*(register(n, d) for n, d in cases[start:start + 20]))
    return out


def csv_bytes(rows: list[dict], columns=COLUMNS) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def xlsx_bytes(rows: list[dict], columns=COLUMNS) -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(list(columns))
    for row in rows:
        sheet.append([row[c] for c in columns])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


async def submit_csv(session: aiohttp.ClientSession, data: bytes, headers: dict | None = None, **query):
    async with session.post("/v1/batches", data=data, params=query or None,
                            headers={"Content-Type": "text/csv", **(headers or {})}) as response:
        return response.status, await response.json()


async def batch(session: aiohttp.ClientSession, batch_id: str) -> dict:
    async with session.get(f"/v1/batches/{batch_id}") as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def wait_ended(session: aiohttp.ClientSession, batch_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        shown = await batch(session, batch_id)
        if shown["state"] != "RUNNING":
            return shown
        assert time.monotonic() < deadline, f"batch still running after {timeout} s: {shown}"
        await asyncio.sleep(0.2)


async def results(session: aiohttp.ClientSession, batch_id: str, fmt: str) -> bytes:
    async with session.get(f"/v1/batches/{batch_id}/results", params={"format": fmt}) as response:
        assert response.status == 200, await response.text()
        return await response.read()
