"""The six control actions as console forms: their fields, the gateway request each makes, the confirmation it asks.

Declared once: the case page lists them, one form template renders them,
one handler validates, confirms and sends them. What a form names (a
debtor, a hold) is looked up in the case as the gateway just returned it,
so the browser never carries a resident ID and a stale page cannot act on
another case's hold.
"""

from collections.abc import Callable
from dataclasses import dataclass

from services.console.formats import money, parse_yuan, resident_id
from services.console.sessions import Officer

LIVE_STATES = ("HOLD_STATE_ACTIVE", "HOLD_STATE_QUEUED")


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    # text | money | debtor | bank | seal_agency | freeze | seal | hold
    widget: str = "text"
    required: bool = True
    hint: str = ""


@dataclass(frozen=True)
class Built:
    """What the gateway is asked, and the sentence the officer confirms."""

    path: str
    body: dict
    confirmation: str


class FormErrors(Exception):
    def __init__(self, errors: dict[str, str]):
        super().__init__(", ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Context:
    case: dict
    agencies: list[dict]
    officer: Officer

    def case_ref(self) -> dict:
        ref = self.case["case"]
        return {"case_number": ref["case_number"], "court_code": ref["court_code"],
                "executor_id": self.officer.executor_id, "document_number": ref["document_number"]}

    def agency_name(self, agency_id: str) -> str:
        name = next((a["name"] for a in self.agencies if a["id"] == agency_id), agency_id)
        return f"{name} ({agency_id})"

    def agencies_of(self, *kinds: str) -> list[dict]:
        return [a for a in self.agencies if a["kind"] in kinds]

    def live_holds(self, kind: str) -> list[dict]:
        return [h for h in self.case.get("holds", []) if kind in h and h[kind].get("state") in LIVE_STATES]

    def debtor_label(self, debtor: dict) -> str:
        return f"{debtor['name']} ({resident_id(debtor['id_number'], self.officer.roles)})"

    def hold_label(self, hold: dict) -> str:
        if "freeze" in hold:
            detail = f"冻结 {money(hold['freeze'].get('frozen_fen'))}"
        else:
            detail = "查封 sealed"
        return f"{hold['asset_id']} · {self.agency_name(hold['agency_id'])} · {detail} · {hold['hold_id']}"


class Reader:
    """The form's values, with each problem kept next to its field."""

    def __init__(self, form, context: Context):
        self.form, self.context, self.errors = form, context, {}

    def text(self, name: str, required: bool = True, max_chars: int = 64) -> str:
        value = self.form.get(name, "").strip()
        if required and not value:
            self.errors[name] = "必填 Required"
        elif len(value) > max_chars:
            self.errors[name] = f"最多 {max_chars} 个字符 At most {max_chars} characters"
        return value

    def amount(self, name: str, required: bool = True) -> int:
        raw = self.form.get(name, "").strip()
        if not raw and not required:
            return 0
        try:
            return parse_yuan(raw)
        except ValueError as exc:
            self.errors[name] = str(exc)
            return 0

    def debtor(self, name: str = "debtor") -> dict:
        debtors = self.context.case.get("debtors", [])
        raw = self.form.get(name, "")
        if not raw.isdigit() or int(raw) >= len(debtors):
            self.errors[name] = "请选择被执行人 Choose a debtor of the case"
            return {"type": "SUBJECT_TYPE_UNSPECIFIED", "id_number": "", "name": ""}
        return debtors[int(raw)]

    def agency(self, name: str, *kinds: str) -> str:
        value = self.form.get(name, "")
        if value not in {a["id"] for a in self.context.agencies_of(*kinds)}:
            self.errors[name] = "请选择机构 Choose an agency"
        return value

    def hold(self, name: str, *kinds: str) -> dict:
        value = self.form.get(name, "")
        for kind in kinds:
            for hold in self.context.live_holds(kind):
                if hold["hold_id"] == value:
                    return hold
        self.errors[name] = "请选择本案有效的控制措施 Choose a live freeze or seal of this case"
        return {"hold_id": value, "asset_id": "", "agency_id": ""}

    def done(self) -> None:
        if self.errors:
            raise FormErrors(self.errors)


def _subject(debtor: dict) -> dict:
    return {"type": debtor["type"], "id_number": debtor["id_number"], "name": debtor["name"]}


def _freeze(form, c: Context) -> Built:
    r = Reader(form, c)
    debtor, agency = r.debtor(), r.agency("agency_id", "bank")
    account, amount = r.text("account_number"), r.amount("amount")
    r.done()
    return Built("/v1/freezes",
                 {"case": c.case_ref(), "agency_id": agency, "subject": _subject(debtor),
                  "account_number": account, "amount_fen": str(amount)},
                 f"冻结 Freeze {money(amount)} on account {account} at {c.agency_name(agency)},"
                 f" debtor {c.debtor_label(debtor)}")


def _deduct(form, c: Context) -> Built:
    r = Reader(form, c)
    hold, amount = r.hold("hold_id", "freeze"), r.amount("amount")
    bank, account, holder = r.text("court_bank"), r.text("court_account"), r.text("court_account_name")
    r.done()
    return Built(f"/v1/freezes/{hold['hold_id']}/deduct",
                 {"case": c.case_ref(), "amount_fen": str(amount),
                  "court_account": {"bank_name": bank, "account_number": account, "account_name": holder}},
                 f"扣划 Deduct {money(amount)} from the freeze on account {hold['asset_id']} at"
                 f" {c.agency_name(hold['agency_id'])} to {holder}, {bank} {account}")


def _release(form, c: Context) -> Built:
    r = Reader(form, c)
    hold, amount = r.hold("hold_id", "freeze", "seal"), r.amount("amount", required=False)
    r.done()
    if "seal" in hold:
        return Built(f"/v1/seals/{hold['hold_id']}/release", {"case": c.case_ref()},
                     f"解封 Release the seal on {hold['asset_id']} at {c.agency_name(hold['agency_id'])}")
    body = {"case": c.case_ref(), **({"amount_fen": str(amount)} if amount else {})}
    what = money(amount) if amount else f"all of it ({money(hold['freeze'].get('frozen_fen'))})"
    return Built(f"/v1/freezes/{hold['hold_id']}/release", body,
                 f"解冻 Release {what} of the freeze on account {hold['asset_id']} at {c.agency_name(hold['agency_id'])}")


def _seal(form, c: Context) -> Built:
    r = Reader(form, c)
    debtor, agency, asset = r.debtor(), r.agency("agency_id", "vehicle", "realestate"), r.text("asset_id")
    r.done()
    return Built("/v1/seals", {"case": c.case_ref(), "agency_id": agency, "subject": _subject(debtor),
                               "asset_id": asset},
                 f"查封 Seal {asset} at {c.agency_name(agency)}, debtor {c.debtor_label(debtor)},"
                 " for the statutory period")


def _renew(form, c: Context) -> Built:
    r = Reader(form, c)
    hold = r.hold("hold_id", "freeze", "seal")
    r.done()
    kind = "freezes" if "freeze" in hold else "seals"
    return Built(f"/v1/{kind}/{hold['hold_id']}/renew", {"case": c.case_ref()},
                 f"续行 Renew the {'freeze' if kind == 'freezes' else 'seal'} on {hold['asset_id']} at"
                 f" {c.agency_name(hold['agency_id'])} for the statutory period")


def _transfer(form, c: Context) -> Built:
    r = Reader(form, c)
    hold = r.hold("hold_id", "seal")
    buyer_id, buyer = r.text("buyer_id", max_chars=18), r.text("buyer_name")
    ruling, price = r.text("ruling_number"), r.amount("price")
    r.done()
    return Built("/v1/transfers",
                 {"case": c.case_ref(), "hold_id": hold["hold_id"],
                  "buyer": {"type": "SUBJECT_TYPE_RESIDENT_ID", "id_number": buyer_id, "name": buyer},
                  "ruling_number": ruling, "price_fen": str(price)},
                 f"过户 Transfer {hold['asset_id']} at {c.agency_name(hold['agency_id'])} to {buyer}"
                 f" for {money(price)} under ruling {ruling}")


@dataclass(frozen=True)
class ActionForm:
    slug: str
    title: str
    fields: tuple[Field, ...]
    build: Callable[[dict, Context], Built]


_HOLD = Field("hold_id", "控制措施 Freeze or seal", "hold")
ACTIONS = {a.slug: a for a in (
    ActionForm("freeze", "冻结 Freeze", (
        Field("debtor", "被执行人 Debtor", "debtor"),
        Field("agency_id", "银行 Bank", "bank"),
        Field("account_number", "账号 Account number"),
        Field("amount", "金额（元）Amount (yuan)", "money", hint="例 e.g. 30000.00"),
    ), _freeze),
    ActionForm("deduct", "扣划 Deduct", (
        Field("hold_id", "冻结 Freeze", "freeze"),
        Field("amount", "金额（元）Amount (yuan)", "money", hint="例 e.g. 12000.00"),
        Field("court_bank", "法院开户行 Court's bank"),
        Field("court_account", "法院账号 Court's account"),
        Field("court_account_name", "法院账户名 Court's account name"),
    ), _deduct),
    ActionForm("release", "解除 Release", (
        _HOLD,
        Field("amount", "解冻金额（元，可空＝全部）Amount to release (yuan; empty: all)", "money", required=False),
    ), _release),
    ActionForm("seal", "查封 Seal", (
        Field("debtor", "被执行人 Debtor", "debtor"),
        Field("agency_id", "登记机构 Registry", "seal_agency"),
        Field("asset_id", "车牌或不动产权证号 Plate or certificate number"),
    ), _seal),
    ActionForm("renew", "续行 Renew", (_HOLD,), _renew),
    ActionForm("transfer", "过户 Transfer", (
        Field("hold_id", "查封 Seal", "seal"),
        Field("buyer_id", "买受人身份证号 Buyer's resident ID"),
        Field("buyer_name", "买受人姓名 Buyer's name"),
        Field("ruling_number", "裁定书号 Ruling number"),
        Field("price", "成交价（元）Price (yuan)", "money"),
    ), _transfer),
)}
