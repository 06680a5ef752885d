import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from protos.bank.v1 import bank_pb2 as _bank_pb2
from protos.common.v1 import common_pb2 as _common_pb2
from protos.gateway.v1 import enforce_pb2 as _enforce_pb2
from protos.realestate.v1 import realestate_pb2 as _realestate_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ActionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTION_KIND_UNSPECIFIED: _ClassVar[ActionKind]
    ACTION_KIND_FREEZE: _ClassVar[ActionKind]
    ACTION_KIND_RENEW_FREEZE: _ClassVar[ActionKind]
    ACTION_KIND_RELEASE_FREEZE: _ClassVar[ActionKind]
    ACTION_KIND_DEDUCT: _ClassVar[ActionKind]
    ACTION_KIND_SEAL: _ClassVar[ActionKind]
    ACTION_KIND_RENEW_SEAL: _ClassVar[ActionKind]
    ACTION_KIND_RELEASE_SEAL: _ClassVar[ActionKind]
    ACTION_KIND_TRANSFER: _ClassVar[ActionKind]

class ActionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTION_STATE_UNSPECIFIED: _ClassVar[ActionState]
    ACTION_STATE_PENDING: _ClassVar[ActionState]
    ACTION_STATE_SUCCEEDED: _ClassVar[ActionState]
    ACTION_STATE_REFUSED: _ClassVar[ActionState]
ACTION_KIND_UNSPECIFIED: ActionKind
ACTION_KIND_FREEZE: ActionKind
ACTION_KIND_RENEW_FREEZE: ActionKind
ACTION_KIND_RELEASE_FREEZE: ActionKind
ACTION_KIND_DEDUCT: ActionKind
ACTION_KIND_SEAL: ActionKind
ACTION_KIND_RENEW_SEAL: ActionKind
ACTION_KIND_RELEASE_SEAL: ActionKind
ACTION_KIND_TRANSFER: ActionKind
ACTION_STATE_UNSPECIFIED: ActionState
ACTION_STATE_PENDING: ActionState
ACTION_STATE_SUCCEEDED: ActionState
ACTION_STATE_REFUSED: ActionState

class RegisterCaseRequest(_message.Message):
    __slots__ = ("case", "debtors", "amount_owed_fen", "costs_fen", "executor_ids")
    CASE_FIELD_NUMBER: _ClassVar[int]
    DEBTORS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_OWED_FEN_FIELD_NUMBER: _ClassVar[int]
    COSTS_FEN_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_IDS_FIELD_NUMBER: _ClassVar[int]
    case: _common_pb2.CaseRef
    debtors: _containers.RepeatedCompositeFieldContainer[_common_pb2.Subject]
    amount_owed_fen: int
    costs_fen: int
    executor_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, case: _Optional[_Union[_common_pb2.CaseRef, _Mapping]] = ..., debtors: _Optional[_Iterable[_Union[_common_pb2.Subject, _Mapping]]] = ..., amount_owed_fen: _Optional[int] = ..., costs_fen: _Optional[int] = ..., executor_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetCaseRequest(_message.Message):
    __slots__ = ("case_number",)
    CASE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    case_number: str
    def __init__(self, case_number: _Optional[str] = ...) -> None: ...

class Action(_message.Message):
    __slots__ = ("action_id", "idempotency_key", "kind", "state", "case_number", "court_code", "executor_id", "agency_id", "hold_id", "amount_fen", "attempts", "error_code", "error_message", "created_at", "updated_at", "freeze", "deduction", "seal", "transfer")
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CASE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    COURT_CODE_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    FREEZE_FIELD_NUMBER: _ClassVar[int]
    DEDUCTION_FIELD_NUMBER: _ClassVar[int]
    SEAL_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_FIELD_NUMBER: _ClassVar[int]
    action_id: str
    idempotency_key: str
    kind: ActionKind
    state: ActionState
    case_number: str
    court_code: str
    executor_id: str
    agency_id: str
    hold_id: str
    amount_fen: int
    attempts: int
    error_code: str
    error_message: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    freeze: _bank_pb2.AccountFreeze
    deduction: _bank_pb2.Deduction
    seal: _common_pb2.Seal
    transfer: _realestate_pb2.PropertyTransfer
    def __init__(self, action_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., kind: _Optional[_Union[ActionKind, str]] = ..., state: _Optional[_Union[ActionState, str]] = ..., case_number: _Optional[str] = ..., court_code: _Optional[str] = ..., executor_id: _Optional[str] = ..., agency_id: _Optional[str] = ..., hold_id: _Optional[str] = ..., amount_fen: _Optional[int] = ..., attempts: _Optional[int] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., freeze: _Optional[_Union[_bank_pb2.AccountFreeze, _Mapping]] = ..., deduction: _Optional[_Union[_bank_pb2.Deduction, _Mapping]] = ..., seal: _Optional[_Union[_common_pb2.Seal, _Mapping]] = ..., transfer: _Optional[_Union[_realestate_pb2.PropertyTransfer, _Mapping]] = ...) -> None: ...

class Hold(_message.Message):
    __slots__ = ("hold_id", "agency_id", "asset_id", "subject", "freeze", "seal")
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    FREEZE_FIELD_NUMBER: _ClassVar[int]
    SEAL_FIELD_NUMBER: _ClassVar[int]
    hold_id: str
    agency_id: str
    asset_id: str
    subject: _common_pb2.Subject
    freeze: _bank_pb2.AccountFreeze
    seal: _common_pb2.Seal
    def __init__(self, hold_id: _Optional[str] = ..., agency_id: _Optional[str] = ..., asset_id: _Optional[str] = ..., subject: _Optional[_Union[_common_pb2.Subject, _Mapping]] = ..., freeze: _Optional[_Union[_bank_pb2.AccountFreeze, _Mapping]] = ..., seal: _Optional[_Union[_common_pb2.Seal, _Mapping]] = ...) -> None: ...

class Case(_message.Message):
    __slots__ = ("case", "debtors", "amount_owed_fen", "costs_fen", "frozen_fen", "deducted_fen", "freezable_fen", "holds", "actions", "registered_at", "executor_ids", "plans")
    CASE_FIELD_NUMBER: _ClassVar[int]
    DEBTORS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_OWED_FEN_FIELD_NUMBER: _ClassVar[int]
    COSTS_FEN_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FEN_FIELD_NUMBER: _ClassVar[int]
    DEDUCTED_FEN_FIELD_NUMBER: _ClassVar[int]
    FREEZABLE_FEN_FIELD_NUMBER: _ClassVar[int]
    HOLDS_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_IDS_FIELD_NUMBER: _ClassVar[int]
    PLANS_FIELD_NUMBER: _ClassVar[int]
    case: _common_pb2.CaseRef
    debtors: _containers.RepeatedCompositeFieldContainer[_common_pb2.Subject]
    amount_owed_fen: int
    costs_fen: int
    frozen_fen: int
    deducted_fen: int
    freezable_fen: int
    holds: _containers.RepeatedCompositeFieldContainer[Hold]
    actions: _containers.RepeatedCompositeFieldContainer[Action]
    registered_at: _timestamp_pb2.Timestamp
    executor_ids: _containers.RepeatedScalarFieldContainer[str]
    plans: _containers.RepeatedCompositeFieldContainer[_enforce_pb2.Plan]
    def __init__(self, case: _Optional[_Union[_common_pb2.CaseRef, _Mapping]] = ..., debtors: _Optional[_Iterable[_Union[_common_pb2.Subject, _Mapping]]] = ..., amount_owed_fen: _Optional[int] = ..., costs_fen: _Optional[int] = ..., frozen_fen: _Optional[int] = ..., deducted_fen: _Optional[int] = ..., freezable_fen: _Optional[int] = ..., holds: _Optional[_Iterable[_Union[Hold, _Mapping]]] = ..., actions: _Optional[_Iterable[_Union[Action, _Mapping]]] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., executor_ids: _Optional[_Iterable[str]] = ..., plans: _Optional[_Iterable[_Union[_enforce_pb2.Plan, _Mapping]]] = ...) -> None: ...

class FreezeFundsRequest(_message.Message):
    __slots__ = ("idempotency_key", "case", "agency_id", "subject", "account_number", "amount_fen", "expires_at")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case: _common_pb2.CaseRef
    agency_id: str
    subject: _common_pb2.Subject
    account_number: str
    amount_fen: int
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, idempotency_key: _Optional[str] = ..., case: _Optional[_Union[_common_pb2.CaseRef, _Mapping]] = ..., agency_id: _Optional[str] = ..., subject: _Optional[_Union[_common_pb2.Subject, _Mapping]] = ..., account_number: _Optional[str] = ..., amount_fen: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RenewHoldRequest(_message.Message):
    __slots__ = ("idempotency_key", "case", "hold_id", "expires_at")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case: _common_pb2.CaseRef
    hold_id: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, idempotency_key: _Optional[str] = ..., case: _Optional[_Union[_common_pb2.CaseRef, _Mapping]] = ..., hold_id: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReleaseFreezeRequest(_message.Message):
    __slots__ = ("idempotency_key", "case", "hold_id", "amount_fen")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case: _common_pb2.CaseRef
    hold_id: str
    amount_fen: int
    def __init__(self, idempotency_key: _Optional[str] = ..., case: _Optional[_Union[_common_pb2.CaseRef, _Mapping]] = ..., hold_id: _Optional[str] = ..., amount_fen: _Optional[int] = ...) -> None: ...

class DeductFundsRequest(_message.Message):
    __slots__ = ("idempotency_key", "case", "hold_id", "account", "amount_fen", "court_account")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    COURT_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case: _common_pb2.CaseRef
    hold_id: str
    account: DirectSource
    amount_fen: int
    court_account: _bank_pb2.CourtAccount
    def __init__(self, idempotency_key: _Optional[str] = ..., case: _Optional[_Union[_common_pb2.CaseRef, _Mapping]] = ..., hold_id: _Optional[str] = ..., account: _Optional[_Union[DirectSource, _Mapping]] = ..., amount_fen: _Optional[int] = ..., court_account: _Optional[_Union[_bank_pb2.CourtAccount, _Mapping]] = ...) -> None: ...

class DirectSource(_message.Message):
    __slots__ = ("agency_id", "subject", "account_number")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    agency_id: str
    subject: _common_pb2.Subject
    account_number: str
    def __init__(self, agency_id: _Optional[str] = ..., subject: _Optional[_Union[_common_pb2.Subject, _Mapping]] = ..., account_number: _Optional[str] = ...) -> None: ...

class SealAssetRequest(_message.Message):
    __slots__ = ("idempotency_key", "case", "agency_id", "subject", "asset_id", "expires_at")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case: _common_pb2.CaseRef
    agency_id: str
    subject: _common_pb2.Subject
    asset_id: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, idempotency_key: _Optional[str] = ..., case: _Optional[_Union[_common_pb2.CaseRef, _Mapping]] = ..., agency_id: _Optional[str] = ..., subject: _Optional[_Union[_common_pb2.Subject, _Mapping]] = ..., asset_id: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReleaseSealRequest(_message.Message):
    __slots__ = ("idempotency_key", "case", "hold_id")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case: _common_pb2.CaseRef
    hold_id: str
    def __init__(self, idempotency_key: _Optional[str] = ..., case: _Optional[_Union[_common_pb2.CaseRef, _Mapping]] = ..., hold_id: _Optional[str] = ...) -> None: ...

class TransferPropertyRequest(_message.Message):
    __slots__ = ("idempotency_key", "case", "hold_id", "buyer", "ruling_number", "price_fen")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    BUYER_FIELD_NUMBER: _ClassVar[int]
    RULING_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PRICE_FEN_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case: _common_pb2.CaseRef
    hold_id: str
    buyer: _common_pb2.Subject
    ruling_number: str
    price_fen: int
    def __init__(self, idempotency_key: _Optional[str] = ..., case: _Optional[_Union[_common_pb2.CaseRef, _Mapping]] = ..., hold_id: _Optional[str] = ..., buyer: _Optional[_Union[_common_pb2.Subject, _Mapping]] = ..., ruling_number: _Optional[str] = ..., price_fen: _Optional[int] = ...) -> None: ...
