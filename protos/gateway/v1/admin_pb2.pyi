from protos.gateway.v1 import gateway_pb2 as _gateway_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgencyEntry(_message.Message):
    __slots__ = ("agency_id", "kind", "display_name", "address", "timeout_ms")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    agency_id: str
    kind: _gateway_pb2.AgencyKind
    display_name: str
    address: str
    timeout_ms: int
    def __init__(self, agency_id: _Optional[str] = ..., kind: _Optional[_Union[_gateway_pb2.AgencyKind, str]] = ..., display_name: _Optional[str] = ..., address: _Optional[str] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class RegisterAgencyRequest(_message.Message):
    __slots__ = ("agency",)
    AGENCY_FIELD_NUMBER: _ClassVar[int]
    agency: AgencyEntry
    def __init__(self, agency: _Optional[_Union[AgencyEntry, _Mapping]] = ...) -> None: ...

class UpdateAgencyRequest(_message.Message):
    __slots__ = ("agency",)
    AGENCY_FIELD_NUMBER: _ClassVar[int]
    agency: AgencyEntry
    def __init__(self, agency: _Optional[_Union[AgencyEntry, _Mapping]] = ...) -> None: ...

class RemoveAgencyRequest(_message.Message):
    __slots__ = ("agency_id",)
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    agency_id: str
    def __init__(self, agency_id: _Optional[str] = ...) -> None: ...

class RemoveAgencyResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: AgencyEntry
    def __init__(self, removed: _Optional[_Union[AgencyEntry, _Mapping]] = ...) -> None: ...
