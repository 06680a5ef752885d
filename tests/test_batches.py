"""Batch asset queries over HTTP against real agencies, on SQLite and PostgreSQL: submit, watch, export, bad rows."""

import asyncio
import csv
import io
import json
import sys

import openpyxl
import pytest

from services.gateway.batch.export import COLUMNS
from tests.support.auth import issue_token
from tests.support.agencies import start_agencies
from tests.support.batch import batch, csv_bytes, register_cases, results, submit_csv, wait_ended, xlsx_bytes
from tests.support.control import control_stack
from tests.support.gateway import wrong_check_character
from tests.support.harness import REPO
from tests.support.metrics import calls_served


@pytest.mark.timeout(300)
async def test_a_1000_row_batch_is_answered_and_its_exports_agree(healthy, tmp_path, ledger_url):
    async with control_stack(tmp_path, healthy, ledger_url, batch_concurrency=64) as stack:
        session = stack.http.session
        rows = await register_cases(session, 1000)
        status, submitted = await submit_csv(session, csv_bytes(rows))
        assert status == 202, submitted
        assert submitted["total"] == 1000 and submitted["rejected"] == [] and submitted["state"] == "RUNNING"
        ended = await wait_ended(session, submitted["batch_id"], timeout=240)
        assert ended["state"] == "DONE" and ended["done"] == 1000, ended
        assert set(ended["agencies"]) == {a.id for a in healthy}
        for counts in ended["agencies"].values():
            assert counts == {"ok": 1000, "timeout": 0, "error": 0, "pending": 0}, ended
        assert ended["eta_seconds"] == 0

        records = [json.loads(line) for line in (await results(session, ended["batch_id"], "jsonl")).splitlines()]
        assert [r["line"] for r in records] == list(range(2, 1002))
        assert [(r["case_number"], r["debtor_id"]) for r in records] == [(r["case_number"], r["debtor_id"])
                                                                          for r in rows]
        assert all(r["summary"]["agencies_ok"] == len(healthy) for r in records)
        expected = _lines_of(records)
        assert sum(1 for line in expected if line["asset_type"]) > 0, "the seeded debtors hold some assets"

        text = (await results(session, ended["batch_id"], "csv")).decode("utf-8-sig")
        read = list(csv.DictReader(io.StringIO(text)))
        assert tuple(read[0].keys()) == COLUMNS
        assert [_key(line) for line in read] == [_key(line) for line in expected]

        workbook = openpyxl.load_workbook(io.BytesIO(await results(session, ended["batch_id"], "xlsx")),
                                          read_only=True)
        sheet = list(workbook.worksheets[0].iter_rows(values_only=True))
        workbook.close()
        assert tuple(sheet[0]) == COLUMNS
        from_xlsx = [dict(zip(COLUMNS, ("" if v is None else str(v) for v in values))) for values in sheet[1:]]
        assert [_key(line) for line in from_xlsx] == [_key(line) for line in expected]


def _lines_of(records: list[dict]) -> list[dict]:
    """What the CSV lines must say, from the JSON results: one per asset, or one per agency with none."""
    lines = []
    for record in records:
        for agency in record["agencies"]:
            assets = ([("account", a["account_number"], int(a["balance_fen"])) for a in agency["accounts"]]
                      + [("vehicle", v["plate"], None) for v in agency["vehicles"]]
                      + [("property", p["certificate_number"], None) for p in agency["properties"]])
            for kind, asset_id, balance in assets or [("", "", None)]:
                lines.append({"line": str(record["line"]), "debtor_id": record["debtor_id"],
                              "agency_id": agency["agency_id"], "status": agency["status"], "asset_type": kind,
                              "asset_id": asset_id, "balance_fen": "" if balance is None else str(balance),
                              "balance_yuan": "" if balance is None else f"{balance // 100}.{balance % 100:02d}"})
    return lines


def _key(line: dict) -> tuple:
    return tuple(str(line[c]) for c in ("line", "debtor_id", "agency_id", "status", "asset_type", "asset_id",
                                        "balance_fen", "balance_yuan"))


async def test_malformed_rows_are_reported_by_line_and_field_and_the_rest_complete(healthy, tmp_path, ledger_url):
    async with control_stack(tmp_path, healthy, ledger_url) as stack:
        session = stack.http.session
        rows = await register_cases(session, 6)
        good = csv_bytes(rows).decode().splitlines()
        bad_check = dict(rows[1], debtor_id=wrong_check_character(rows[1]["debtor_id"]))
        lines = [
            good[0],
            good[1],                                                    # line 2: runs
            csv_bytes([bad_check]).decode().splitlines()[1],           # line 3: bad check character
            ",".join(good[3].split(",")[:3]),                          # line 4: debtor_id and debtor_name missing
            good[1],                                                    # line 5: a duplicate of line 2
            good[4],                                                    # line 6: runs
        ]
        data = "\n".join(lines).encode() + b"\n" + good[5].encode().replace(b",", b",\xff", 1) + b"\n" + \
            good[6].encode() + b"\n"                                    # line 7: a byte not UTF-8; line 8: runs
        status, submitted = await submit_csv(session, data)
        assert status == 202, submitted
        rejected = {r["line"]: r for r in submitted["rejected"]}
        assert sorted(rejected) == [3, 4, 5, 7], submitted["rejected"]
        assert rejected[3]["field"] == "debtor_id" and "check" in rejected[3]["rule"]
        assert rejected[4]["field"] == "debtor_id" and "missing" in rejected[4]["rule"]
        assert rejected[5]["field"] == "debtor_id" and "line 2" in rejected[5]["rule"]
        assert rejected[7]["field"] == "court_code" and "UTF-8" in rejected[7]["rule"]
        assert submitted["total"] == 3
        ended = await wait_ended(session, submitted["batch_id"])
        assert ended["state"] == "DONE" and ended["done"] == 3 and ended["rejected"] == submitted["rejected"]
        records = [json.loads(x) for x in (await results(session, ended["batch_id"], "jsonl")).splitlines()]
        assert [r["line"] for r in records] == [2, 6, 8]


async def test_an_xlsx_case_list_runs_and_its_progress_streams_as_events(healthy, tmp_path, ledger_url):
    async with control_stack(tmp_path, healthy, ledger_url) as stack:
        session = stack.http.session
        rows = await register_cases(session, 5)
        async with session.post("/v1/batches", data=xlsx_bytes(rows), headers={
                "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}) as response:
            assert response.status == 202, await response.text()
            submitted = await response.json()
        events = []
        async with session.get(f"/v1/batches/{submitted['batch_id']}/events") as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    events.append([line.removeprefix("event: ")])
                elif line.startswith("data: "):
                    events[-1].append(json.loads(line.removeprefix("data: ")))
        assert [name for name, _ in events[:-1]] == ["progress"] * (len(events) - 1) and events[-1][0] == "done"
        dones = [data["done"] for _, data in events]
        assert dones == sorted(dones) and events[-1][1]["state"] == "DONE" and dones[-1] == 5, events
        ended = await wait_ended(session, submitted["batch_id"])
        assert ended == events[-1][1]


async def test_too_many_rows_or_bytes_is_413_and_a_header_without_debtor_id_is_400(healthy, tmp_path, ledger_url):
    async with control_stack(tmp_path, healthy, ledger_url, batch_max_rows=3, batch_max_upload_bytes=2048) as stack:
        session = stack.http.session
        rows = await register_cases(session, 4)
        status, body = await submit_csv(session, csv_bytes(rows))
        assert status == 413 and body["error"]["field"] == "rows", body
        status, body = await submit_csv(session, csv_bytes(rows) + b"\n" * 2048)
        assert status == 413 and body["error"]["field"] == "body", body
        status, body = await submit_csv(session, csv_bytes(rows[:2], columns=("case_number", "debtor_name")))
        assert status == 400 and body["error"]["field"] == "debtor_id", body
        # Every row refused: accepted, DONE at once, nothing dropped silently.
        bad = [dict(row, debtor_id=wrong_check_character(row["debtor_id"])) for row in rows[:2]]
        status, body = await submit_csv(session, csv_bytes(bad))
        assert status == 202 and body["state"] == "DONE" and body["total"] == 0, body
        assert [r["line"] for r in body["rejected"]] == [2, 3]


async def chakong(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli.main", *args, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, out.decode(), err.decode()


@pytest.mark.timeout(180)
async def test_the_cli_submits_watches_and_downloads_the_results(healthy, tmp_path, ledger_url):
    async with control_stack(tmp_path, healthy, ledger_url) as stack:
        rows = await register_cases(stack.http.session, 40)
        (tmp_path / "cases.csv").write_bytes(csv_bytes(rows))
        gateway = ["--gateway", stack.grpc_address, "--token", issue_token("E0001", "340100", ("executor",))]
        code, out, err = await chakong(*gateway, "batch", "submit", str(tmp_path / "cases.csv"), "--watch")
        assert code == 0, (out, err)
        batch_id = out.split()[1].rstrip(":")
        assert "DONE, 40 of 40 rows done" in out, out
        code, out, err = await chakong(*gateway, "batch", "status", batch_id, "--json")
        assert code == 0 and json.loads(out)["state"] == "DONE", (out, err)
        code, out, err = await chakong(*gateway, "batch", "results", batch_id, "--format", "xlsx",
                                       "-o", str(tmp_path / "results.xlsx"))
        assert code == 0, err
        workbook = openpyxl.load_workbook(tmp_path / "results.xlsx", read_only=True)
        lines = {values[0] for values in list(workbook.worksheets[0].iter_rows(values_only=True))[1:]}
        workbook.close()
        assert lines == set(range(2, 42))
        code, out, err = await chakong(*gateway, "batch", "cancel", batch_id)
        assert code == 0 and "DONE" in out, (out, err)


@pytest.mark.timeout(120)
async def test_cancelling_stops_new_calls_and_keeps_what_was_answered(healthy, tmp_path, start_service, ledger_url):
    (slow,) = start_agencies(start_service, ("slow-bank", "bank", {"FAULT_LATENCY_P50_MS": "200"}))
    async with control_stack(tmp_path, [healthy[0], slow], ledger_url, batch_concurrency=4) as stack:
        session = stack.http.session
        rows = await register_cases(session, 100)
        status, submitted = await submit_csv(session, csv_bytes(rows))
        assert status == 202, submitted
        batch_id = submitted["batch_id"]
        while (await batch(session, batch_id))["done"] < 8:
            await asyncio.sleep(0.1)
        async with session.post(f"/v1/batches/{batch_id}/cancel") as response:
            assert response.status == 200
            cancelled = await response.json()
        assert cancelled["state"] == "CANCELLED" and cancelled["cancelled"] > 50, cancelled
        calls = calls_served(slow, "QueryAccounts")
        await asyncio.sleep(1.0)
        # At most the calls already in flight finish; nothing new is asked.
        assert calls_served(slow, "QueryAccounts") - calls <= 4
        ended = await batch(session, batch_id)
        assert ended["state"] == "CANCELLED" and ended["done"] + ended["cancelled"] <= 100
        records = [json.loads(x) for x in (await results(session, batch_id, "jsonl")).splitlines()]
        done = [r for r in records if r["item_state"] == "DONE"]
        assert len(done) == ended["done"] >= 8
        assert all(a["status"] == "OK" for r in done for a in r["agencies"])
