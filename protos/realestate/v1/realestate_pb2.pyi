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

class PropertyUse(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROPERTY_USE_UNSPECIFIED: _ClassVar[PropertyUse]
    PROPERTY_USE_RESIDENTIAL: _ClassVar[PropertyUse]
    PROPERTY_USE_COMMERCIAL: _ClassVar[PropertyUse]
    PROPERTY_USE_OFFICE: _ClassVar[PropertyUse]
    PROPERTY_USE_PARKING: _ClassVar[PropertyUse]
    PROPERTY_USE_INDUSTRIAL: _ClassVar[PropertyUse]
PROPERTY_USE_UNSPECIFIED: PropertyUse
PROPERTY_USE_RESIDENTIAL: PropertyUse
PROPERTY_USE_COMMERCIAL: PropertyUse
PROPERTY_USE_OFFICE: PropertyUse
PROPERTY_USE_PARKING: PropertyUse
PROPERTY_USE_INDUSTRIAL: PropertyUse

class Owner(_message.Message):
    __slots__ = ("subject", "share_bp")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    SHARE_BP_FIELD_NUMBER: _ClassVar[int]
    subject: _common_pb2.Subject
    share_bp: int
    def __init__(self, subject: _Optional[_Union[_common_pb2.Subject, _Mapping]] = ..., share_bp: _Optional[int] = ...) -> None: ...

class Mortgage(_message.Message):
    __slots__ = ("mortgagee", "amount_fen", "registered_on")
    MORTGAGEE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_ON_FIELD_NUMBER: _ClassVar[int]
    mortgagee: str
    amount_fen: int
    registered_on: str
    def __init__(self, mortgagee: _Optional[str] = ..., amount_fen: _Optional[int] = ..., registered_on: _Optional[str] = ...) -> None: ...

class Property(_message.Message):
    __slots__ = ("certificate_number", "unit_number", "address", "area_m2", "use", "owners", "mortgages", "registered_on", "seals")
    CERTIFICATE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    UNIT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    AREA_M2_FIELD_NUMBER: _ClassVar[int]
    USE_FIELD_NUMBER: _ClassVar[int]
    OWNERS_FIELD_NUMBER: _ClassVar[int]
    MORTGAGES_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_ON_FIELD_NUMBER: _ClassVar[int]
    SEALS_FIELD_NUMBER: _ClassVar[int]
    certificate_number: str
    unit_number: str
    address: str
    area_m2: float
    use: PropertyUse
    owners: _containers.RepeatedCompositeFieldContainer[Owner]
    mortgages: _containers.RepeatedCompositeFieldContainer[Mortgage]
    registered_on: str
    seals: _containers.RepeatedCompositeFieldContainer[_common_pb2.Seal]
    def __init__(self, certificate_number: _Optional[str] = ..., unit_number: _Optional[str] = ..., address: _Optional[str] = ..., area_m2: _Optional[float] = ..., use: _Optional[_Union[PropertyUse, str]] = ..., owners: _Optional[_Iterable[_Union[Owner, _Mapping]]] = ..., mortgages: _Optional[_Iterable[_Union[Mortgage, _Mapping]]] = ..., registered_on: _Optional[str] = ..., seals: _Optional[_Iterable[_Union[_common_pb2.Seal, _Mapping]]] = ...) -> None: ...

class QueryPropertiesRequest(_message.Message):
    __slots__ = ("request_id", "case", "subject")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    case: _common_pb2.CaseRef
    subject: _common_pb2.Subject
    def __init__(self, request_id: _Optional[str] = ..., case: _Optional[_Union[_common_pb2.CaseRef, _Mapping]] = ..., subject: _Optional[_Union[_common_pb2.Subject, _Mapping]] = ...) -> None: ...

class QueryPropertiesResponse(_message.Message):
    __slots__ = ("registry_id", "properties")
    REGISTRY_ID_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    registry_id: str
    properties: _containers.RepeatedCompositeFieldContainer[Property]
    def __init__(self, registry_id: _Optional[str] = ..., properties: _Optional[_Iterable[_Union[Property, _Mapping]]] = ...) -> None: ...

class SealRequest(_message.Message):
    __slots__ = ("idempotency_key", "case", "subject", "certificate_number", "expires_at")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case: _common_pb2.CaseRef
    subject: _common_pb2.Subject
    certificate_number: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, idempotency_key: _Optional[str] = ..., case: _Optional[_Union[_common_pb2.CaseRef, _Mapping]] = ..., subject: _Optional[_Union[_common_pb2.Subject, _Mapping]] = ..., certificate_number: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

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

class TransferRequest(_message.Message):
    __slots__ = ("idempotency_key", "case", "certificate_number", "buyer", "ruling_number", "price_fen")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    BUYER_FIELD_NUMBER: _ClassVar[int]
    RULING_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PRICE_FEN_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case: _common_pb2.CaseRef
    certificate_number: str
    buyer: _common_pb2.Subject
    ruling_number: str
    price_fen: int
    def __init__(self, idempotency_key: _Optional[str] = ..., case: _Optional[_Union[_common_pb2.CaseRef, _Mapping]] = ..., certificate_number: _Optional[str] = ..., buyer: _Optional[_Union[_common_pb2.Subject, _Mapping]] = ..., ruling_number: _Optional[str] = ..., price_fen: _Optional[int] = ...) -> None: ...

class PropertyTransfer(_message.Message):
    __slots__ = ("transfer_id", "certificate_number", "new_certificate_number", "buyer", "case_number", "court_code", "price_fen", "transferred_at", "ended_seal_ids")
    TRANSFER_ID_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    NEW_CERTIFICATE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    BUYER_FIELD_NUMBER: _ClassVar[int]
    CASE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    COURT_CODE_FIELD_NUMBER: _ClassVar[int]
    PRICE_FEN_FIELD_NUMBER: _ClassVar[int]
    TRANSFERRED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_SEAL_IDS_FIELD_NUMBER: _ClassVar[int]
    transfer_id: str
    certificate_number: str
    new_certificate_number: str
    buyer: _common_pb2.Subject
    case_number: str
    court_code: str
    price_fen: int
    transferred_at: _timestamp_pb2.Timestamp
    ended_seal_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, transfer_id: _Optional[str] = ..., certificate_number: _Optional[str] = ..., new_certificate_number: _Optional[str] = ..., buyer: _Optional[_Union[_common_pb2.Subject, _Mapping]] = ..., case_number: _Optional[str] = ..., court_code: _Optional[str] = ..., price_fen: _Optional[int] = ..., transferred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_seal_ids: _Optional[_Iterable[str]] = ...) -> None: ...
