"""What every console page uses: the app's keys, templates, and calls to the gateway as the signed-in officer."""

import functools
import logging
from pathlib import Path
from urllib.parse import quote

import jinja2
from aiohttp import web

from services.console import formats
from services.console.actions import ACTIONS
from services.console.config import ConsoleSettings
from services.console.gateway import Answer, Gateway, case_path
from services.console.sessions import Session, Sessions

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
SETTINGS = web.AppKey("settings", ConsoleSettings)
GATEWAY = web.AppKey("gateway", Gateway)
SESSIONS = web.AppKey("sessions", Sessions)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
SESSION = web.RequestKey("session", Session)
# What the gateway declares (operation IDs of its OpenAPI document): pages for what it lacks are not offered.
OPERATIONS = web.AppKey("operations", dict)
# Set when sign-in or sign-out replaced the session: the cookie is sent again.
SESSION_CHANGED = web.RequestKey("session_changed", bool)


class Unauthenticated(Exception):
    """The gateway no longer accepts the session's token: sign in again."""


# Rendering


async def gateway_has(request: web.Request, operation_id: str) -> bool:
    """Whether the gateway serves `operation_id` (asked once, again after a failure)."""
    known = request.app[OPERATIONS]
    if known.get("ids") is None:
        known["ids"] = await request.app[GATEWAY].operations()
    return operation_id in (known["ids"] or ())


def requires(operation_id: str):
    """A page that exists only where the gateway serves `operation_id` (its batch or 查冻扣 API, say)."""
    def wrap(handler):
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            if not await gateway_has(request, operation_id):
                return page(request, "error.html", status=404, title="未提供 Not offered",
                            message=f"此网关未提供该功能 This gateway does not serve {operation_id}.")
            return await handler(request)
        return guarded
    return wrap


def page(request: web.Request, template: str, *, status: int = 200, **values) -> web.Response:
    session: Session = request[SESSION]
    flash, session.flash = session.flash, None
    html = request.app[TEMPLATES].get_template(template).render(
        session=session, officer=session.officer, csrf=session.csrf, flash=flash, path=request.path,
        serves=request.app[OPERATIONS].get("ids") or frozenset(),
        roles=session.officer.roles if session.officer else frozenset(), **values)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def fragment(request: web.Request, template: str, **values) -> str:
    session: Session = request[SESSION]
    return request.app[TEMPLATES].get_template(template).render(
        csrf=session.csrf, officer=session.officer, roles=session.officer.roles if session.officer else frozenset(),
        **values)


def case_url(case_number: str, suffix: str = "") -> str:
    return f"/console/cases/{quote(case_number, safe='')}{suffix}"


def templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(money=formats.money, when=formats.shanghai_time, latency=formats.latency,
                       case_url=case_url, status_label=formats.agency_status, kind_label=formats.agency_kind,
                       subject_label=formats.subject_type, action_label=formats.action_kind,
                       plan_state=formats.plan_state, triage_label=formats.triage_class, step_label=formats.step_kind,
                       enum=formats.enum_value)
    env.globals.update(rid=formats.resident_id, actions=ACTIONS)
    return env


# Calling the gateway as the officer


async def ask(request: web.Request, method: str, path: str, **kwargs) -> Answer:
    session: Session = request[SESSION]
    gateway = request.app[GATEWAY]
    if method == "GET":
        answer = await gateway.get(path, session.token, **kwargs)
    else:
        answer = await gateway.post(path, session.token, **kwargs)
    if answer.status == 401:
        raise Unauthenticated(answer.message)
    return answer


async def load_case(request: web.Request, case_number: str) -> dict:
    answer = await ask(request, "GET", case_path(case_number))
    if not answer.ok:
        raise Refused(answer)
    return answer.body


class Refused(Exception):
    """The gateway refused to show something: the page says what it said (the guard renders it)."""

    def __init__(self, answer: Answer):
        super().__init__(answer.message)
        self.answer = answer


def refused_page(request: web.Request, answer: Answer) -> web.Response:
    status = answer.status if answer.status in (400, 403, 404) else 502
    title = {403: "无权访问 Not allowed", 404: "未找到 Not found"}.get(answer.status, "网关拒绝 Refused")
    return page(request, "error.html", status=status, title=title, message=answer.message)


async def load_agencies(request: web.Request) -> list[dict]:
    answer = await ask(request, "GET", "/v1/agencies")
    return answer.body.get("agencies", []) if answer.ok else []


def sse(event: str, html: str) -> bytes:
    data = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
    return f"event: {event}\n{data}\n".encode()


