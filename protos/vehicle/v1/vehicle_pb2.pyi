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

class VehicleStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VEHICLE_STATUS_UNSPECIFIED: _ClassVar[VehicleStatus]
    VEHICLE_STATUS_NORMAL: _ClassVar[VehicleStatus]
    VEHICLE_STATUS_MORTGAGED: _ClassVar[VehicleStatus]
    VEHICLE_STATUS_SEALED: _ClassVar[VehicleStatus]
    VEHICLE_STATUS_SCRAPPED: _ClassVar[VehicleStatus]
VEHICLE_STATUS_UNSPECIFIED: VehicleStatus
VEHICLE_STATUS_NORMAL: VehicleStatus
VEHICLE_STATUS_MORTGAGED: VehicleStatus
VEHICLE_STATUS_SEALED: VehicleStatus
VEHICLE_STATUS_SCRAPPED: VehicleStatus

class Vehicle(_message.Message):
    __slots__ = ("plate", "vin", "brand", "model", "plate_type", "color", "registered_on", "status", "seals")
    PLATE_FIELD_NUMBER: _ClassVar[int]
    VIN_FIELD_NUMBER: _ClassVar[int]
    BRAND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PLATE_TYPE_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_ON_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SEALS_FIELD_NUMBER: _ClassVar[int]
    plate: str
    vin: str
    brand: str
    model: str
    plate_type: str
    color: str
    registered_on: str
    status: VehicleStatus
    seals: _containers.RepeatedCompositeFieldContainer[_common_pb2.Seal]
    def __init__(self, plate: _Optional[str] = ..., vin: _Optional[str] = ..., brand: _Optional[str] = ..., model: _Optional[str] = ..., plate_type: _Optional[str] = ..., color: _Optional[str] = ..., registered_on: _Optional[str] = ..., status: _Optional[_Union[VehicleStatus, str]] = ..., seals: _Optional[_Iterable[_Union[_common_pb2.Seal, _Mapping]]] = ...) -> None: ...

class QueryVehiclesRequest(_message.Message):
    __slots__ = ("request_id", "case", "subject")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    case: _common_pb2.CaseRef
    subject: _common_pb2.Subject
    def __init__(self, request_id: _Optional[str] = ..., case: _Optional[_Union[_common_pb2.CaseRef, _Mapping]] = ..., subject: _Optional[_Union[_common_pb2.Subject, _Mapping]] = ...) -> None: ...

class QueryVehiclesResponse(_message.Message):
    __slots__ = ("registry_id", "vehicles")
    REGISTRY_ID_FIELD_NUMBER: _ClassVar[int]
    VEHICLES_FIELD_NUMBER: _ClassVar[int]
    registry_id: str
    vehicles: _containers.RepeatedCompositeFieldContainer[Vehicle]
    def __init__(self, registry_id: _Optional[str] = ..., vehicles: _Optional[_Iterable[_Union[Vehicle, _Mapping]]] = ...) -> None: ...

class SealRequest(_message.Message):
    __slots__ = ("idempotency_key", "case", "subject", "plate", "expires_at")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    PLATE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case: _common_pb2.CaseRef
    subject: _common_pb2.Subject
    plate: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, idempotency_key: _Optional[str] = ..., case: _Optional[_Union[_common_pb2.CaseRef, _Mapping]] = ..., subject: _Optional[_Union[_common_pb2.Subject, _Mapping]] = ..., plate: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RenewSealRequest(_message.Message):
    __slots__ = ("idempotency_key", "case", "seal_id", "expires_at")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    SEAL_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case: _common_pb2.CaseRef
    seal_id: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, idempotency_key: _Optional[str] = ..., case: _Optional[_Union[_common_pb2.CaseRef, _Mapping]] = ..., seal_id: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReleaseSealRequest(_message.Message):
    __slots__ = ("idempotency_key", "case", "seal_id")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    SEAL_ID_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case: _common_pb2.CaseRef
    seal_id: str
    def __init__(self, idempotency_key: _Optional[str] = ..., case: _Optional[_Union[_common_pb2.CaseRef, _Mapping]] = ..., seal_id: _Optional[str] = ...) -> None: ...
