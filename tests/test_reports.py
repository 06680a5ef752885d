"""GET /v1/cases and GET /v1/reports/court: scoped to the caller's court and assignments, on both ledgers."""

from datetime import datetime, timedelta, timezone

from tests.support.auth import auth_headers, issue_token, register_case_body
from tests.support.gateway import CASE, debtor, population, query_body, running_gateway
from tests.support.tls import GatewayEndpoints

OTHER_COURT_CASE = {"case_number": "(2026)皖02执7号", "court_code": "340200", "executor_id": "E0201",
                    "document_number": "(2026)皖02执7号"}
SECOND_CASE = {"case_number": "(2026)皖01执9号", "court_code": "340100", "executor_id": "E0002",
               "document_number": "(2026)皖01执9号"}


async def get(session, url, token):
    async with session.get(url, headers=auth_headers(token)) as response:
        return response.status, await response.json()


async def test_cases_and_court_figures_are_the_callers_own(healthy, tmp_path, ledger_url):
    audit = {"audit_url": ledger_url} if ledger_url.startswith("postgresql") else {}
    async with running_gateway(tmp_path, healthy[:1], ledger_url=ledger_url, **audit) as gateway:
        endpoints = GatewayEndpoints.of(gateway)
        subject = debtor()
        other = next(s for s in population() if s.id_number != subject.id_number)
        other_debtor = [{"type": other.subject_type, "id_number": other.id_number, "name": other.name}]
        async with endpoints.session() as session:
            for case, token in ((SECOND_CASE, issue_token()), (OTHER_COURT_CASE, issue_token("A0201", "340200"))):
                async with session.post("/v1/cases", json=register_case_body(case, other_debtor),
                                        headers=auth_headers(token)) as response:
                    assert response.status == 201, await response.text()
            async with session.post("/v1/queries", json=query_body(), headers=auth_headers()) as response:
                assert response.status == 200

            admin = issue_token()
            status, body = await get(session, "/v1/cases", admin)
            assert status == 200
            assert [c["case"]["case_number"] for c in body["cases"]] == [SECOND_CASE["case_number"], CASE.case_number]
            executor = issue_token(roles=("executor",))
            _, body = await get(session, "/v1/cases", executor)
            assert [c["case"]["case_number"] for c in body["cases"]] == [CASE.case_number]
            assert body["cases"][0]["debtors"][0]["name"] == subject.name
            _, body = await get(session, "/v1/cases", issue_token("E0201", "340200", roles=("executor",)))
            assert [c["case"]["case_number"] for c in body["cases"]] == [OTHER_COURT_CASE["case_number"]]
            _, body = await get(session, f"/v1/cases?search={other.name[1:]}", admin)
            assert [c["case"]["case_number"] for c in body["cases"]] == [SECOND_CASE["case_number"]]
            _, body = await get(session, "/v1/cases?search=%25", admin)
            assert body["cases"] == []
            status, body = await get(session, "/v1/cases?limit=abc", admin)
            assert status == 400 and body["error"]["field"] == "limit"

            status, report = await get(session, "/v1/reports/court?days=3", executor)
            assert status == 200
            assert report["court_code"] == "340100" and report["time_zone"] == "Asia/Shanghai"
            today = datetime.now(timezone(timedelta(hours=8))).date()
            assert [d["date"] for d in report["days"]] == [str(today - timedelta(days=n)) for n in (2, 1, 0)]
            assert report["days"][-1]["cases_registered"] == 2
            assert report["days"][-1]["cases_queried"] == 1
            assert report["days"][-1]["queries"] == 1 and report["days"][-1]["partial_queries"] == 0
            assert report["first_queried_cases"] == 1
            status, body = await get(session, "/v1/reports/court?days=93", executor)
            assert status == 400 and body["error"]["field"] == "days"
