"""Bank settings: the shared agency settings plus the kind of institution."""

from dataclasses import dataclass

from services.agency.config import AgencyDefaults, AgencySettings, agency_env
from services.common.settings import SettingsError, env_str

# Bump when the bank's tables (store.py) change; it is part of the seed
# fingerprint (Settings.data_parameters), so a DB built by older code is rebuilt.
# 3: freezes.period_us, the freezes_due index, freezes_by_account with state.
# 4: the triggers on freezes that fill the hold changes feed.
SCHEMA_VERSION = "4"

DEFAULTS = AgencyDefaults(agency_id="icbc", agency_name="中国工商银行", grpc_address="127.0.0.1:50061")

# Which accounts the mock data holds: bank deposits and wealth products,
# online payment balances, or securities cash accounts.
PROFILES = ("bank", "payment", "securities")


@dataclass(frozen=True)
class Settings(AgencySettings):
    profile: str

    @classmethod
    def from_env(cls) -> "Settings":
        profile = env_str("BANK_PROFILE", "bank").lower()
        if profile not in PROFILES:
            raise SettingsError(f"BANK_PROFILE={profile!r}: expected one of {', '.join(PROFILES)}")
        return cls(**agency_env(DEFAULTS), profile=profile)

    @property
    def data_parameters(self) -> dict[str, str]:
        # The bank's own schema version rides along with the shared one, so
        # a change to the bank's tables rebuilds only bank DBs.
        return {**super().data_parameters, "profile": self.profile, "bank_schema_version": SCHEMA_VERSION}
