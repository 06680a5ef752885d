"""The console's aiohttp app: pages rendered on the server from the gateway's HTTP API, as the signed-in officer.

Every page goes through three middlewares: security headers (a CSP with no
inline script or style, no framing, no referrer), the session (cookie to
in-memory session), and the guard (sign-in required but for the sign-in
page and static files; a POST without the session's CSRF token is 403).
What an officer may see or do is the gateway's decision: the console only
passes the officer's token on and shows the answer.
"""

import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from services.common import identifiers
from services.console import formats
from services.console.actions import ACTIONS, Context, FormErrors
from services.console.agencies import call_figures
from services.console.batches import MAX_UPLOAD_BYTES, batch_routes
from services.console.charts import bar_chart
from services.console.config import COURT_ACCOUNTS, DEMO_OFFICERS, ConsoleSettings
from services.console.gateway import Gateway, GatewayUnreachable
from services.console.render import (
    GATEWAY, HERE, OPERATIONS, SESSION, SESSION_CHANGED, SESSIONS, SETTINGS, TEMPLATES, Refused, Unauthenticated, ask, case_url,
    fragment, gateway_has, load_agencies, load_case, page, refused_page, sse, templates,
)
from services.console.plans import plan_routes
from services.console.sessions import COOKIE, Officer, Session, Sessions, Ticket
from services.security.tokens import ROLES, TokenSigner

logger = logging.getLogger(__name__)

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self';"
       " form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
PUBLIC = ("/console/sign-in", "/console/static/")
DEMO_TOKEN_TTL_S = 8 * 3600
# Middlewares


@web.middleware
async def security_headers(request: web.Request, handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if not request.path.startswith("/console/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    if isinstance(response, web.HTTPException):
        raise response
    return response


@web.middleware
async def sessions(request: web.Request, handler) -> web.StreamResponse:
    if not request.path.startswith("/console") or request.path.startswith("/console/static/"):
        return await handler(request)
    store = request.app[SESSIONS]
    session = store.get(request.cookies.get(COOKIE, ""))
    fresh = session is None
    if fresh:
        session = store.new()
    request[SESSION] = session
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    session = request[SESSION]  # sign-in and sign-out replace it
    if fresh or request.get(SESSION_CHANGED):
        response.set_cookie(COOKIE, session.id, path="/console", httponly=True, samesite="Strict",
                            secure=request.app[SETTINGS].tls)
    if isinstance(response, web.HTTPException):
        raise response
    return response


@web.middleware
async def guard(request: web.Request, handler) -> web.StreamResponse:
    if SESSION not in request:
        return await handler(request)
    session: Session = request[SESSION]
    if request.method not in ("GET", "HEAD"):
        form = await request.post()
        if not session.csrf_ok(str(form.get("csrf", ""))):
            return page(request, "error.html", status=403, title="请求被拒绝 Request refused",
                        message="表单已过期或缺少校验码，请刷新页面后重试。"
                                " The form is stale or lacks its CSRF token: reload the page and try again.")
    public = request.path.startswith(PUBLIC)
    if not public and session.officer is None:
        raise web.HTTPSeeOther("/console/sign-in")
    await gateway_has(request, "")  # what the navigation offers
    try:
        return await handler(request)
    except Unauthenticated as exc:
        request.app[SESSIONS].drop(session)
        request[SESSION] = request.app[SESSIONS].new()
        request[SESSION_CHANGED] = True
        request[SESSION].flash = ("error", f"请重新登录 Please sign in again: {exc}")
        raise web.HTTPSeeOther("/console/sign-in") from None
    except Refused as exc:
        return refused_page(request, exc.answer)
    except GatewayUnreachable as exc:
        return page(request, "error.html", status=503, title="网关无响应 Gateway not answering",
                    message=f"{exc}. 请稍后重试 Try again in a moment.")


# Sign-in and sign-out


async def get_sign_in(request: web.Request) -> web.Response:
    if request[SESSION].officer is not None:
        raise web.HTTPSeeOther("/console/cases")
    return sign_in_page(request)


def sign_in_page(request: web.Request, errors: dict | None = None, status: int = 200) -> web.Response:
    settings = request.app[SETTINGS]
    return page(request, "sign_in.html", status=status, errors=errors or {},
                demo=demo_officers() if settings.demo_sign_in else ())


def demo_officers():
    """The demo officers whose roles tokens can carry (the approver role comes with 查冻扣)."""
    return [o for o in DEMO_OFFICERS if set(o.roles) <= ROLES]


async def post_sign_in(request: web.Request) -> web.Response:
    form = await request.post()
    settings = request.app[SETTINGS]
    demo = str(form.get("demo", ""))
    if demo:
        officer = next((o for o in demo_officers() if o.executor_id == demo), None)
        if officer is None or not settings.demo_sign_in:
            return sign_in_page(request, {"demo": "没有这位演示干警 No such demo officer here"}, 400)
        token = TokenSigner.from_file(settings.dev_signing_key).issue(
            officer.executor_id, officer.court_code, officer.roles, ttl_s=DEMO_TOKEN_TTL_S)
    else:
        token = str(form.get("token", "")).strip()
        if not token:
            return sign_in_page(request, {"token": "请粘贴令牌 Paste your token"}, 400)
    try:
        claims = Officer.from_token(token)
    except ValueError as exc:
        return sign_in_page(request, {"token": str(exc)}, 400)
    # The gateway is the judge of a token: one cheap authenticated read.
    answer = await request.app[GATEWAY].get("/v1/agencies", token)
    if answer.status == 401:
        return sign_in_page(request, {"token": f"网关不接受此令牌 The gateway refused it: {answer.message}"}, 400)
    if not answer.ok:
        return sign_in_page(request, {"token": f"网关拒绝 The gateway answered: {answer.message}"}, 400)
    request[SESSION] = request.app[SESSIONS].sign_in(request[SESSION], token, claims, settings.session_hours)
    request[SESSION_CHANGED] = True
    logger.info("console sign-in: executor %s of court %s", claims.executor_id, claims.court_code)
    raise web.HTTPSeeOther("/console/cases")


async def post_sign_out(request: web.Request) -> web.Response:
    request.app[SESSIONS].drop(request[SESSION])
    request[SESSION] = request.app[SESSIONS].new()
    request[SESSION_CHANGED] = True
    request[SESSION].flash = ("ok", "已退出 Signed out")
    raise web.HTTPSeeOther("/console/sign-in")


async def get_root(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/console/cases")


# Cases


REGISTER_FIELDS = {"case.case_number": "case_number", "case.document_number": "document_number",
                   "amount_owed_fen": "owed", "costs_fen": "costs", "executor_ids": "executors"}


async def get_cases(request: web.Request) -> web.Response:
    return await cases_page(request)


async def cases_page(request: web.Request, errors: dict | None = None, form=None, status: int = 200):
    search = request.query.get("search", "").strip()
    answer = await ask(request, "GET", "/v1/cases", search=search)
    cases, error = (answer.body.get("cases", []), "") if answer.ok else ([], answer.message)
    return page(request, "cases.html", status=status, cases=cases, search=search, search_error=error,
                errors=errors or {}, form=form or {})


async def post_cases(request: web.Request) -> web.Response:
    """Register a case (admin): the gateway decides, the form shows each refusal next to its field."""
    form = await request.post()
    officer: Officer = request[SESSION].officer
    errors: dict[str, str] = {}
    case_number, document = form.get("case_number", "").strip(), form.get("document_number", "").strip()
    for name, value in (("case_number", case_number), ("document_number", document)):
        if not value:
            errors[name] = "必填 Required"
    debtors = []
    for n, line in enumerate(l.strip() for l in form.get("debtors", "").splitlines() if l.strip()):
        id_number, sep, name = line.replace("：", ":").partition(":")
        if not sep or not name.strip():
            errors["debtors"] = f"第 {n + 1} 行应为 身份证号:姓名 Line {n + 1}: write ID:name"
            break
        debtors.append({"type": debtor_type(id_number.strip()), "id_number": id_number.strip(), "name": name.strip()})
    if not debtors and "debtors" not in errors:
        errors["debtors"] = "至少一名被执行人 At least one debtor, one per line as ID:name"
    amounts = {}
    for name, required in (("owed", True), ("costs", False)):
        raw = form.get(name, "").strip()
        if raw or required:
            try:
                amounts[name] = formats.parse_yuan(raw)
            except ValueError as exc:
                errors[name] = str(exc)
    executors = [e.strip() for e in form.get("executors", "").replace("，", ",").split(",") if e.strip()]
    if errors:
        return await cases_page(request, errors, form, 400)
    body = {
        "case": {"case_number": case_number, "court_code": officer.court_code,
                 "executor_id": executors[0] if executors else officer.executor_id, "document_number": document},
        "debtors": debtors, "amount_owed_fen": str(amounts["owed"]),
        **({"costs_fen": str(amounts["costs"])} if "costs" in amounts else {}),
        **({"executor_ids": executors} if executors else {}),
    }
    answer = await ask(request, "POST", "/v1/cases", body=body)
    if not answer.ok:
        field = answer.error.get("field", "")
        target = REGISTER_FIELDS.get(field, "debtors" if field.startswith("debtors") else "case_number")
        return await cases_page(request, {target: answer.message}, form, 400 if answer.status < 500 else 502)
    request[SESSION].flash = ("ok", f"已立案 Case {case_number} registered")
    raise web.HTTPSeeOther(case_url(case_number))


def debtor_type(id_number: str) -> str:
    """A debtor line names a person by resident ID or a company by credit code; the gateway checks either."""
    try:
        identifiers.check_resident_id(id_number)
    except identifiers.InvalidIdentifier:
        return "SUBJECT_TYPE_CREDIT_CODE" if len(id_number) == 18 else "SUBJECT_TYPE_PASSPORT"
    return "SUBJECT_TYPE_RESIDENT_ID"


async def get_case(request: web.Request) -> web.Response:
    case = await load_case(request, request.match_info["case_number"])
    return page(request, "case.html", case=case, query=None)


# Query: a POST makes a ticket, the page's EventSource streams it


async def post_query(request: web.Request) -> web.Response:
    case_number = request.match_info["case_number"]
    case = await load_case(request, case_number)
    form = await request.post()
    index = str(form.get("debtor", ""))
    debtors = case.get("debtors", [])
    if not index.isdigit() or int(index) >= len(debtors):
        raise web.HTTPBadRequest(text="debtor: choose a debtor of the case")
    officer: Officer = request[SESSION].officer
    debtor = debtors[int(index)]
    ref = case["case"]
    body = {"case": {"case_number": ref["case_number"], "court_code": ref["court_code"],
                     "executor_id": officer.executor_id, "document_number": ref["document_number"]},
            "subject": {"type": debtor["type"], "id_number": debtor["id_number"], "name": debtor["name"]}}
    ticket = request[SESSION].new_ticket(Ticket(case_number, int(index), body))
    query = {"ticket": ticket, "debtor": debtor, "agencies": await load_agencies(request)}
    if request.headers.get("HX-Request") == "true":
        return web.Response(text=fragment(request, "query_stream.html", query=query), content_type="text/html")
    return page(request, "case.html", case=case, query=query)


async def get_stream(request: web.Request) -> web.StreamResponse:
    ticket = request[SESSION].take_ticket(request.match_info["ticket"])
    if ticket is None:
        # 204 tells the browser's EventSource not to reconnect.
        return web.Response(status=204)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    results = []
    started = time.monotonic()
    session: Session = request[SESSION]
    async for event, data in request.app[GATEWAY].stream_query(session.token, ticket.body):
        if event == "result":
            results.append(data)
            html = fragment(request, "agency_row.html", result=data)
            await response.write(sse(f"agency-{data['agency_id']}", html))
        elif event == "final":
            html = fragment(request, "query_final.html", final=data, results=results, error="", ticket=ticket)
            await response.write(sse("final", html))
        else:
            message = data.get("error", {}).get("message", "the gateway refused the query")
            html = fragment(request, "query_final.html", final=None, results=results, error=message, ticket=ticket)
            await response.write(sse("final", html))
    logger.info("console query stream for case %s: %d results in %.0f ms", ticket.case_number, len(results),
                (time.monotonic() - started) * 1000)
    await response.write_eof()
    return response


# Actions: form, confirmation, then the gateway


async def action_context(request: web.Request) -> tuple[dict, Context]:
    case = await load_case(request, request.match_info["case_number"])
    return case, Context(case, await load_agencies(request), request[SESSION].officer)


def action_defaults(request: web.Request, slug: str, context: Context) -> dict:
    values = dict(request.query)
    if slug == "deduct":
        bank, account, name = COURT_ACCOUNTS.get(context.officer.court_code, ("", "", ""))
        values = {"court_bank": bank, "court_account": account, "court_account_name": name, **values}
    return values


async def get_action(request: web.Request) -> web.Response:
    slug = request.match_info["action"]
    if slug not in ACTIONS:
        raise web.HTTPNotFound()
    case, context = await action_context(request)
    return page(request, "action.html", case=case, action=ACTIONS[slug], context=context,
                values=action_defaults(request, slug, context), errors={}, built=None)


async def post_action(request: web.Request) -> web.Response:
    slug = request.match_info["action"]
    if slug not in ACTIONS:
        raise web.HTTPNotFound()
    action = ACTIONS[slug]
    case, context = await action_context(request)
    form = await request.post()
    values = {k: str(v) for k, v in form.items() if k not in ("csrf", "confirmed", "idempotency_key")}
    if form.get("confirmed") == "no":
        return page(request, "action.html", case=case, action=action, context=context, values=values, errors={},
                    built=None)
    try:
        built = action.build(values, context)
    except FormErrors as exc:
        return page(request, "action.html", status=400, case=case, action=action, context=context, values=values,
                    errors=exc.errors, built=None)
    if form.get("confirmed") != "yes":
        # One key per confirmation: a double submit of the confirmed form is the same action, never two.
        return page(request, "action.html", case=case, action=action, context=context, values=values, errors={},
                    built=built, idempotency_key=secrets.token_hex(16))
    key = str(form.get("idempotency_key", ""))[:64]
    answer = await ask(request, "POST", built.path, body=built.body, idempotency_key=key)
    number = case["case"]["case_number"]
    if answer.status in (200, 202):
        state = answer.body.get("state", "")
        request[SESSION].flash = ("ok", f"{action.title}: {formats.action_state(state)} · {built.confirmation}")
        raise web.HTTPSeeOther(case_url(number))
    field = answer.error.get("field", "")
    field = {"amount_fen": "amount", "price_fen": "price", "buyer.id_number": "buyer_id",
             "buyer.name": "buyer_name", "account_number": "account_number", "asset_id": "asset_id"}.get(field, "")
    errors = {field or "_": answer.message}
    return page(request, "action.html", status=answer.status if answer.status < 500 else 502, case=case,
                action=action, context=context, values=values, errors=errors, built=None)


# Agencies and the dashboard


async def agencies_view(request: web.Request) -> dict:
    agencies = await load_agencies(request)
    figures = call_figures(await request.app[GATEWAY].metrics())
    return {"agencies": agencies, "figures": figures}


async def get_agencies(request: web.Request) -> web.Response:
    view = await agencies_view(request)
    if request.headers.get("HX-Request") == "true":
        return web.Response(text=fragment(request, "agencies_table.html", **view), content_type="text/html")
    return page(request, "agencies.html", **view)


async def get_dashboard(request: web.Request) -> web.Response:
    days = request.query.get("days", "14")
    answer = await ask(request, "GET", "/v1/reports/court", days=days if days.isdigit() else "14")
    if not answer.ok:
        raise Refused(answer)
    report = answer.body
    rows = report.get("days", [])
    labels = [d["date"] for d in rows]

    def count(value):
        return f"{value:,.0f}"

    def ratio(day):
        return day["partial_queries"] / day["queries"] if day["queries"] else 0

    def settled(day):
        return day["cases_settled"] / day["cases_enforced"] if day["cases_enforced"] else 0

    charts = [
        (title, bar_chart(title, labels, values, show, css))
        for title, values, show, css in (
            ("每日被查询案件数 Cases queried per day", [d["cases_queried"] for d in rows], count, "bar-a"),
            ("每日冻结金额 Amount frozen per day", [int(d["frozen_fen"]) for d in rows], formats.money, "bar-b"),
            ("每日扣划金额 Amount deducted per day", [int(d["deducted_fen"]) for d in rows], formats.money, "bar-c"),
            ("每日部分结果查询占比 Share of partial queries per day", [ratio(d) for d in rows],
             lambda v: f"{v:.0%}", "bar-d"),
            ("每日查冻扣结案占比 Share of 查冻扣 cases settled per day", [settled(d) for d in rows],
             lambda v: f"{v:.0%}", "bar-a"),
        )
    ]
    totals = {
        "queried": sum(d["cases_queried"] for d in rows),
        "registered": sum(d["cases_registered"] for d in rows),
        "frozen": sum(int(d["frozen_fen"]) for d in rows),
        "deducted": sum(int(d["deducted_fen"]) for d in rows),
        "queries": sum(d["queries"] for d in rows),
        "partial": sum(d["partial_queries"] for d in rows),
        "enforced": sum(d["cases_enforced"] for d in rows),
        "settled": sum(d["cases_settled"] for d in rows),
    }
    return page(request, "dashboard.html", report=report, rows=rows, charts=charts, totals=totals,
                median=int(report.get("median_first_query_s", "0")))


# The app


async def gateway_client(app: web.Application):
    settings = app[SETTINGS]
    app[GATEWAY] = Gateway(settings.gateway_url, settings.gateway_ca)
    await app[GATEWAY].open()
    yield
    await app[GATEWAY].close()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(settings: ConsoleSettings) -> web.Application:
    # A batch's case list is the largest body a form sends.
    app = web.Application(middlewares=[security_headers, sessions, guard], client_max_size=MAX_UPLOAD_BYTES + 2 ** 16)
    app[SETTINGS] = settings
    app[SESSIONS] = Sessions()
    app[OPERATIONS] = {}
    app[TEMPLATES] = templates()
    app.cleanup_ctx.append(gateway_client)
    routes: list[tuple[str, str, Handler]] = [
        ("GET", "/console", get_root),
        ("GET", "/console/", get_root),
        ("GET", "/console/sign-in", get_sign_in),
        ("POST", "/console/sign-in", post_sign_in),
        ("POST", "/console/sign-out", post_sign_out),
        ("GET", "/console/cases", get_cases),
        ("POST", "/console/cases", post_cases),
        ("GET", "/console/cases/{case_number}", get_case),
        ("POST", "/console/cases/{case_number}/query", post_query),
        ("GET", "/console/cases/{case_number}/actions/{action}", get_action),
        ("POST", "/console/cases/{case_number}/actions/{action}", post_action),
        ("GET", "/console/stream/{ticket}", get_stream),
        ("GET", "/console/agencies", get_agencies),
        ("GET", "/console/dashboard", get_dashboard),
    ]
    routes += plan_routes() + batch_routes()
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    app.router.add_static("/console/static/", HERE / "static", append_version=True)
    app.router.add_get("/", get_root)
    return app
