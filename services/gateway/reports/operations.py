"""The reports' operations as the door sees them: listing cases and a court's figures."""

from protos.gateway.v1 import reports_pb2
from services.gateway.access import authz
from services.gateway.access.door import Call, Operation


def _list_cases(_request: reports_pb2.ListCasesRequest) -> Call:
    return Call(authz.LIST_CASES)


def _court_report(_request: reports_pb2.CourtReportRequest) -> Call:
    return Call(authz.COURT_REPORT)


LIST_CASES = Operation(authz.LIST_CASES, reports_pb2.ListCasesRequest, _list_cases)
COURT_REPORT = Operation(authz.COURT_REPORT, reports_pb2.CourtReportRequest, _court_report)
