"""The gateway's ledger of cases, actions and holds: SQLite by default, PostgreSQL when configured."""

from services.gateway.ledger.db import LedgerUnavailable, UniqueViolation, redact
from services.gateway.ledger.store import (
    PENDING,
    REFUSED,
    SUCCEEDED,
    ActionRecord,
    CaseConflict,
    CaseRecord,
    CaseView,
    DebtorRecord,
    Draft,
    HoldChange,
    HoldRecord,
    HoldUpdate,
    Ledger,
    Planned,
    Snapshot,
    Totals,
)

__all__ = [
    "PENDING",
    "REFUSED",
    "SUCCEEDED",
    "ActionRecord",
    "CaseConflict",
    "CaseRecord",
    "CaseView",
    "DebtorRecord",
    "Draft",
    "HoldChange",
    "HoldRecord",
    "HoldUpdate",
    "Ledger",
    "LedgerUnavailable",
    "Planned",
    "Snapshot",
    "Totals",
    "UniqueViolation",
    "redact",
]
