import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from protos.bank.v1 import bank_pb2 as _bank_pb2
from protos.common.v1 import common_pb2 as _common_pb2
from protos.realestate.v1 import realestate_pb2 as _realestate_pb2
from protos.vehicle.v1 import vehicle_pb2 as _vehicle_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResetRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResetResponse(_message.Message):
    __slots__ = ("now",)
    NOW_FIELD_NUMBER: _ClassVar[int]
    now: _timestamp_pb2.Timestamp
    def __init__(self, now: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LoadFixturesRequest(_message.Message):
    __slots__ = ("subjects", "accounts", "vehicles", "properties")
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    VEHICLES_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    subjects: _containers.RepeatedCompositeFieldContainer[_common_pb2.Subject]
    accounts: _containers.RepeatedCompositeFieldContainer[FixtureAccount]
    vehicles: _containers.RepeatedCompositeFieldContainer[FixtureVehicle]
    properties: _containers.RepeatedCompositeFieldContainer[_realestate_pb2.Property]
    def __init__(self, subjects: _Optional[_Iterable[_Union[_common_pb2.Subject, _Mapping]]] = ..., accounts: _Optional[_Iterable[_Union[FixtureAccount, _Mapping]]] = ..., vehicles: _Optional[_Iterable[_Union[FixtureVehicle, _Mapping]]] = ..., properties: _Optional[_Iterable[_Union[_realestate_pb2.Property, _Mapping]]] = ...) -> None: ...

class FixtureAccount(_message.Message):
    __slots__ = ("owner_id_number", "account")
    OWNER_ID_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    owner_id_number: str
    account: _bank_pb2.Account
    def __init__(self, owner_id_number: _Optional[str] = ..., account: _Optional[_Union[_bank_pb2.Account, _Mapping]] = ...) -> None: ...

class FixtureVehicle(_message.Message):
    __slots__ = ("owner_id_number", "vehicle")
    OWNER_ID_NUMBER_FIELD_NUMBER: _ClassVar[int]
    VEHICLE_FIELD_NUMBER: _ClassVar[int]
    owner_id_number: str
    vehicle: _vehicle_pb2.Vehicle
    def __init__(self, owner_id_number: _Optional[str] = ..., vehicle: _Optional[_Union[_vehicle_pb2.Vehicle, _Mapping]] = ...) -> None: ...

class LoadFixturesResponse(_message.Message):
    __slots__ = ("subjects", "records")
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    subjects: int
    records: int
    def __init__(self, subjects: _Optional[int] = ..., records: _Optional[int] = ...) -> None: ...

class AdvanceClockRequest(_message.Message):
    __slots__ = ("by",)
    BY_FIELD_NUMBER: _ClassVar[int]
    by: _duration_pb2.Duration
    def __init__(self, by: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class AdvanceClockResponse(_message.Message):
    __slots__ = ("now",)
    NOW_FIELD_NUMBER: _ClassVar[int]
    now: _timestamp_pb2.Timestamp
    def __init__(self, now: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
