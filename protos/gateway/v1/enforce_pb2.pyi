import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from protos.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PlanState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLAN_STATE_UNSPECIFIED: _ClassVar[PlanState]
    PLAN_STATE_DRAFT: _ClassVar[PlanState]
    PLAN_STATE_EXECUTING: _ClassVar[PlanState]
    PLAN_STATE_WAITING_APPROVAL: _ClassVar[PlanState]
    PLAN_STATE_DONE: _ClassVar[PlanState]

class StepKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_KIND_UNSPECIFIED: _ClassVar[StepKind]
    STEP_KIND_FREEZE: _ClassVar[StepKind]
    STEP_KIND_DEDUCT: _ClassVar[StepKind]
    STEP_KIND_SEAL: _ClassVar[StepKind]
    STEP_KIND_RELEASE_FREEZE: _ClassVar[StepKind]

class StepState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_STATE_UNSPECIFIED: _ClassVar[StepState]
    STEP_STATE_PLANNED: _ClassVar[StepState]
    STEP_STATE_READY: _ClassVar[StepState]
    STEP_STATE_PENDING: _ClassVar[StepState]
    STEP_STATE_SUCCEEDED: _ClassVar[StepState]
    STEP_STATE_FAILED: _ClassVar[StepState]
    STEP_STATE_SKIPPED: _ClassVar[StepState]
    STEP_STATE_WAITING_APPROVAL: _ClassVar[StepState]

class TriageClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRIAGE_CLASS_UNSPECIFIED: _ClassVar[TriageClass]
    TRIAGE_CLASS_SETTLED: _ClassVar[TriageClass]
    TRIAGE_CLASS_PARTIAL: _ClassVar[TriageClass]
    TRIAGE_CLASS_NO_ASSETS: _ClassVar[TriageClass]
    TRIAGE_CLASS_WAITING_APPROVAL: _ClassVar[TriageClass]
    TRIAGE_CLASS_FAILED: _ClassVar[TriageClass]

class ApprovalState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    APPROVAL_STATE_UNSPECIFIED: _ClassVar[ApprovalState]
    APPROVAL_STATE_WAITING: _ClassVar[ApprovalState]
    APPROVAL_STATE_APPROVED: _ClassVar[ApprovalState]
    APPROVAL_STATE_REJECTED: _ClassVar[ApprovalState]
    APPROVAL_STATE_EXPIRED: _ClassVar[ApprovalState]
PLAN_STATE_UNSPECIFIED: PlanState
PLAN_STATE_DRAFT: PlanState
PLAN_STATE_EXECUTING: PlanState
PLAN_STATE_WAITING_APPROVAL: PlanState
PLAN_STATE_DONE: PlanState
STEP_KIND_UNSPECIFIED: StepKind
STEP_KIND_FREEZE: StepKind
STEP_KIND_DEDUCT: StepKind
STEP_KIND_SEAL: StepKind
STEP_KIND_RELEASE_FREEZE: StepKind
STEP_STATE_UNSPECIFIED: StepState
STEP_STATE_PLANNED: StepState
STEP_STATE_READY: StepState
STEP_STATE_PENDING: StepState
STEP_STATE_SUCCEEDED: StepState
STEP_STATE_FAILED: StepState
STEP_STATE_SKIPPED: StepState
STEP_STATE_WAITING_APPROVAL: StepState
TRIAGE_CLASS_UNSPECIFIED: TriageClass
TRIAGE_CLASS_SETTLED: TriageClass
TRIAGE_CLASS_PARTIAL: TriageClass
TRIAGE_CLASS_NO_ASSETS: TriageClass
TRIAGE_CLASS_WAITING_APPROVAL: TriageClass
TRIAGE_CLASS_FAILED: TriageClass
APPROVAL_STATE_UNSPECIFIED: ApprovalState
APPROVAL_STATE_WAITING: ApprovalState
APPROVAL_STATE_APPROVED: ApprovalState
APPROVAL_STATE_REJECTED: ApprovalState
APPROVAL_STATE_EXPIRED: ApprovalState

class EnforceRequest(_message.Message):
    __slots__ = ("case_number", "dry_run", "plan_id", "document_number")
    CASE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    case_number: str
    dry_run: bool
    plan_id: str
    document_number: str
    def __init__(self, case_number: _Optional[str] = ..., dry_run: _Optional[bool] = ..., plan_id: _Optional[str] = ..., document_number: _Optional[str] = ...) -> None: ...

class GetPlanRequest(_message.Message):
    __slots__ = ("case_number", "plan_id")
    CASE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    case_number: str
    plan_id: str
    def __init__(self, case_number: _Optional[str] = ..., plan_id: _Optional[str] = ...) -> None: ...

class PlanStep(_message.Message):
    __slots__ = ("step", "kind", "agency_id", "subject", "target", "account_type", "amount_fen", "planned_fen", "reason", "state", "action_id", "hold_id", "from_step", "outcome", "error_code", "done_fen")
    STEP_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_TYPE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    PLANNED_FEN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_STEP_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    DONE_FEN_FIELD_NUMBER: _ClassVar[int]
    step: int
    kind: StepKind
    agency_id: str
    subject: _common_pb2.Subject
    target: str
    account_type: str
    amount_fen: int
    planned_fen: int
    reason: str
    state: StepState
    action_id: str
    hold_id: str
    from_step: int
    outcome: str
    error_code: str
    done_fen: int
    def __init__(self, step: _Optional[int] = ..., kind: _Optional[_Union[StepKind, str]] = ..., agency_id: _Optional[str] = ..., subject: _Optional[_Union[_common_pb2.Subject, _Mapping]] = ..., target: _Optional[str] = ..., account_type: _Optional[str] = ..., amount_fen: _Optional[int] = ..., planned_fen: _Optional[int] = ..., reason: _Optional[str] = ..., state: _Optional[_Union[StepState, str]] = ..., action_id: _Optional[str] = ..., hold_id: _Optional[str] = ..., from_step: _Optional[int] = ..., outcome: _Optional[str] = ..., error_code: _Optional[str] = ..., done_fen: _Optional[int] = ...) -> None: ...

class PlanChange(_message.Message):
    __slots__ = ("step", "description", "planned_fen", "amount_fen")
    STEP_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PLANNED_FEN_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    step: int
    description: str
    planned_fen: int
    amount_fen: int
    def __init__(self, step: _Optional[int] = ..., description: _Optional[str] = ..., planned_fen: _Optional[int] = ..., amount_fen: _Optional[int] = ...) -> None: ...

class Triage(_message.Message):
    __slots__ = ("triage_class", "reason", "deducted_fen", "frozen_fen", "owed_fen", "seized_hold_ids", "agency_id", "expected_class")
    TRIAGE_CLASS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DEDUCTED_FEN_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FEN_FIELD_NUMBER: _ClassVar[int]
    OWED_FEN_FIELD_NUMBER: _ClassVar[int]
    SEIZED_HOLD_IDS_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_CLASS_FIELD_NUMBER: _ClassVar[int]
    triage_class: TriageClass
    reason: str
    deducted_fen: int
    frozen_fen: int
    owed_fen: int
    seized_hold_ids: _containers.RepeatedScalarFieldContainer[str]
    agency_id: str
    expected_class: TriageClass
    def __init__(self, triage_class: _Optional[_Union[TriageClass, str]] = ..., reason: _Optional[str] = ..., deducted_fen: _Optional[int] = ..., frozen_fen: _Optional[int] = ..., owed_fen: _Optional[int] = ..., seized_hold_ids: _Optional[_Iterable[str]] = ..., agency_id: _Optional[str] = ..., expected_class: _Optional[_Union[TriageClass, str]] = ...) -> None: ...

class PlanQuery(_message.Message):
    __slots__ = ("agencies_asked", "agencies_ok", "unanswered", "accounts", "available_fen", "vehicles", "properties", "queried_at")
    AGENCIES_ASKED_FIELD_NUMBER: _ClassVar[int]
    AGENCIES_OK_FIELD_NUMBER: _ClassVar[int]
    UNANSWERED_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FEN_FIELD_NUMBER: _ClassVar[int]
    VEHICLES_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    QUERIED_AT_FIELD_NUMBER: _ClassVar[int]
    agencies_asked: int
    agencies_ok: int
    unanswered: _containers.RepeatedScalarFieldContainer[str]
    accounts: int
    available_fen: int
    vehicles: int
    properties: int
    queried_at: _timestamp_pb2.Timestamp
    def __init__(self, agencies_asked: _Optional[int] = ..., agencies_ok: _Optional[int] = ..., unanswered: _Optional[_Iterable[str]] = ..., accounts: _Optional[int] = ..., available_fen: _Optional[int] = ..., vehicles: _Optional[int] = ..., properties: _Optional[int] = ..., queried_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Approval(_message.Message):
    __slots__ = ("approval_id", "plan_id", "case_number", "court_code", "requested_by", "state", "deduct_fen", "threshold_fen", "requested_at", "expires_at", "decided_by", "reason", "decided_at", "freezes_on_reject")
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    COURT_CODE_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DEDUCT_FEN_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FEN_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    FREEZES_ON_REJECT_FIELD_NUMBER: _ClassVar[int]
    approval_id: str
    plan_id: str
    case_number: str
    court_code: str
    requested_by: str
    state: ApprovalState
    deduct_fen: int
    threshold_fen: int
    requested_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    decided_by: str
    reason: str
    decided_at: _timestamp_pb2.Timestamp
    freezes_on_reject: str
    def __init__(self, approval_id: _Optional[str] = ..., plan_id: _Optional[str] = ..., case_number: _Optional[str] = ..., court_code: _Optional[str] = ..., requested_by: _Optional[str] = ..., state: _Optional[_Union[ApprovalState, str]] = ..., deduct_fen: _Optional[int] = ..., threshold_fen: _Optional[int] = ..., requested_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decided_by: _Optional[str] = ..., reason: _Optional[str] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., freezes_on_reject: _Optional[str] = ...) -> None: ...

class Plan(_message.Message):
    __slots__ = ("plan_id", "case_number", "court_code", "requested_by", "document_number", "state", "triage", "steps", "changes", "query", "approval", "created_at", "updated_at", "order")
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    COURT_CODE_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TRIAGE_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    plan_id: str
    case_number: str
    court_code: str
    requested_by: str
    document_number: str
    state: PlanState
    triage: Triage
    steps: _containers.RepeatedCompositeFieldContainer[PlanStep]
    changes: _containers.RepeatedCompositeFieldContainer[PlanChange]
    query: PlanQuery
    approval: Approval
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    order: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, plan_id: _Optional[str] = ..., case_number: _Optional[str] = ..., court_code: _Optional[str] = ..., requested_by: _Optional[str] = ..., document_number: _Optional[str] = ..., state: _Optional[_Union[PlanState, str]] = ..., triage: _Optional[_Union[Triage, _Mapping]] = ..., steps: _Optional[_Iterable[_Union[PlanStep, _Mapping]]] = ..., changes: _Optional[_Iterable[_Union[PlanChange, _Mapping]]] = ..., query: _Optional[_Union[PlanQuery, _Mapping]] = ..., approval: _Optional[_Union[Approval, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., order: _Optional[_Iterable[str]] = ...) -> None: ...

class ListApprovalsRequest(_message.Message):
    __slots__ = ("all",)
    ALL_FIELD_NUMBER: _ClassVar[int]
    all: bool
    def __init__(self, all: _Optional[bool] = ...) -> None: ...

class ListApprovalsResponse(_message.Message):
    __slots__ = ("approvals",)
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    approvals: _containers.RepeatedCompositeFieldContainer[Approval]
    def __init__(self, approvals: _Optional[_Iterable[_Union[Approval, _Mapping]]] = ...) -> None: ...

class DecideApprovalRequest(_message.Message):
    __slots__ = ("approval_id", "reason")
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    approval_id: str
    reason: str
    def __init__(self, approval_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class EnforceBatchRequest(_message.Message):
    __slots__ = ("batch_id", "dry_run")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    dry_run: bool
    def __init__(self, batch_id: _Optional[str] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class GetBatchEnforcementRequest(_message.Message):
    __slots__ = ("batch_id",)
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    def __init__(self, batch_id: _Optional[str] = ...) -> None: ...

class CasePlan(_message.Message):
    __slots__ = ("line", "case_number", "plan_id", "state", "triage_class", "expected_class", "deducted_fen", "frozen_fen", "owed_fen", "reason")
    LINE_FIELD_NUMBER: _ClassVar[int]
    CASE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TRIAGE_CLASS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_CLASS_FIELD_NUMBER: _ClassVar[int]
    DEDUCTED_FEN_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FEN_FIELD_NUMBER: _ClassVar[int]
    OWED_FEN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    line: int
    case_number: str
    plan_id: str
    state: PlanState
    triage_class: TriageClass
    expected_class: TriageClass
    deducted_fen: int
    frozen_fen: int
    owed_fen: int
    reason: str
    def __init__(self, line: _Optional[int] = ..., case_number: _Optional[str] = ..., plan_id: _Optional[str] = ..., state: _Optional[_Union[PlanState, str]] = ..., triage_class: _Optional[_Union[TriageClass, str]] = ..., expected_class: _Optional[_Union[TriageClass, str]] = ..., deducted_fen: _Optional[int] = ..., frozen_fen: _Optional[int] = ..., owed_fen: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class BatchEnforcement(_message.Message):
    __slots__ = ("batch_id", "cases", "planned", "executed", "running", "plans", "settled", "partial", "no_assets", "waiting_approval", "failed", "deducted_fen", "frozen_fen")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    CASES_FIELD_NUMBER: _ClassVar[int]
    PLANNED_FIELD_NUMBER: _ClassVar[int]
    EXECUTED_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    PLANS_FIELD_NUMBER: _ClassVar[int]
    SETTLED_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    NO_ASSETS_FIELD_NUMBER: _ClassVar[int]
    WAITING_APPROVAL_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    DEDUCTED_FEN_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FEN_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    cases: int
    planned: int
    executed: int
    running: bool
    plans: _containers.RepeatedCompositeFieldContainer[CasePlan]
    settled: int
    partial: int
    no_assets: int
    waiting_approval: int
    failed: int
    deducted_fen: int
    frozen_fen: int
    def __init__(self, batch_id: _Optional[str] = ..., cases: _Optional[int] = ..., planned: _Optional[int] = ..., executed: _Optional[int] = ..., running: _Optional[bool] = ..., plans: _Optional[_Iterable[_Union[CasePlan, _Mapping]]] = ..., settled: _Optional[int] = ..., partial: _Optional[int] = ..., no_assets: _Optional[int] = ..., waiting_approval: _Optional[int] = ..., failed: _Optional[int] = ..., deducted_fen: _Optional[int] = ..., frozen_fen: _Optional[int] = ...) -> None: ...
