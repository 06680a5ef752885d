"""The cases a caller may see, and a court's figures per day (Asia/Shanghai), from the ledger and the audit trail.

Both answers are scoped to the caller's court, the list also to the cases
the caller is assigned to unless an admin asks (authz.case_scope): what the
door allows is only "you may ask", what you get is yours.
"""

import logging
import statistics
from datetime import datetime, timedelta, timezone

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from protos.common.v1 import common_pb2
from protos.gateway.v1 import control_pb2, enforce_pb2, reports_pb2
from services.common.validation import FieldError, check_printable
from services.gateway.access import authz
from services.gateway.errors import RETRY_AFTER_S, GatewayError
from services.gateway.ledger import SUCCEEDED
from services.security.audit import AuditError
from services.security.tokens import Principal

logger = logging.getLogger(__name__)

# China keeps one offset all year (no daylight saving since 1991).
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
DEFAULT_LIMIT, MAX_LIMIT, MAX_SEARCH_CHARS = 50, 200, 64
DEFAULT_DAYS, MAX_DAYS = 14, 92
QUERY = authz.QUERY


class Reports:
    def __init__(self, ledger, audit, now_us):
        self.ledger, self.audit, self.now_us = ledger, audit, now_us

    async def list_cases(self, principal: Principal, request: reports_pb2.ListCasesRequest) -> reports_pb2.ListCasesResponse:
        search = request.search.strip()
        if len(search) > MAX_SEARCH_CHARS:
            raise FieldError("search", f"at most {MAX_SEARCH_CHARS} characters")
        check_printable(search, "search")
        if not 0 <= request.limit <= MAX_LIMIT:
            raise FieldError("limit", f"from 1 to {MAX_LIMIT} (0 for the default, {DEFAULT_LIMIT})")
        court, executor = authz.case_scope(principal)
        found = await self.ledger.list_cases(court, executor, search, request.limit or DEFAULT_LIMIT)
        return reports_pb2.ListCasesResponse(cases=[
            reports_pb2.CaseSummary(
                case=common_pb2.CaseRef(case_number=s.case.case_number, court_code=s.case.court_code,
                                        executor_id=s.case.executor_id, document_number=s.case.document_number),
                debtors=[common_pb2.Subject(type=d.subject_type, id_number=d.id_number, name=d.name)
                         for d in s.debtors],
                amount_owed_fen=s.case.amount_owed_fen, costs_fen=s.case.costs_fen, deducted_fen=s.deducted_fen,
                registered_at=Timestamp(seconds=s.case.registered_at_us // 1_000_000,
                                        nanos=s.case.registered_at_us % 1_000_000 * 1000), executor_ids=s.case.assigned_executors,
                action_count=s.action_count,
            )
            for s in found
        ])

    async def court_report(self, principal: Principal, request: reports_pb2.CourtReportRequest) -> reports_pb2.CourtReport:
        if not 0 <= request.days <= MAX_DAYS:
            raise FieldError("days", f"from 1 to {MAX_DAYS} (0 for the default, {DEFAULT_DAYS})")
        days = request.days or DEFAULT_DAYS
        court = principal.court_code
        today = datetime.fromtimestamp(self.now_us() / 1e6, SHANGHAI).date()
        first = today - timedelta(days=days - 1)
        since = datetime(first.year, first.month, first.day, tzinfo=SHANGHAI)
        since_us = int(since.timestamp() * 1e6)
        rows = {first + timedelta(days=i): reports_pb2.CourtDay(date=(first + timedelta(days=i)).isoformat())
                for i in range(days)}

        def day_of_us(us: int):
            return datetime.fromtimestamp(us / 1e6, SHANGHAI).date()

        registered, actions = await self.ledger.court_activity(court, since_us)
        for us in registered:
            rows[day_of_us(us)].cases_registered += 1
        for action in actions:
            row = rows[day_of_us(action.created_at_us)]
            row.actions += 1
            if action.state == SUCCEEDED and action.kind == control_pb2.ACTION_KIND_FREEZE:
                row.frozen_fen += action.amount_fen
            elif action.state == SUCCEEDED and action.kind == control_pb2.ACTION_KIND_DEDUCT:
                row.deducted_fen += action.amount_fen
        plans, approvals_waiting = await self.ledger.plans.court_triage(court, since_us)
        enforced: dict = {}
        for case_number, triage, made_at_us in plans:
            classes = enforced.setdefault(day_of_us(made_at_us), {})
            # A case settled once counts as settled, whatever its other plans that day.
            classes[case_number] = classes.get(case_number, False) or triage == enforce_pb2.TRIAGE_CLASS_SETTLED
        for day, cases in enforced.items():
            if day in rows:
                rows[day].cases_enforced = len(cases)
                rows[day].cases_settled = sum(cases.values())
        queried: dict = {}
        first_query: dict[str, datetime] = {}
        try:
            answers = await self.audit.answers(court, QUERY, since)
        except AuditError as exc:
            logger.error("court report: the audit trail is unavailable: %s", exc)
            raise GatewayError(grpc.StatusCode.UNAVAILABLE, "the audit trail is unavailable; retry later",
                               retry_after=RETRY_AFTER_S) from None
        for answer in answers:
            moment = datetime.strptime(answer.recorded_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
            day = moment.astimezone(SHANGHAI).date()
            if day not in rows:
                continue
            rows[day].queries += 1
            if answer.result.endswith(" partial"):
                rows[day].partial_queries += 1
            queried.setdefault(day, set()).add(answer.case_number)
            first_query.setdefault(answer.case_number, moment)
        for day, cases in queried.items():
            rows[day].cases_queried = len(cases)
        registered_at = await self.ledger.registered_at(court, list(first_query))
        waits = [
            (first_query[case].timestamp() * 1e6 - us) / 1e6
            for case, us in registered_at.items() if us >= since_us and first_query[case].timestamp() * 1e6 >= us
        ]
        return reports_pb2.CourtReport(
            court_code=court, time_zone="Asia/Shanghai", days=[rows[d] for d in sorted(rows)],
            first_queried_cases=len(waits), median_first_query_s=round(statistics.median(waits)) if waits else 0,
            approvals_waiting=approvals_waiting,
        )
