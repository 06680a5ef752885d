from protos.bank.v1 import bank_pb2 as _bank_pb2
from protos.common.v1 import common_pb2 as _common_pb2
from protos.realestate.v1 import realestate_pb2 as _realestate_pb2
from protos.vehicle.v1 import vehicle_pb2 as _vehicle_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgencyKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGENCY_KIND_UNSPECIFIED: _ClassVar[AgencyKind]
    AGENCY_KIND_BANK: _ClassVar[AgencyKind]
    AGENCY_KIND_VEHICLE: _ClassVar[AgencyKind]
    AGENCY_KIND_REALESTATE: _ClassVar[AgencyKind]

class AgencyStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGENCY_STATUS_UNSPECIFIED: _ClassVar[AgencyStatus]
    AGENCY_STATUS_OK: _ClassVar[AgencyStatus]
    AGENCY_STATUS_TIMEOUT: _ClassVar[AgencyStatus]
    AGENCY_STATUS_UNAVAILABLE: _ClassVar[AgencyStatus]
    AGENCY_STATUS_ERROR: _ClassVar[AgencyStatus]
AGENCY_KIND_UNSPECIFIED: AgencyKind
AGENCY_KIND_BANK: AgencyKind
AGENCY_KIND_VEHICLE: AgencyKind
AGENCY_KIND_REALESTATE: AgencyKind
AGENCY_STATUS_UNSPECIFIED: AgencyStatus
AGENCY_STATUS_OK: AgencyStatus
AGENCY_STATUS_TIMEOUT: AgencyStatus
AGENCY_STATUS_UNAVAILABLE: AgencyStatus
AGENCY_STATUS_ERROR: AgencyStatus

class AssetQueryRequest(_message.Message):
    __slots__ = ("request_id", "case", "subject", "agency_ids", "deadline_ms")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    AGENCY_IDS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    case: _common_pb2.CaseRef
    subject: _common_pb2.Subject
    agency_ids: _containers.RepeatedScalarFieldContainer[str]
    deadline_ms: int
    def __init__(self, request_id: _Optional[str] = ..., case: _Optional[_Union[_common_pb2.CaseRef, _Mapping]] = ..., subject: _Optional[_Union[_common_pb2.Subject, _Mapping]] = ..., agency_ids: _Optional[_Iterable[str]] = ..., deadline_ms: _Optional[int] = ...) -> None: ...

class AgencyResult(_message.Message):
    __slots__ = ("agency_id", "kind", "display_name", "status", "error_message", "latency_ms", "attempts", "accounts", "vehicles", "properties")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    VEHICLES_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    agency_id: str
    kind: AgencyKind
    display_name: str
    status: AgencyStatus
    error_message: str
    latency_ms: float
    attempts: int
    accounts: _containers.RepeatedCompositeFieldContainer[_bank_pb2.Account]
    vehicles: _containers.RepeatedCompositeFieldContainer[_vehicle_pb2.Vehicle]
    properties: _containers.RepeatedCompositeFieldContainer[_realestate_pb2.Property]
    def __init__(self, agency_id: _Optional[str] = ..., kind: _Optional[_Union[AgencyKind, str]] = ..., display_name: _Optional[str] = ..., status: _Optional[_Union[AgencyStatus, str]] = ..., error_message: _Optional[str] = ..., latency_ms: _Optional[float] = ..., attempts: _Optional[int] = ..., accounts: _Optional[_Iterable[_Union[_bank_pb2.Account, _Mapping]]] = ..., vehicles: _Optional[_Iterable[_Union[_vehicle_pb2.Vehicle, _Mapping]]] = ..., properties: _Optional[_Iterable[_Union[_realestate_pb2.Property, _Mapping]]] = ...) -> None: ...

class AssetSummary(_message.Message):
    __slots__ = ("total_balance_fen", "available_balance_fen", "frozen_fen", "account_count", "vehicle_count", "property_count", "agencies_asked", "agencies_ok")
    TOTAL_BALANCE_FEN_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_BALANCE_FEN_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FEN_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_COUNT_FIELD_NUMBER: _ClassVar[int]
    VEHICLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    PROPERTY_COUNT_FIELD_NUMBER: _ClassVar[int]
    AGENCIES_ASKED_FIELD_NUMBER: _ClassVar[int]
    AGENCIES_OK_FIELD_NUMBER: _ClassVar[int]
    total_balance_fen: int
    available_balance_fen: int
    frozen_fen: int
    account_count: int
    vehicle_count: int
    property_count: int
    agencies_asked: int
    agencies_ok: int
    def __init__(self, total_balance_fen: _Optional[int] = ..., available_balance_fen: _Optional[int] = ..., frozen_fen: _Optional[int] = ..., account_count: _Optional[int] = ..., vehicle_count: _Optional[int] = ..., property_count: _Optional[int] = ..., agencies_asked: _Optional[int] = ..., agencies_ok: _Optional[int] = ...) -> None: ...

class AssetQueryResponse(_message.Message):
    __slots__ = ("request_id", "results", "summary", "complete", "latency_ms")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    results: _containers.RepeatedCompositeFieldContainer[AgencyResult]
    summary: AssetSummary
    complete: bool
    latency_ms: float
    def __init__(self, request_id: _Optional[str] = ..., results: _Optional[_Iterable[_Union[AgencyResult, _Mapping]]] = ..., summary: _Optional[_Union[AssetSummary, _Mapping]] = ..., complete: _Optional[bool] = ..., latency_ms: _Optional[float] = ...) -> None: ...

class AssetQueryEvent(_message.Message):
    __slots__ = ("result", "final")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    result: AgencyResult
    final: AssetQueryResponse
    def __init__(self, result: _Optional[_Union[AgencyResult, _Mapping]] = ..., final: _Optional[_Union[AssetQueryResponse, _Mapping]] = ...) -> None: ...

class ListAgenciesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Agency(_message.Message):
    __slots__ = ("agency_id", "kind", "display_name", "address", "timeout_ms", "health", "ejected_until", "source", "external")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    EJECTED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_FIELD_NUMBER: _ClassVar[int]
    agency_id: str
    kind: AgencyKind
    display_name: str
    address: str
    timeout_ms: int
    health: str
    ejected_until: str
    source: str
    external: bool
    def __init__(self, agency_id: _Optional[str] = ..., kind: _Optional[_Union[AgencyKind, str]] = ..., display_name: _Optional[str] = ..., address: _Optional[str] = ..., timeout_ms: _Optional[int] = ..., health: _Optional[str] = ..., ejected_until: _Optional[str] = ..., source: _Optional[str] = ..., external: _Optional[bool] = ...) -> None: ...

class ListAgenciesResponse(_message.Message):
    __slots__ = ("agencies",)
    AGENCIES_FIELD_NUMBER: _ClassVar[int]
    agencies: _containers.RepeatedCompositeFieldContainer[Agency]
    def __init__(self, agencies: _Optional[_Iterable[_Union[Agency, _Mapping]]] = ...) -> None: ...
