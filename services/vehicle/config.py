"""Vehicle registry settings: the shared agency settings with its own defaults."""

from dataclasses import dataclass

from services.agency.config import AgencyDefaults, AgencySettings, agency_env

DEFAULTS = AgencyDefaults(
    agency_id="hefei-vmo", agency_name="合肥市公安局交警支队车辆管理所", grpc_address="127.0.0.1:50071"
)


@dataclass(frozen=True)
class Settings(AgencySettings):
    @classmethod
    def from_env(cls) -> "Settings":
        return cls(**agency_env(DEFAULTS))
