"""Deterministic, realistic Hefei test data for the mock agencies."""

from services.datagen.agencies import (
    DEFAULT_BANKS,
    DEFAULT_REALESTATE_REGISTRY,
    DEFAULT_VEHICLE_REGISTRY,
)
from services.datagen.banks import (
    BANK_PROFILES,
    AccountRecord,
    accounts_population_size,
    bank_accounts,
)
from services.datagen.population import SubjectRecord, showcase, subjects
from services.datagen.realestate import MortgageRecord, OwnerShare, PropertyRecord, properties
from services.datagen.vehicles import VehicleRecord, vehicles

__all__ = [
    "BANK_PROFILES",
    "DEFAULT_BANKS",
    "DEFAULT_REALESTATE_REGISTRY",
    "DEFAULT_VEHICLE_REGISTRY",
    "AccountRecord",
    "MortgageRecord",
    "OwnerShare",
    "PropertyRecord",
    "SubjectRecord",
    "VehicleRecord",
    "accounts_population_size",
    "bank_accounts",
    "properties",
    "showcase",
    "subjects",
    "vehicles",
]
