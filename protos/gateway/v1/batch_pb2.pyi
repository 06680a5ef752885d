from protos.gateway.v1 import gateway_pb2 as _gateway_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetQueryRequest(_message.Message):
    __slots__ = ("query_id",)
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    def __init__(self, query_id: _Optional[str] = ...) -> None: ...

class RecordedAnswer(_message.Message):
    __slots__ = ("agency_id", "status", "asked_at", "arrived_at", "window_until", "late", "result")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ASKED_AT_FIELD_NUMBER: _ClassVar[int]
    ARRIVED_AT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_UNTIL_FIELD_NUMBER: _ClassVar[int]
    LATE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    agency_id: str
    status: str
    asked_at: str
    arrived_at: str
    window_until: str
    late: bool
    result: _gateway_pb2.AgencyResult
    def __init__(self, agency_id: _Optional[str] = ..., status: _Optional[str] = ..., asked_at: _Optional[str] = ..., arrived_at: _Optional[str] = ..., window_until: _Optional[str] = ..., late: _Optional[bool] = ..., result: _Optional[_Union[_gateway_pb2.AgencyResult, _Mapping]] = ...) -> None: ...

class RecordedQuery(_message.Message):
    __slots__ = ("query_id", "origin", "batch_id", "case_number", "court_code", "executor_id", "subject_id", "created_at", "answers")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    COURT_CODE_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    origin: str
    batch_id: str
    case_number: str
    court_code: str
    executor_id: str
    subject_id: str
    created_at: str
    answers: _containers.RepeatedCompositeFieldContainer[RecordedAnswer]
    def __init__(self, query_id: _Optional[str] = ..., origin: _Optional[str] = ..., batch_id: _Optional[str] = ..., case_number: _Optional[str] = ..., court_code: _Optional[str] = ..., executor_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., created_at: _Optional[str] = ..., answers: _Optional[_Iterable[_Union[RecordedAnswer, _Mapping]]] = ...) -> None: ...

class ExportBatchRequest(_message.Message):
    __slots__ = ("batch_id", "format")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    format: str
    def __init__(self, batch_id: _Optional[str] = ..., format: _Optional[str] = ...) -> None: ...

class ExportChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class BatchRow(_message.Message):
    __slots__ = ("line", "case_number", "court_code", "document_number", "debtor_id", "debtor_name")
    LINE_FIELD_NUMBER: _ClassVar[int]
    CASE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    COURT_CODE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    DEBTOR_ID_FIELD_NUMBER: _ClassVar[int]
    DEBTOR_NAME_FIELD_NUMBER: _ClassVar[int]
    line: int
    case_number: str
    court_code: str
    document_number: str
    debtor_id: str
    debtor_name: str
    def __init__(self, line: _Optional[int] = ..., case_number: _Optional[str] = ..., court_code: _Optional[str] = ..., document_number: _Optional[str] = ..., debtor_id: _Optional[str] = ..., debtor_name: _Optional[str] = ...) -> None: ...

class RejectedRow(_message.Message):
    __slots__ = ("line", "field", "rule")
    LINE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    line: int
    field: str
    rule: str
    def __init__(self, line: _Optional[int] = ..., field: _Optional[str] = ..., rule: _Optional[str] = ...) -> None: ...

class SubmitBatchRequest(_message.Message):
    __slots__ = ("rows", "agency_ids", "unread")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    AGENCY_IDS_FIELD_NUMBER: _ClassVar[int]
    UNREAD_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[BatchRow]
    agency_ids: _containers.RepeatedScalarFieldContainer[str]
    unread: _containers.RepeatedCompositeFieldContainer[RejectedRow]
    def __init__(self, rows: _Optional[_Iterable[_Union[BatchRow, _Mapping]]] = ..., agency_ids: _Optional[_Iterable[str]] = ..., unread: _Optional[_Iterable[_Union[RejectedRow, _Mapping]]] = ...) -> None: ...

class GetBatchRequest(_message.Message):
    __slots__ = ("batch_id",)
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    def __init__(self, batch_id: _Optional[str] = ...) -> None: ...

class AgencyCounts(_message.Message):
    __slots__ = ("ok", "timeout", "error", "pending")
    OK_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    ok: int
    timeout: int
    error: int
    pending: int
    def __init__(self, ok: _Optional[int] = ..., timeout: _Optional[int] = ..., error: _Optional[int] = ..., pending: _Optional[int] = ...) -> None: ...

class Batch(_message.Message):
    __slots__ = ("batch_id", "state", "total", "done", "cancelled", "agencies", "eta_seconds", "rejected", "court_code", "executor_id", "agency_ids", "created_at", "finished_at")
    class AgenciesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AgencyCounts
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AgencyCounts, _Mapping]] = ...) -> None: ...
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    AGENCIES_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    COURT_CODE_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_IDS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    state: str
    total: int
    done: int
    cancelled: int
    agencies: _containers.MessageMap[str, AgencyCounts]
    eta_seconds: float
    rejected: _containers.RepeatedCompositeFieldContainer[RejectedRow]
    court_code: str
    executor_id: str
    agency_ids: _containers.RepeatedScalarFieldContainer[str]
    created_at: str
    finished_at: str
    def __init__(self, batch_id: _Optional[str] = ..., state: _Optional[str] = ..., total: _Optional[int] = ..., done: _Optional[int] = ..., cancelled: _Optional[int] = ..., agencies: _Optional[_Mapping[str, AgencyCounts]] = ..., eta_seconds: _Optional[float] = ..., rejected: _Optional[_Iterable[_Union[RejectedRow, _Mapping]]] = ..., court_code: _Optional[str] = ..., executor_id: _Optional[str] = ..., agency_ids: _Optional[_Iterable[str]] = ..., created_at: _Optional[str] = ..., finished_at: _Optional[str] = ...) -> None: ...
