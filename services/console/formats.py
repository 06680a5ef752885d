"""How the console shows money, resident IDs and times: one place for each."""

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from services.common.logs import mask_id

# China keeps one offset all year (no daylight saving since 1991).
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
MAX_YUAN = Decimal("1000000000000")


def money(fen) -> str:
    """¥ with thousands separators: 123456789 fen -> ¥1,234,567.89."""
    value = int(fen or 0)
    sign = "-" if value < 0 else ""
    yuan, cents = divmod(abs(value), 100)
    return f"{sign}¥{yuan:,}.{cents:02d}"


def parse_yuan(text: str) -> int:
    """'30000' or '30,000.50' yuan -> fen; ValueError says what to fix."""
    cleaned = text.strip().replace(",", "").replace("¥", "").replace("，", "")
    if not cleaned:
        raise ValueError("请填写金额 Enter an amount in yuan, e.g. 30000.00")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError("金额格式不对 Not an amount: digits with at most two decimals, e.g. 30000.00") from None
    if not value.is_finite() or value != value.quantize(Decimal("0.01")):
        raise ValueError("金额最多两位小数 At most two decimals (fen), e.g. 30000.05")
    if value <= 0:
        raise ValueError("金额须大于零 The amount must be more than ¥0.00")
    if value >= MAX_YUAN:
        raise ValueError("金额过大 The amount is too large")
    return int(value * 100)


def may_see_full_ids(roles) -> bool:
    """Only a court admin sees resident IDs in full; executors work with the masked form."""
    return "admin" in roles


def resident_id(id_number: str, roles) -> str:
    return id_number if may_see_full_ids(roles) else mask_id(id_number)


def shanghai_time(value) -> str:
    """An RFC 3339 timestamp (proto3 JSON) or Unix seconds, as YYYY-MM-DD HH:MM:SS in Asia/Shanghai."""
    if value in (None, "", 0):
        return "—"
    if isinstance(value, (int, float)):
        moment = datetime.fromtimestamp(value, timezone.utc)
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def latency(ms) -> str:
    return f"{float(ms or 0):,.0f} ms"


# Enum names of the gateway's JSON, as labels: Chinese first, then English.
AGENCY_KINDS = {"bank": "银行 Bank", "vehicle": "车辆 Vehicles", "realestate": "不动产 Real estate"}
SUBJECT_TYPES = {"SUBJECT_TYPE_RESIDENT_ID": "居民身份证 Resident ID",
                 "SUBJECT_TYPE_CREDIT_CODE": "统一社会信用代码 Credit code", "SUBJECT_TYPE_PASSPORT": "护照 Passport"}
ACTION_KINDS = {"FREEZE": "冻结", "RENEW_FREEZE": "续冻", "RELEASE_FREEZE": "解冻", "DEDUCT": "扣划", "SEAL": "查封",
                "RENEW_SEAL": "续封", "RELEASE_SEAL": "解封", "TRANSFER": "过户"}
ACTION_STATES = {"ACTION_STATE_SUCCEEDED": "已完成 SUCCEEDED",
                 "ACTION_STATE_PENDING": "处理中 PENDING (the gateway keeps driving it)",
                 "ACTION_STATE_REFUSED": "被拒绝 REFUSED"}
AGENCY_STATUSES = {
    "AGENCY_STATUS_OK": "成功 OK", "AGENCY_STATUS_ERROR": "错误 ERROR", "AGENCY_STATUS_TIMEOUT": "超时 TIMEOUT",
    "AGENCY_STATUS_UNAVAILABLE": "不可用 UNAVAILABLE", "AGENCY_STATUS_UNSPECIFIED": "未知 UNKNOWN",
}


# The protos' enums: a value's JSON name is its enum's name in UPPER_SNAKE, "_", then the value.
ENUMS = ("AccountStatus", "AccountType", "ActionKind", "ActionState", "AgencyKind", "AgencyStatus", "ApprovalState",
         "HoldState", "PlanState", "PropertyUse", "StepKind", "StepState", "SubjectType", "TriageClass",
         "VehicleStatus")
_ENUM_PREFIXES = tuple(re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper() + "_" for name in ENUMS)


def enum_value(name) -> str:
    """'PLAN_STATE_WAITING_APPROVAL' -> 'WAITING_APPROVAL'; '' -> '—'."""
    if not name:
        return "—"
    return next((name[len(p):] for p in _ENUM_PREFIXES if name.startswith(p)), name)


def agency_kind(kind: str) -> str:
    return AGENCY_KINDS.get(kind, kind)


def subject_type(name: str) -> str:
    return SUBJECT_TYPES.get(name, name)


def agency_status(name: str) -> str:
    return AGENCY_STATUSES.get(name, name)


def action_state(name: str) -> str:
    return ACTION_STATES.get(name, name)


def action_kind(name: str) -> str:
    kind = enum_value(name)
    return f"{ACTION_KINDS.get(kind, '')} {kind}".strip()


PLAN_STATES = {"PLAN_STATE_DRAFT": "待执行 DRAFT (nothing done yet)", "PLAN_STATE_EXECUTING": "执行中 EXECUTING",
               "PLAN_STATE_WAITING_APPROVAL": "待审批 WAITING_APPROVAL", "PLAN_STATE_DONE": "已完成 DONE"}
TRIAGE_CLASSES = {"TRIAGE_CLASS_SETTLED": "执行完毕 SETTLED", "TRIAGE_CLASS_PARTIAL": "部分执行 PARTIAL",
                  "TRIAGE_CLASS_NO_ASSETS": "无财产可供执行 NO_ASSETS",
                  "TRIAGE_CLASS_WAITING_APPROVAL": "待审批 WAITING_APPROVAL", "TRIAGE_CLASS_FAILED": "失败 FAILED",
                  "TRIAGE_CLASS_UNSPECIFIED": "—"}
STEP_KINDS = {"STEP_KIND_FREEZE": "冻结 Freeze", "STEP_KIND_DEDUCT": "扣划 Deduct", "STEP_KIND_SEAL": "查封 Seal",
              "STEP_KIND_RELEASE_FREEZE": "解冻 Release"}


def plan_state(name: str) -> str:
    return PLAN_STATES.get(name, name)


def triage_class(name: str) -> str:
    return TRIAGE_CLASSES.get(name, name)


def step_kind(name: str) -> str:
    return STEP_KINDS.get(name, name)
