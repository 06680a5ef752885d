import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from protos.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListCasesRequest(_message.Message):
    __slots__ = ("search", "limit")
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    search: str
    limit: int
    def __init__(self, search: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class CaseSummary(_message.Message):
    __slots__ = ("case", "debtors", "amount_owed_fen", "costs_fen", "deducted_fen", "registered_at", "executor_ids", "action_count")
    CASE_FIELD_NUMBER: _ClassVar[int]
    DEBTORS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_OWED_FEN_FIELD_NUMBER: _ClassVar[int]
    COSTS_FEN_FIELD_NUMBER: _ClassVar[int]
    DEDUCTED_FEN_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_IDS_FIELD_NUMBER: _ClassVar[int]
    ACTION_COUNT_FIELD_NUMBER: _ClassVar[int]
    case: _common_pb2.CaseRef
    debtors: _containers.RepeatedCompositeFieldContainer[_common_pb2.Subject]
    amount_owed_fen: int
    costs_fen: int
    deducted_fen: int
    registered_at: _timestamp_pb2.Timestamp
    executor_ids: _containers.RepeatedScalarFieldContainer[str]
    action_count: int
    def __init__(self, case: _Optional[_Union[_common_pb2.CaseRef, _Mapping]] = ..., debtors: _Optional[_Iterable[_Union[_common_pb2.Subject, _Mapping]]] = ..., amount_owed_fen: _Optional[int] = ..., costs_fen: _Optional[int] = ..., deducted_fen: _Optional[int] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., executor_ids: _Optional[_Iterable[str]] = ..., action_count: _Optional[int] = ...) -> None: ...

class ListCasesResponse(_message.Message):
    __slots__ = ("cases",)
    CASES_FIELD_NUMBER: _ClassVar[int]
    cases: _containers.RepeatedCompositeFieldContainer[CaseSummary]
    def __init__(self, cases: _Optional[_Iterable[_Union[CaseSummary, _Mapping]]] = ...) -> None: ...

class CourtReportRequest(_message.Message):
    __slots__ = ("days",)
    DAYS_FIELD_NUMBER: _ClassVar[int]
    days: int
    def __init__(self, days: _Optional[int] = ...) -> None: ...

class CourtDay(_message.Message):
    __slots__ = ("date", "cases_registered", "cases_queried", "queries", "partial_queries", "frozen_fen", "deducted_fen", "actions", "cases_enforced", "cases_settled")
    DATE_FIELD_NUMBER: _ClassVar[int]
    CASES_REGISTERED_FIELD_NUMBER: _ClassVar[int]
    CASES_QUERIED_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_QUERIES_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FEN_FIELD_NUMBER: _ClassVar[int]
    DEDUCTED_FEN_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    CASES_ENFORCED_FIELD_NUMBER: _ClassVar[int]
    CASES_SETTLED_FIELD_NUMBER: _ClassVar[int]
    date: str
    cases_registered: int
    cases_queried: int
    queries: int
    partial_queries: int
    frozen_fen: int
    deducted_fen: int
    actions: int
    cases_enforced: int
    cases_settled: int
    def __init__(self, date: _Optional[str] = ..., cases_registered: _Optional[int] = ..., cases_queried: _Optional[int] = ..., queries: _Optional[int] = ..., partial_queries: _Optional[int] = ..., frozen_fen: _Optional[int] = ..., deducted_fen: _Optional[int] = ..., actions: _Optional[int] = ..., cases_enforced: _Optional[int] = ..., cases_settled: _Optional[int] = ...) -> None: ...

class CourtReport(_message.Message):
    __slots__ = ("court_code", "time_zone", "days", "first_queried_cases", "median_first_query_s", "approvals_waiting")
    COURT_CODE_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    FIRST_QUERIED_CASES_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_FIRST_QUERY_S_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_WAITING_FIELD_NUMBER: _ClassVar[int]
    court_code: str
    time_zone: str
    days: _containers.RepeatedCompositeFieldContainer[CourtDay]
    first_queried_cases: int
    median_first_query_s: int
    approvals_waiting: int
    def __init__(self, court_code: _Optional[str] = ..., time_zone: _Optional[str] = ..., days: _Optional[_Iterable[_Union[CourtDay, _Mapping]]] = ..., first_queried_cases: _Optional[int] = ..., median_first_query_s: _Optional[int] = ..., approvals_waiting: _Optional[int] = ...) -> None: ...
