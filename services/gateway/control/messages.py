"""The ledger's records as the API's messages (Action, Hold, Case), and the labels and clocks they use."""

import time

from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from protos.bank.v1 import bank_pb2
from protos.common.v1 import common_pb2
from protos.gateway.v1 import control_pb2, enforce_pb2
from protos.realestate.v1 import realestate_pb2
from services.gateway.agencies.methods import CONTROL_METHODS
from services.gateway.ledger import SUCCEEDED, ActionRecord, CaseRecord, CaseView, HoldRecord

# The kinds and states the control modules name, once.
FREEZE, DEDUCT, SEAL = control_pb2.ACTION_KIND_FREEZE, control_pb2.ACTION_KIND_DEDUCT, control_pb2.ACTION_KIND_SEAL
ACTIVE, QUEUED, LAPSED = common_pb2.HOLD_STATE_ACTIVE, common_pb2.HOLD_STATE_QUEUED, common_pb2.HOLD_STATE_LAPSED

# Where each agency answer goes in Action.result.
_RESULT_FIELD = {
    bank_pb2.AccountFreeze: "freeze",
    bank_pb2.Deduction: "deduction",
    common_pb2.Seal: "seal",
    realestate_pb2.PropertyTransfer: "transfer",
}


def kind_label(kind: int) -> str:
    return control_pb2.ActionKind.Name(kind).removeprefix("ACTION_KIND_").lower()


def state_label(state: int) -> str:
    return control_pb2.ActionState.Name(state).removeprefix("ACTION_STATE_")


def hold_state_label(state: int) -> str:
    return common_pb2.HoldState.Name(state).removeprefix("HOLD_STATE_")


def timestamp(us: int) -> Timestamp:
    return Timestamp(seconds=us // 1_000_000, nanos=(us % 1_000_000) * 1000)


def timestamp_us(ts: Timestamp) -> int:
    return ts.seconds * 1_000_000 + ts.nanos // 1000


def now_us() -> int:
    """Microseconds since the epoch: the ledger's clock."""
    return time.time_ns() // 1000


def to_json(message: Message) -> str:
    return json_format.MessageToJson(
        message, preserving_proto_field_name=True, indent=None, ensure_ascii=False
    )


def freezable_fen(case: CaseRecord, totals) -> int:
    """What the case may still freeze: owed + costs − deducted − frozen
    (active, queued and pending), never below 0."""
    return max(0, case.amount_owed_fen + case.costs_fen - totals.deducted_fen - totals.frozen_fen)


def action_message(record: ActionRecord) -> control_pb2.Action:
    action = control_pb2.Action(
        action_id=record.action_id,
        idempotency_key=record.idempotency_key,
        kind=record.kind,
        state=record.state,
        case_number=record.case_number,
        court_code=record.court_code,
        executor_id=record.executor_id,
        agency_id=record.agency_id,
        # A freeze or seal is the hold it placed.
        hold_id=record.hold_id or (record.action_id if record.kind in (FREEZE, SEAL) and record.state == SUCCEEDED
                                   else ""),
        amount_fen=record.amount_fen,
        attempts=record.attempts,
        error_code=record.error_code,
        error_message=record.error_message,
        created_at=timestamp(record.created_at_us),
        updated_at=timestamp(record.updated_at_us),
    )
    if record.result:
        method = CONTROL_METHODS[record.agency_method]
        result = json_format.Parse(record.result, method.response_type())
        getattr(action, _RESULT_FIELD[method.response_type]).CopyFrom(result)
    return action


def hold_message(hold: HoldRecord, now_us: int) -> control_pb2.Hold:
    message = control_pb2.Hold(
        hold_id=hold.hold_id, agency_id=hold.agency_id, asset_id=hold.asset_id,
        subject=common_pb2.Subject(type=hold.subject_type, id_number=hold.subject_id, name=hold.subject_name),
    )
    detail = message.freeze if hold.hold_kind == "freeze" else message.seal
    json_format.Parse(hold.detail, detail)
    # The ledger's state wins over the stored answer (a transfer ends other
    # seals); an active hold past its expiry has lapsed at the agency, and
    # one the gateway lapsed itself waits for the agency to confirm it.
    detail.state = hold.state
    expired = hold.state == ACTIVE and hold.expires_at_us and hold.expires_at_us <= now_us
    if expired or hold.lapsed_by_gateway:
        detail.state = LAPSED
        detail.ended_at.CopyFrom(timestamp(hold.expires_at_us))
        if hold.hold_kind == "freeze":
            detail.frozen_fen = 0
    return message


def case_message(view: CaseView, now_us: int) -> control_pb2.Case:
    case = view.case
    return control_pb2.Case(
        case=common_pb2.CaseRef(
            case_number=case.case_number, court_code=case.court_code, executor_id=case.executor_id,
            document_number=case.document_number,
        ),
        debtors=[common_pb2.Subject(type=d.subject_type, id_number=d.id_number, name=d.name) for d in view.debtors],
        amount_owed_fen=case.amount_owed_fen,
        costs_fen=case.costs_fen,
        frozen_fen=view.totals.frozen_fen,
        deducted_fen=view.totals.deducted_fen,
        freezable_fen=freezable_fen(case, view.totals),
        holds=[hold_message(h, now_us) for h in view.holds],
        actions=[action_message(a) for a in view.actions],
        registered_at=timestamp(case.registered_at_us),
        executor_ids=case.assigned_executors,
        # Stored as the Plan messages they are (services/gateway/enforce/).
        plans=[json_format.Parse(body, enforce_pb2.Plan()) for body in view.plans],
    )
