"""Who may do what with which case: the one allow/deny decision for the query and control paths.

DOMAIN.md, "Who may ask": only officers of the case's court, only executors
assigned to the case, only about its debtors. Registering cases and
managing agencies needs the admin role (of the court concerned). A court's
query-control team (`query_team`, 查控团队, the centralized 集约化 model) may
query the debtors of any registered case of its own court, one at a time or
in a batch, and read its court's batches and queries; it takes no control
action. A freeze
or seal can only be renewed, released, deducted from or transferred under
the case that placed it (control/rules.py `hold_of`), so requiring the caller's
court to be the case's court here is what keeps those to the placing court.
"""

from dataclasses import dataclass

import grpc

from services.common.logs import mask_id
from services.security.tokens import Principal

ADMIN = "admin"
QUERY_TEAM = "query_team"
QUERY = "query"
# A batch of queries: admitted as a whole, then each row decided as QUERY.
SUBMIT_BATCH = "batch.submit"
# Reading what was asked: a batch (its progress, results, cancelling it) or one recorded query.
# The caller's court's batches (each shown only if READ_BATCH allows it).
LIST_BATCHES = "batch.list"
READ_BATCH = "batch.read"
CANCEL_BATCH = "batch.cancel"
READ_QUERY = "query.read"
GET_CASE = "get_case"
REGISTER_CASE = "register_case"
LIST_AGENCIES = "agencies.list"
# Changing the agency set at run time (the admin API).
REGISTER_AGENCY = "agencies.register"
UPDATE_AGENCY = "agencies.update"
REMOVE_AGENCY = "agencies.remove"
MANAGE_AGENCIES = frozenset({REGISTER_AGENCY, UPDATE_AGENCY, REMOVE_AGENCY})
# The console's reads: allowed to any officer, their answers scoped by case_scope.
LIST_CASES = "cases.list"
COURT_REPORT = "reports.court"
# Any other gateway method (agency management, registry reload, what is added later).
ADMINISTER = "admin"

# Enforcement plans (查冻扣): building and executing one is acting on the
# case (an assigned executor); reading one is like reading the case, and
# open to the court's approvers too. Four eyes: the approver role lists and
# decides its court's approvals (`decide_approval`: never one's own plan).
APPROVER = "approver"
ENFORCE = "enforce"
EXECUTE_PLAN = "plan.execute"
GET_PLAN = "plan.get"
LIST_APPROVALS = "approvals.list"
APPROVE = "approvals.approve"
REJECT = "approvals.reject"
APPROVALS = frozenset({LIST_APPROVALS, APPROVE, REJECT})
# Plans for every case of a batch: admitted as a whole, then the batch decided
# as READ_BATCH and each case as ENFORCE (enforce/batches.py).
ENFORCE_BATCH = "batch.enforce"


@dataclass(frozen=True)
class CaseParties:
    """What authorization needs to know about a registered case."""

    case_number: str
    court_code: str
    executor_ids: tuple[str, ...]
    # The debtors among the subjects the request names (not every debtor).
    debtor_ids: frozenset[str]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    code: grpc.StatusCode = grpc.StatusCode.OK
    reason: str = ""


ALLOW = Decision(True)


def _deny(reason: str, code: grpc.StatusCode = grpc.StatusCode.PERMISSION_DENIED) -> Decision:
    return Decision(False, code, reason)


def decide(
    principal: Principal,
    action: str,
    *,
    case_number: str = "",
    court_code: str = "",
    executor_id: str = "",
    case: CaseParties | None = None,
    subject_id: str = "",
) -> Decision:
    """Allow or deny `action` by `principal`; `court_code`, `executor_id` and `subject_id` are what the
    request names, `case` what the ledger has registered under `case_number` (None: not registered)."""
    court = principal.court_code
    if action in (LIST_AGENCIES, LIST_CASES, COURT_REPORT, SUBMIT_BATCH, LIST_BATCHES):
        return ALLOW
    if action in (READ_BATCH, CANCEL_BATCH, READ_QUERY):
        if not court_code:
            # At the door, before the record is read: its court and submitter are
            # decided here again once it is (batch/service.py, query/late.py).
            return ALLOW
        # court_code and executor_id: the record's, who asked.
        what = "query" if action == READ_QUERY else "batch"
        if court_code != court:
            return _deny(f"the {what} belongs to court {court_code}; your token is for court {court}")
        if executor_id != principal.executor_id and not (principal.has_role(QUERY_TEAM) or principal.has_role(ADMIN)):
            return _deny(f"the {what} was submitted by {executor_id}; only they, the court's query team or an admin"
                         " may read it")
        return ALLOW
    if action == ENFORCE_BATCH:
        return ALLOW
    if action in APPROVALS:
        if not principal.has_role(APPROVER):
            return _deny("approving deductions needs the approver role")
        return ALLOW
    if action == ADMINISTER or action in MANAGE_AGENCIES:
        if not principal.has_role(ADMIN):
            return _deny("managing the gateway needs the admin role")
        return ALLOW
    if action == REGISTER_CASE:
        if not principal.has_role(ADMIN):
            return _deny("registering a case needs the admin role")
        if court_code != court:
            return _deny(f"case.court_code: an admin of court {court} may register cases of that court only")
        return ALLOW
    if case is None:
        return _deny(
            f"case.case_number: case {case_number} is not registered; an admin of the court registers it"
            " with its debtors and assigned executors first (POST /v1/cases, `chakong case register`)",
            grpc.StatusCode.NOT_FOUND,
        )
    if case.court_code != court:
        return _deny(f"case {case.case_number} is handled by court {case.court_code}; your token is for court {court}")
    if action in (GET_CASE, GET_PLAN):
        if principal.executor_id in case.executor_ids or principal.has_role(ADMIN) or principal.has_role(QUERY_TEAM):
            return ALLOW
        if action == GET_PLAN and principal.has_role(APPROVER):
            return ALLOW  # an approver reads the plans of the court's cases it is asked to approve
        return _deny(f"executor {principal.executor_id} is not assigned to case {case.case_number}")
    if court_code and court_code != court:
        return _deny(f"case.court_code: the request names court {court_code}; your token is for court {court}")
    if executor_id and executor_id != principal.executor_id:
        return _deny(
            f"case.executor_id: the request names executor {executor_id}; your token is for {principal.executor_id}"
        )
    team_query = action == QUERY and principal.has_role(QUERY_TEAM)
    if principal.executor_id not in case.executor_ids and not team_query:
        return _deny(f"executor {principal.executor_id} is not assigned to case {case.case_number}")
    if subject_id and subject_id not in case.debtor_ids:
        return _deny(
            f"subject.id_number: {mask_id(subject_id)} is not a debtor of case {case.case_number};"
            " only a case's debtors may be asked about or acted on"
        )
    return ALLOW


def decide_approval(principal: Principal, *, court_code: str, requested_by: str) -> Decision:
    """May `principal` approve or reject a plan of court `court_code` that `requested_by` asked for?"""
    if not principal.has_role(APPROVER):
        return _deny("approving deductions needs the approver role")
    if principal.court_code != court_code:
        return _deny(f"the approval is court {court_code}'s; your token is for court {principal.court_code}")
    if principal.executor_id == requested_by:
        return _deny(f"executor {requested_by} asked for this plan: a different officer must approve it (four eyes)")
    return ALLOW


def case_scope(principal: Principal) -> tuple[str, str | None]:
    """Which cases a list shows `principal`: (court, executor), executor None for all the court's.

    The same rule as GET_CASE above: an admin sees the court's cases, an executor those assigned."""
    return principal.court_code, None if principal.has_role(ADMIN) else principal.executor_id
