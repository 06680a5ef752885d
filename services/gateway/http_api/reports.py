"""The HTTP face of the reports: GET /v1/cases (the cases the caller may see) and GET /v1/reports/court."""

from aiohttp import web

from protos.gateway.v1 import reports_pb2
from services.common.validation import FieldError
from services.gateway.access.door import Admitted
from services.gateway.http_api.json_io import dumps
from services.gateway.http_api.jsonmap import message_to_dict
from services.gateway.http_api.routes import CORE, Answer, Route
from services.gateway.reports.operations import COURT_REPORT, LIST_CASES


def _whole_number(request: web.Request, name: str) -> int:
    text = request.query.get(name, "")
    if not text:
        return 0
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        raise FieldError(name, f"{text!r} is not a whole number")
    return int(text)


def _list_request(request: web.Request, body: bytes) -> reports_pb2.ListCasesRequest:
    return reports_pb2.ListCasesRequest(search=request.query.get("search", ""), limit=_whole_number(request, "limit"))


def _report_request(request: web.Request, body: bytes) -> reports_pb2.CourtReportRequest:
    return reports_pb2.CourtReportRequest(days=_whole_number(request, "days"))


async def get_cases(request: web.Request, admitted: Admitted) -> web.Response:
    found = await request.app[CORE].reports.list_cases(admitted.principal, admitted.request())
    return web.json_response(message_to_dict(found), dumps=dumps)


async def get_court_report(request: web.Request, admitted: Admitted) -> web.Response:
    report = await request.app[CORE].reports.court_report(admitted.principal, admitted.request())
    return web.json_response(message_to_dict(report), dumps=dumps)


def report_routes() -> list[Route]:
    return [
        Route("GET", "/v1/cases", LIST_CASES, get_cases, "listCases",
              "The cases of the caller's court, newest first: an admin's all of them, an executor's those assigned."
              " `search` (a part of the case number, or of a debtor's name or ID) and `limit` (1-200, default 50).",
              (Answer(200, "The cases found.", reports_pb2.ListCasesResponse),),
              parse=_list_request, query=("search", "limit")),
        Route("GET", "/v1/reports/court", COURT_REPORT, get_court_report, "courtReport",
              "The caller's court's figures per day in Asia/Shanghai: cases registered and queried, queries and"
              " partial ones, amounts frozen and deducted, actions; `days` back (1-92, default 14).",
              (Answer(200, "One entry per day, oldest first.", reports_pb2.CourtReport),),
              parse=_report_request, query=("days",)),
    ]
