"""The web console end to end in Chromium: sign-in, the live query, freeze/deduct/release, refusals, agencies, dashboard.

Every page a test visits is checked the same way (`Visit.check`): no
browser console error (a CSP violation is one), no serious or critical
axe-core violation, and a full-page screenshot under test-artifacts/console/.
The tests share one stack and run in file order; the last one stops an agency.
"""

import json
import re
import time
from urllib.parse import quote

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support.auth import issue_token
from tests.support.console import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, artifacts, axe_violations, require_browser, start_stack
from protos.common.v1 import common_pb2
from tests.support.gateway import CASE, debtor, population
from tests.support.tls import GatewayEndpoints

pytestmark = pytest.mark.timeout(180)
PAGE_STATUSES = {400: "Bad Request", 403: "Forbidden", 404: "Not Found"}
AGENCIES = ("icbc", "ccb", "boc", "hsbank", "alipay", "gyzq", "hefei-vmo", "hefei-rer")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    require_browser()
    artifacts()
    stack = start_stack(tmp_path_factory.mktemp("console"))
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def browser(stack):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Visit:
    """One officer's browser context; every page checked for console errors and accessibility, and photographed."""

    def __init__(self, browser, base: str):
        self.base = base
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN",
                                           timezone_id="Asia/Shanghai")
        self.page = self.context.new_page()
        self.errors: list[str] = []
        # Statuses of the pages themselves: a form shown again with its errors is a 400, a refusal a 403, and
        # Chromium reports each as a console error; those are the page's answer, not a fault in it.
        self.page_statuses: set[int] = set()
        self.page.on("response", lambda r: self.page_statuses.add(r.status)
                     if r.request.resource_type == "document" else None)
        self.page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error"
                     else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def open(self, path: str):
        self.page.goto(self.base.removesuffix("/console") + path)
        return self.page

    def sign_in(self, executor: str):
        self.open("/console/sign-in")
        self.page.get_by_role("button", name=re.compile(f"{executor} ·")).click()
        expect(self.page).to_have_url(re.compile(r"/console/cases$"))
        return self.page

    def check(self, name: str) -> None:
        self.page.wait_for_load_state("networkidle")
        self.page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
        violations = axe_violations(self.page)
        assert not violations, f"{name}: " + "\n".join(violations)
        errors = [e for e in self.errors if not any(
            e == f"console error: Failed to load resource: the server responded with a status of {status} ({reason})"
            for status, reason in PAGE_STATUSES.items() if status in self.page_statuses)]
        assert not errors, f"{name}: " + "\n".join(errors)
        self.errors.clear()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser, stack):
    visits = []

    def make() -> Visit:
        v = Visit(browser, stack.console_url)
        visits.append(v)
        return v

    yield make
    for v in visits:
        v.close()


CASE_PATH = f"/console/cases/{quote(CASE.case_number, safe='')}"


def test_sign_in_by_token_and_sign_out(visit):
    v = visit()
    page = v.open("/console/cases")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    v.check("sign-in")
    page.get_by_label("执行令牌 Executor token").fill("not-a-token")
    page.get_by_role("button", name="登录 Sign in", exact=True).click()
    expect(page.locator("#token-error")).to_contain_text("Not a token")
    expect(page.get_by_label("执行令牌 Executor token")).to_have_attribute("aria-invalid", "true")
    v.check("sign-in-error")
    page.get_by_label("执行令牌 Executor token").fill(issue_token(roles=("executor",)))
    page.get_by_role("button", name="登录 Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/console/cases$"))
    expect(page.get_by_role("link", name=CASE.case_number)).to_be_visible()
    cookie = next(c for c in v.context.cookies() if c["name"] == "chakong_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    # An executor sees resident IDs masked.
    subject = debtor()
    masked = subject.id_number[:6] + "*" * (len(subject.id_number) - 8) + subject.id_number[-2:]
    expect(page.get_by_text(masked)).to_be_visible()
    assert subject.id_number not in page.content()
    v.check("cases")
    page.get_by_role("button", name="退出 Sign out").click()
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    expect(page.get_by_role("status")).to_contain_text("Signed out")
    v.open("/console/cases")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))


def query_demo_debtor(page) -> None:
    page.get_by_role("button", name=re.compile("^查询 Query ")).first.click()
    for agency in AGENCIES:
        expect(page.locator(f"#agency-{agency} tr[data-status]")).to_be_visible(timeout=15_000)
    expect(page.locator("#query-final .summary")).to_be_visible()


def test_query_fills_in_every_agency_live(visit):
    v = visit()
    page = v.sign_in("E0001")
    page.get_by_role("link", name=CASE.case_number).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(CASE.case_number)
    v.check("case")
    # The rows start waiting and each agency's answer replaces its own.
    page.get_by_role("button", name=re.compile("^查询 Query ")).first.click()
    expect(page.locator("#query tbody[data-agency]")).to_have_count(8)
    for agency in AGENCIES:
        row = page.locator(f"#agency-{agency} tr[data-status]")
        expect(row).to_have_attribute("data-status", "OK", timeout=15_000)
        expect(row.locator("td.num")).to_have_text(re.compile(r"^\d[\d,]* ms$"))
    expect(page.locator("#query-final .summary")).to_contain_text("完整 Complete")
    expect(page.locator("#query-final .summary")).to_contain_text("8/8")
    expect(page.locator("#query-final")).to_contain_text("¥")
    v.check("case-query")


def tab_to(page, name: str, limit: int = 40) -> None:
    """Press Tab until the focused element's accessible text starts with `name`."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate("() => document.activeElement.getAttribute('aria-label')"
                                " || document.activeElement.textContent.trim()")
        if focused.startswith(name):
            return
    raise AssertionError(f"{name!r} is not reachable with Tab")


def test_the_console_works_from_the_keyboard(visit):
    v = visit()
    page = v.open("/console/sign-in")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "跳到正文 Skip to content"
    tab_to(page, "执行干警 Executor (demo case)")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/console/cases$"))
    tab_to(page, CASE.case_number)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(CASE.case_number)
    tab_to(page, "查询 Query")
    page.keyboard.press("Enter")
    expect(page.locator("#agency-icbc tr[data-status]")).to_have_attribute("data-status", "OK", timeout=15_000)


def test_freeze_deduct_release(visit):
    v = visit()
    page = v.sign_in("E0001")
    v.open(CASE_PATH)
    query_demo_debtor(page)
    # An account with at least ¥1,000.00 available (the 5th column), so the freeze holds all it asks.
    rows = page.locator("#query-final tr", has=page.get_by_role("link", name="冻结 Freeze"))
    freeze = next(rows.nth(i).get_by_role("link") for i in range(rows.count())
                  if int(re.sub(r"\D", "", rows.nth(i).locator("td").nth(4).inner_text())) >= 100_000)
    account = re.search(r"account_number=([^&]+)", freeze.get_attribute("href"))[1]
    freeze.click()
    expect(page.get_by_label("账号 Account number")).to_have_value(account)
    page.get_by_label("金额（元）Amount (yuan)").fill("12.345")
    page.get_by_role("button", name="下一步：确认 Next: confirm").click()
    expect(page.locator("#amount-error")).to_contain_text("At most two decimals")
    v.check("freeze-error")
    page.get_by_label("金额（元）Amount (yuan)").fill("1000")
    page.get_by_role("button", name="下一步：确认 Next: confirm").click()
    expect(page.locator(".confirmation")).to_contain_text(f"Freeze ¥1,000.00 on account {account}")
    v.check("freeze-confirm")
    page.get_by_role("button", name=re.compile("Confirm")).click()
    expect(page.get_by_role("status")).to_contain_text("SUCCEEDED")
    hold = page.get_by_role("region", name="冻结与查封 Holds").locator("tbody tr").first
    expect(hold).to_contain_text("¥1,000.00")
    v.check("case-frozen")

    hold.get_by_role("link", name="扣划 Deduct").click()
    page.get_by_label("金额（元）Amount (yuan)").fill("300")
    page.get_by_role("button", name="下一步：确认 Next: confirm").click()
    expect(page.locator(".confirmation")).to_contain_text(f"Deduct ¥300.00 from the freeze on account {account}")
    v.check("deduct-confirm")
    page.get_by_role("button", name=re.compile("Confirm")).click()
    expect(page.get_by_role("status")).to_contain_text("SUCCEEDED")

    page.get_by_role("region", name="冻结与查封 Holds").locator("tbody tr").first.get_by_role("link", name="解除 Release").click()
    page.get_by_role("button", name="下一步：确认 Next: confirm").click()
    expect(page.locator(".confirmation")).to_contain_text(f"Release all of it (¥700.00) of the freeze on account {account}")
    page.get_by_role("button", name=re.compile("Confirm")).click()
    expect(page.get_by_role("status")).to_contain_text("SUCCEEDED")
    timeline = page.locator(".timeline")
    for kind in ("解冻 RELEASE_FREEZE", "扣划 DEDUCT", "冻结 FREEZE"):
        expect(timeline).to_contain_text(kind)
    assert timeline.locator("li.state-succeeded").count() >= 3
    v.check("case-after-actions")


def test_seal_renew_and_transfer(visit):
    v = visit()
    page = v.sign_in("E0001")
    v.open(CASE_PATH)
    query_demo_debtor(page)
    property_row = page.locator("#query-final tr", has_text="不动产权第").first
    certificate = property_row.locator("td").nth(1).inner_text()
    property_row.get_by_role("link", name="查封 Seal").click()
    expect(page.get_by_label("车牌或不动产权证号 Plate or certificate number")).to_have_value(certificate)
    page.get_by_role("button", name="下一步：确认 Next: confirm").click()
    expect(page.locator(".confirmation")).to_contain_text(f"Seal {certificate} at")
    page.get_by_role("button", name=re.compile("Confirm")).click()
    expect(page.get_by_role("status")).to_contain_text("SUCCEEDED")
    seal = page.get_by_role("region", name="冻结与查封 Holds").locator("tbody tr", has_text=certificate)
    seal.get_by_role("link", name="续行 Renew").click()
    page.get_by_role("button", name="下一步：确认 Next: confirm").click()
    expect(page.locator(".confirmation")).to_contain_text(f"Renew the seal on {certificate}")
    page.get_by_role("button", name=re.compile("Confirm")).click()
    expect(page.get_by_role("status")).to_contain_text("SUCCEEDED")
    seal.get_by_role("link", name="过户 Transfer").click()
    buyer = next(s for s in population() if s.subject_type == common_pb2.SUBJECT_TYPE_RESIDENT_ID)
    page.get_by_label("买受人身份证号 Buyer's resident ID").fill(buyer.id_number)
    page.get_by_label("买受人姓名 Buyer's name").fill(buyer.name)
    page.get_by_label("裁定书号 Ruling number").fill("(2026)皖01执123号之一")
    page.get_by_label("成交价（元）Price (yuan)").fill("880,000")
    page.get_by_role("button", name="下一步：确认 Next: confirm").click()
    expect(page.locator(".confirmation")).to_contain_text(f"Transfer {certificate}")
    expect(page.locator(".confirmation")).to_contain_text(f"to {buyer.name} for ¥880,000.00")
    v.check("transfer-confirm")
    page.get_by_role("button", name=re.compile("Confirm")).click()
    expect(page.get_by_role("status")).to_contain_text("SUCCEEDED")
    expect(page.locator(".timeline")).to_contain_text("过户 TRANSFER")


def test_every_action_form_labels_its_fields(visit):
    v = visit()
    page = v.sign_in("E0001")
    for slug, title in (("freeze", "冻结 Freeze"), ("deduct", "扣划 Deduct"), ("release", "解除 Release"),
                        ("seal", "查封 Seal"), ("renew", "续行 Renew"), ("transfer", "过户 Transfer")):
        v.open(f"{CASE_PATH}/actions/{slug}")
        expect(page.get_by_role("heading", level=1)).to_have_text(title)
        for field in page.locator("form.grid input:not([type=hidden]), form.grid select").all():
            expect(page.locator(f"label[for='{field.get_attribute('id')}']")).to_have_count(1)
        v.check(f"action-{slug}")


def test_a_post_without_the_csrf_token_is_refused(visit):
    v = visit()
    page = v.sign_in("E0001")
    v.open(CASE_PATH)
    actions = page.locator(".timeline li").count()
    url = v.base.removesuffix("/console") + CASE_PATH + "/actions/freeze"
    form = {"debtor": "0", "agency_id": "icbc", "account_number": "6222000000000000", "amount": "1",
            "confirmed": "yes"}
    for extra in ({}, {"csrf": "forged"}):
        answer = page.request.post(url, form={**form, **extra}, max_redirects=0)
        assert answer.status == 403
        assert "CSRF" in answer.text()
    answer = page.request.post(v.base + "/sign-out", max_redirects=0)
    assert answer.status == 403
    v.open(CASE_PATH)
    assert page.locator(".timeline li").count() == actions


def test_an_officer_of_another_court_cannot_open_the_case(visit):
    v = visit()
    page = v.sign_in("E0201")
    expect(page.get_by_role("link", name=CASE.case_number)).to_have_count(0)
    expect(page.get_by_text("没有案件 No cases")).to_be_visible()
    v.open(CASE_PATH)
    expect(page.get_by_role("heading", level=1)).to_have_text("无权访问 Not allowed")
    expect(page.locator(".notice")).to_contain_text("handled by court 340100")
    v.check("other-court")


def test_admin_registers_a_case_and_reads_the_dashboard(visit):
    v = visit()
    page = v.sign_in("A0001")
    # An admin sees resident IDs in full.
    expect(page.get_by_text(debtor().id_number)).to_be_visible()
    page.get_by_label("案号 Case number").fill("(2026)皖01执2048号")
    page.get_by_label("执行依据文书号 Document number").fill("(2025)皖01民初88号")
    page.get_by_label("被执行人（每行 证件号:姓名）Debtors (one per line, ID:name)").fill(
        f"{debtor().id_number}:{debtor().name}")
    page.get_by_label("申请执行金额（元）Amount owed (yuan)").fill("一万")
    page.get_by_label("承办干警（逗号分隔）Executors assigned (comma-separated)").fill("E0001")
    page.get_by_role("button", name="立案 Register").click()
    expect(page.locator("#owed-error")).to_contain_text("Not an amount")
    v.check("register-error")
    page.get_by_label("申请执行金额（元）Amount owed (yuan)").fill("250,000.00")
    page.get_by_role("button", name="立案 Register").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("(2026)皖01执2048号")
    expect(page.locator(".facts")).to_contain_text("¥250,000.00")
    page.get_by_role("link", name="指挥中心 Dashboard").click()
    expect(page.locator("svg.chart")).to_have_count(5)
    expect(page.locator(".tiles")).to_contain_text("¥1,000.00")
    expect(page.locator(".tiles")).to_contain_text("待审批 Approvals waiting")
    v.check("dashboard")
    page.get_by_role("link", name="机构 Agencies").click()
    expect(page.locator("tr[data-agency]")).to_have_count(8)
    v.check("agencies")


def require_operation(stack, operation_id: str) -> None:
    """Skip where the gateway does not declare `operation_id` (a console page for an API not merged yet)."""
    with GatewayEndpoints.of(stack.gateway).urlopen("/openapi.json") as answer:
        document = json.load(answer)
    declared = {op.get("operationId") for item in document["paths"].values() for op in item.values()}
    if operation_id not in declared:
        pytest.skip(f"the gateway declares no {operation_id}: its console page is not offered")


def test_enforce_with_a_second_officer_approving(visit, stack):
    require_operation(stack, "enforceCase")
    executor = visit()
    page = executor.sign_in("E0001")
    executor.open(CASE_PATH)
    page.get_by_role("button", name=re.compile("^查冻扣")).click()
    expect(page.locator("[data-plan-state]")).to_have_attribute("data-plan-state", "DRAFT")
    expect(page.locator("tr[data-step-state]").first).to_be_visible()
    expect(page.locator(".confirmation")).to_contain_text(re.compile(r"freeze ¥[\d,]+\.\d\d on \d+ accounts"))
    executor.check("plan-draft")
    page.get_by_role("button", name="确认执行 Confirm and execute").click()
    expect(page.locator("[data-plan-state]")).to_have_attribute("data-plan-state", re.compile("WAITING_APPROVAL|DONE"),
                                                                timeout=20_000)
    executor.check("plan-executed")
    if page.locator("[data-plan-state]").get_attribute("data-plan-state") == "WAITING_APPROVAL":
        # Four eyes: a second officer, in a browser context of their own.
        approver = visit()
        inbox = approver.sign_in("AP0001")
        inbox.get_by_role("link", name="审批 Approvals").click()
        row = inbox.locator("tr[data-approval]").first
        expect(row).to_contain_text(CASE.case_number)
        approver.check("approvals")
        row.get_by_label("理由 Reason").fill("核实无误 Checked")
        row.get_by_role("button", name="批准 Approve").click()
        expect(inbox.get_by_role("status")).to_contain_text("Approved")
        page.reload()
        expect(page.locator("[data-plan-state]")).to_have_attribute("data-plan-state", "DONE", timeout=20_000)
    expect(page.locator("[data-triage]")).to_have_attribute("data-triage", re.compile("SETTLED|PARTIAL"))
    executor.check("plan-done")


def test_upload_a_batch_watch_it_and_download_the_xlsx(visit, stack, tmp_path):
    require_operation(stack, "submitBatch")
    import openpyxl  # the batch API's own dependency

    v = visit()
    page = v.sign_in("E0001")
    page.get_by_role("link", name="批量 Batches").click()
    v.check("batches")
    subject = debtor()
    rows = f"case_number,debtor_id,debtor_name\n{CASE.case_number},{subject.id_number},{subject.name}\n"
    page.get_by_label("CSV 或 XLSX 文件 CSV or XLSX file").set_input_files(
        files=[{"name": "cases.csv", "mimeType": "text/csv", "buffer": rows.encode()}])
    page.get_by_role("button", name="上传并查询 Upload and query").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("批次 Batch")
    expect(page.locator("[data-batch-state]")).to_have_attribute("data-batch-state", "DONE", timeout=30_000)
    expect(page.locator("#progress tr[data-agency]")).to_have_count(8)
    expect(page.locator('#progress tr[data-agency="icbc"] td').first).to_have_text("1")
    v.check("batch")
    with page.expect_download() as download:
        page.get_by_role("link", name="Excel (XLSX)").click()
    path = tmp_path / "results.xlsx"
    download.value.save_as(path)
    with path.open("rb") as file:
        sheet = openpyxl.load_workbook(file).active
        cells = [str(c) for row in sheet.iter_rows(values_only=True) for c in row if c is not None]
    assert subject.id_number in cells and CASE.case_number in cells


def test_a_stopped_agency_is_ejected_and_answers_unavailable(visit, stack):
    stack.agency("gyzq").stop()
    v = visit()
    page = v.sign_in("E0001")
    v.open(CASE_PATH)
    page.get_by_role("button", name=re.compile("^查询 Query ")).first.click()
    expect(page.locator("#agency-gyzq tr[data-status]")).to_have_attribute("data-status", "UNAVAILABLE",
                                                                            timeout=15_000)
    expect(page.locator("#agency-gyzq")).to_contain_text("不可用 UNAVAILABLE")
    expect(page.locator("#query-final .summary")).to_contain_text("部分结果 Partial")
    v.check("case-query-agency-down")
    deadline = time.monotonic() + 20
    v.open("/console/agencies")
    while page.locator('tr[data-agency="gyzq"]').get_attribute("data-health") != "ejected":
        assert time.monotonic() < deadline, "gyzq was not ejected"
        page.wait_for_timeout(500)
        v.open("/console/agencies")
    expect(page.locator('tr[data-agency="gyzq"]')).to_contain_text("已剔除 ejected")
    v.check("agencies-ejected")
