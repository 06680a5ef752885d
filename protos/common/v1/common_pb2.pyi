import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubjectType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUBJECT_TYPE_UNSPECIFIED: _ClassVar[SubjectType]
    SUBJECT_TYPE_RESIDENT_ID: _ClassVar[SubjectType]
    SUBJECT_TYPE_CREDIT_CODE: _ClassVar[SubjectType]
    SUBJECT_TYPE_PASSPORT: _ClassVar[SubjectType]

class HoldState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HOLD_STATE_UNSPECIFIED: _ClassVar[HoldState]
    HOLD_STATE_ACTIVE: _ClassVar[HoldState]
    HOLD_STATE_QUEUED: _ClassVar[HoldState]
    HOLD_STATE_RELEASED: _ClassVar[HoldState]
    HOLD_STATE_LAPSED: _ClassVar[HoldState]
    HOLD_STATE_DEDUCTED: _ClassVar[HoldState]
    HOLD_STATE_TRANSFERRED: _ClassVar[HoldState]
SUBJECT_TYPE_UNSPECIFIED: SubjectType
SUBJECT_TYPE_RESIDENT_ID: SubjectType
SUBJECT_TYPE_CREDIT_CODE: SubjectType
SUBJECT_TYPE_PASSPORT: SubjectType
HOLD_STATE_UNSPECIFIED: HoldState
HOLD_STATE_ACTIVE: HoldState
HOLD_STATE_QUEUED: HoldState
HOLD_STATE_RELEASED: HoldState
HOLD_STATE_LAPSED: HoldState
HOLD_STATE_DEDUCTED: HoldState
HOLD_STATE_TRANSFERRED: HoldState

class Subject(_message.Message):
    __slots__ = ("type", "id_number", "name")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ID_NUMBER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    type: SubjectType
    id_number: str
    name: str
    def __init__(self, type: _Optional[_Union[SubjectType, str]] = ..., id_number: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class CaseRef(_message.Message):
    __slots__ = ("case_number", "court_code", "executor_id", "document_number")
    CASE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    COURT_CODE_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    case_number: str
    court_code: str
    executor_id: str
    document_number: str
    def __init__(self, case_number: _Optional[str] = ..., court_code: _Optional[str] = ..., executor_id: _Optional[str] = ..., document_number: _Optional[str] = ...) -> None: ...

class Seal(_message.Message):
    __slots__ = ("seal_id", "asset_id", "case_number", "court_code", "state", "queue_position", "registered_at", "effective_at", "expires_at", "ended_at")
    SEAL_ID_FIELD_NUMBER: _ClassVar[int]
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    COURT_CODE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    seal_id: str
    asset_id: str
    case_number: str
    court_code: str
    state: HoldState
    queue_position: int
    registered_at: _timestamp_pb2.Timestamp
    effective_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    def __init__(self, seal_id: _Optional[str] = ..., asset_id: _Optional[str] = ..., case_number: _Optional[str] = ..., court_code: _Optional[str] = ..., state: _Optional[_Union[HoldState, str]] = ..., queue_position: _Optional[int] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., effective_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class HoldChangesRequest(_message.Message):
    __slots__ = ("request_id", "after_cursor", "limit")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_CURSOR_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    after_cursor: int
    limit: int
    def __init__(self, request_id: _Optional[str] = ..., after_cursor: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class SealChange(_message.Message):
    __slots__ = ("cursor", "seal", "changed_at")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    SEAL_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    cursor: int
    seal: Seal
    changed_at: _timestamp_pb2.Timestamp
    def __init__(self, cursor: _Optional[int] = ..., seal: _Optional[_Union[Seal, _Mapping]] = ..., changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SealChanges(_message.Message):
    __slots__ = ("changes", "last_cursor")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    LAST_CURSOR_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[SealChange]
    last_cursor: int
    def __init__(self, changes: _Optional[_Iterable[_Union[SealChange, _Mapping]]] = ..., last_cursor: _Optional[int] = ...) -> None: ...

class CaseHoldsRequest(_message.Message):
    __slots__ = ("request_id", "case")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    case: CaseRef
    def __init__(self, request_id: _Optional[str] = ..., case: _Optional[_Union[CaseRef, _Mapping]] = ...) -> None: ...

class CaseSeals(_message.Message):
    __slots__ = ("seals",)
    SEALS_FIELD_NUMBER: _ClassVar[int]
    seals: _containers.RepeatedCompositeFieldContainer[Seal]
    def __init__(self, seals: _Optional[_Iterable[_Union[Seal, _Mapping]]] = ...) -> None: ...
