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

class AccountType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCOUNT_TYPE_UNSPECIFIED: _ClassVar[AccountType]
    ACCOUNT_TYPE_DEMAND_DEPOSIT: _ClassVar[AccountType]
    ACCOUNT_TYPE_TIME_DEPOSIT: _ClassVar[AccountType]
    ACCOUNT_TYPE_WEALTH_MANAGEMENT: _ClassVar[AccountType]
    ACCOUNT_TYPE_PAYMENT_BALANCE: _ClassVar[AccountType]
    ACCOUNT_TYPE_SECURITIES_CASH: _ClassVar[AccountType]

class AccountStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCOUNT_STATUS_UNSPECIFIED: _ClassVar[AccountStatus]
    ACCOUNT_STATUS_NORMAL: _ClassVar[AccountStatus]
    ACCOUNT_STATUS_DORMANT: _ClassVar[AccountStatus]
    ACCOUNT_STATUS_CLOSED: _ClassVar[AccountStatus]
ACCOUNT_TYPE_UNSPECIFIED: AccountType
ACCOUNT_TYPE_DEMAND_DEPOSIT: AccountType
ACCOUNT_TYPE_TIME_DEPOSIT: AccountType
ACCOUNT_TYPE_WEALTH_MANAGEMENT: AccountType
ACCOUNT_TYPE_PAYMENT_BALANCE: AccountType
ACCOUNT_TYPE_SECURITIES_CASH: AccountType
ACCOUNT_STATUS_UNSPECIFIED: AccountStatus
ACCOUNT_STATUS_NORMAL: AccountStatus
ACCOUNT_STATUS_DORMANT: AccountStatus
ACCOUNT_STATUS_CLOSED: AccountStatus

class Account(_message.Message):
    __slots__ = ("account_number", "type", "currency", "balance_fen", "available_balance_fen", "frozen_fen", "status", "branch", "opened_on", "freezes")
    ACCOUNT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FEN_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_BALANCE_FEN_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FEN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    OPENED_ON_FIELD_NUMBER: _ClassVar[int]
    FREEZES_FIELD_NUMBER: _ClassVar[int]
    account_number: str
    type: AccountType
    currency: str
    balance_fen: int
    available_balance_fen: int
    frozen_fen: int
    status: AccountStatus
    branch: str
    opened_on: str
    freezes: _containers.RepeatedCompositeFieldContainer[AccountFreeze]
    def __init__(self, account_number: _Optional[str] = ..., type: _Optional[_Union[AccountType, str]] = ..., currency: _Optional[str] = ..., balance_fen: _Optional[int] = ..., available_balance_fen: _Optional[int] = ..., frozen_fen: _Optional[int] = ..., status: _Optional[_Union[AccountStatus, str]] = ..., branch: _Optional[str] = ..., opened_on: _Optional[str] = ..., freezes: _Optional[_Iterable[_Union[AccountFreeze, _Mapping]]] = ...) -> None: ...

class QueryAccountsRequest(_message.Message):
    __slots__ = ("request_id", "case", "subject")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    case: _common_pb2.CaseRef
    subject: _common_pb2.Subject
    def __init__(self, request_id: _Optional[str] = ..., case: _Optional[_Union[_common_pb2.CaseRef, _Mapping]] = ..., subject: _Optional[_Union[_common_pb2.Subject, _Mapping]] = ...) -> None: ...

class QueryAccountsResponse(_message.Message):
    __slots__ = ("institution_id", "accounts")
    INSTITUTION_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    institution_id: str
    accounts: _containers.RepeatedCompositeFieldContainer[Account]
    def __init__(self, institution_id: _Optional[str] = ..., accounts: _Optional[_Iterable[_Union[Account, _Mapping]]] = ...) -> None: ...

class AccountFreeze(_message.Message):
    __slots__ = ("freeze_id", "account_number", "case_number", "court_code", "state", "requested_fen", "frozen_fen", "shortfall_fen", "deducted_fen", "queue_position", "registered_at", "effective_at", "expires_at", "ended_at")
    FREEZE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CASE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    COURT_CODE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_FEN_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FEN_FIELD_NUMBER: _ClassVar[int]
    SHORTFALL_FEN_FIELD_NUMBER: _ClassVar[int]
    DEDUCTED_FEN_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    freeze_id: str
    account_number: str
    case_number: str
    court_code: str
    state: _common_pb2.HoldState
    requested_fen: int
    frozen_fen: int
    shortfall_fen: int
    deducted_fen: int
    queue_position: int
    registered_at: _timestamp_pb2.Timestamp
    effective_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    def __init__(self, freeze_id: _Optional[str] = ..., account_number: _Optional[str] = ..., case_number: _Optional[str] = ..., court_code: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.HoldState, str]] = ..., requested_fen: _Optional[int] = ..., frozen_fen: _Optional[int] = ..., shortfall_fen: _Optional[int] = ..., deducted_fen: _Optional[int] = ..., queue_position: _Optional[int] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., effective_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FreezeRequest(_message.Message):
    __slots__ = ("idempotency_key", "case", "subject", "account_number", "amount_fen", "expires_at")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case: _common_pb2.CaseRef
    subject: _common_pb2.Subject
    account_number: str
    amount_fen: int
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, idempotency_key: _Optional[str] = ..., case: _Optional[_Union[_common_pb2.CaseRef, _Mapping]] = ..., subject: _Optional[_Union[_common_pb2.Subject, _Mapping]] = ..., account_number: _Optional[str] = ..., amount_fen: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RenewFreezeRequest(_message.Message):
    __slots__ = ("idempotency_key", "case", "freeze_id", "expires_at")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    FREEZE_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case: _common_pb2.CaseRef
    freeze_id: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, idempotency_key: _Optional[str] = ..., case: _Optional[_Union[_common_pb2.CaseRef, _Mapping]] = ..., freeze_id: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReleaseFreezeRequest(_message.Message):
    __slots__ = ("idempotency_key", "case", "freeze_id", "amount_fen")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    FREEZE_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case: _common_pb2.CaseRef
    freeze_id: str
    amount_fen: int
    def __init__(self, idempotency_key: _Optional[str] = ..., case: _Optional[_Union[_common_pb2.CaseRef, _Mapping]] = ..., freeze_id: _Optional[str] = ..., amount_fen: _Optional[int] = ...) -> None: ...

class CourtAccount(_message.Message):
    __slots__ = ("bank_name", "account_number", "account_name")
    BANK_NAME_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_NAME_FIELD_NUMBER: _ClassVar[int]
    bank_name: str
    account_number: str
    account_name: str
    def __init__(self, bank_name: _Optional[str] = ..., account_number: _Optional[str] = ..., account_name: _Optional[str] = ...) -> None: ...

class DeductRequest(_message.Message):
    __slots__ = ("idempotency_key", "case", "freeze_id", "account_number", "amount_fen", "court_account", "subject")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    FREEZE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    COURT_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case: _common_pb2.CaseRef
    freeze_id: str
    account_number: str
    amount_fen: int
    court_account: CourtAccount
    subject: _common_pb2.Subject
    def __init__(self, idempotency_key: _Optional[str] = ..., case: _Optional[_Union[_common_pb2.CaseRef, _Mapping]] = ..., freeze_id: _Optional[str] = ..., account_number: _Optional[str] = ..., amount_fen: _Optional[int] = ..., court_account: _Optional[_Union[CourtAccount, _Mapping]] = ..., subject: _Optional[_Union[_common_pb2.Subject, _Mapping]] = ...) -> None: ...

class Deduction(_message.Message):
    __slots__ = ("deduction_id", "account_number", "freeze_id", "case_number", "court_code", "amount_fen", "court_account", "deducted_at", "freeze")
    DEDUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    FREEZE_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    COURT_CODE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    COURT_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    DEDUCTED_AT_FIELD_NUMBER: _ClassVar[int]
    FREEZE_FIELD_NUMBER: _ClassVar[int]
    deduction_id: str
    account_number: str
    freeze_id: str
    case_number: str
    court_code: str
    amount_fen: int
    court_account: CourtAccount
    deducted_at: _timestamp_pb2.Timestamp
    freeze: AccountFreeze
    def __init__(self, deduction_id: _Optional[str] = ..., account_number: _Optional[str] = ..., freeze_id: _Optional[str] = ..., case_number: _Optional[str] = ..., court_code: _Optional[str] = ..., amount_fen: _Optional[int] = ..., court_account: _Optional[_Union[CourtAccount, _Mapping]] = ..., deducted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., freeze: _Optional[_Union[AccountFreeze, _Mapping]] = ...) -> None: ...

class FreezeChange(_message.Message):
    __slots__ = ("cursor", "freeze", "changed_at")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    FREEZE_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    cursor: int
    freeze: AccountFreeze
    changed_at: _timestamp_pb2.Timestamp
    def __init__(self, cursor: _Optional[int] = ..., freeze: _Optional[_Union[AccountFreeze, _Mapping]] = ..., changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FreezeChanges(_message.Message):
    __slots__ = ("changes", "last_cursor")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    LAST_CURSOR_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[FreezeChange]
    last_cursor: int
    def __init__(self, changes: _Optional[_Iterable[_Union[FreezeChange, _Mapping]]] = ..., last_cursor: _Optional[int] = ...) -> None: ...

class CaseFreezes(_message.Message):
    __slots__ = ("freezes",)
    FREEZES_FIELD_NUMBER: _ClassVar[int]
    freezes: _containers.RepeatedCompositeFieldContainer[AccountFreeze]
    def __init__(self, freezes: _Optional[_Iterable[_Union[AccountFreeze, _Mapping]]] = ...) -> None: ...
