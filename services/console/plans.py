"""查冻扣 pages: the plan a dry run proposes, its execution and triage, and the approvers' inbox (four eyes).

The gateway builds, checks and runs the plan (POST /v1/cases/{case}/enforce,
.../plans/{plan}/execute) and decides approvals (/v1/approvals); the console
shows the plan before anything is done, states what executing it does, and
follows it until it ends.
"""

from aiohttp import web

from services.console.gateway import case_path
from services.console.render import SESSION, Refused, ask, case_url, fragment, load_case, page, requires


def plan_path(case_number: str, plan_id: str, suffix: str = "") -> str:
    return f"{case_path(case_number)}/plans/{plan_id}{suffix}"


def plan_url(case_number: str, plan_id: str) -> str:
    return case_url(case_number, f"/plans/{plan_id}")


@requires("enforceCase")
async def post_enforce(request: web.Request) -> web.Response:
    """A dry run: the plan, nothing done yet."""
    case_number = request.match_info["case_number"]
    answer = await ask(request, "POST", f"{case_path(case_number)}/enforce", body={"dry_run": True})
    if not answer.ok:
        raise Refused(answer)
    raise web.HTTPSeeOther(plan_url(case_number, answer.body["plan_id"]))


async def load_plan(request: web.Request) -> dict:
    case_number, plan_id = request.match_info["case_number"], request.match_info["plan_id"]
    answer = await ask(request, "GET", plan_path(case_number, plan_id))
    if not answer.ok:
        raise Refused(answer)
    return answer.body


@requires("getPlan")
async def get_plan(request: web.Request) -> web.Response:
    plan = await load_plan(request)
    if request.headers.get("HX-Request") == "true":
        return web.Response(text=fragment(request, "plan_body.html", plan=plan), content_type="text/html")
    case = await load_case(request, request.match_info["case_number"])
    return page(request, "plan.html", plan=plan, case=case)


@requires("executePlan")
async def post_execute(request: web.Request) -> web.Response:
    case_number, plan_id = request.match_info["case_number"], request.match_info["plan_id"]
    answer = await ask(request, "POST", plan_path(case_number, plan_id, "/execute"), body={})
    if not answer.ok:
        raise Refused(answer)
    raise web.HTTPSeeOther(plan_url(case_number, plan_id))


@requires("listApprovals")
async def get_approvals(request: web.Request) -> web.Response:
    answer = await ask(request, "GET", "/v1/approvals")
    if not answer.ok:
        raise Refused(answer)
    return page(request, "approvals.html", approvals=answer.body.get("approvals", []), errors={})


@requires("approve")
async def post_decision(request: web.Request) -> web.Response:
    approval_id, verb = request.match_info["approval_id"], request.match_info["decision"]
    if verb not in ("approve", "reject"):
        raise web.HTTPNotFound()
    form = await request.post()
    reason = str(form.get("reason", "")).strip()
    if not reason:
        answer = await ask(request, "GET", "/v1/approvals")
        return page(request, "approvals.html", status=400, approvals=answer.body.get("approvals", []),
                    errors={approval_id: "请写明理由 Give a reason"})
    answer = await ask(request, "POST", f"/v1/approvals/{approval_id}/{verb}", body={"reason": reason})
    if not answer.ok:
        listed = await ask(request, "GET", "/v1/approvals")
        return page(request, "approvals.html", status=answer.status if answer.status < 500 else 502,
                    approvals=listed.body.get("approvals", []), errors={approval_id: answer.message})
    plan = answer.body
    triage = plan.get("triage", {}).get("triage_class", "")
    request[SESSION].flash = ("ok", f"{'已批准 Approved' if verb == 'approve' else '已驳回 Rejected'}"
                                    f" {approval_id} · {plan['case_number']} · {triage}")
    raise web.HTTPSeeOther("/console/approvals")


def plan_routes():
    return [
        ("POST", "/console/cases/{case_number}/enforce", post_enforce),
        ("GET", "/console/cases/{case_number}/plans/{plan_id}", get_plan),
        ("POST", "/console/cases/{case_number}/plans/{plan_id}/execute", post_execute),
        ("GET", "/console/approvals", get_approvals),
        ("POST", "/console/approvals/{approval_id}/{decision}", post_decision),
    ]
