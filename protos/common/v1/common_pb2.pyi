import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
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
