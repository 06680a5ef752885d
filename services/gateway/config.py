"""Gateway settings, read once from the environment."""

from dataclasses import dataclass
from pathlib import Path

from services.common.settings import env_address, env_float, env_int, env_str


@dataclass(frozen=True)
class GatewaySettings:
    grpc_address: str = "127.0.0.1:50051"
    http_address: str = "127.0.0.1:8080"
    agency_registry: Path = Path("config/agencies.toml")
    # The overall deadline of one query, and the most a caller may ask for.
    query_deadline_ms: int = 2000
    # How long in-flight queries may run on when the gateway is asked to stop.
    grace_seconds: float = 5.0

    @classmethod
    def from_env(cls) -> "GatewaySettings":
        return cls(
            grpc_address=env_address("GATEWAY_GRPC_ADDRESS", cls.grpc_address),
            http_address=env_address("GATEWAY_HTTP_ADDRESS", cls.http_address),
            agency_registry=Path(env_str("AGENCY_REGISTRY", str(cls.agency_registry))),
            query_deadline_ms=env_int("QUERY_DEADLINE_MS", cls.query_deadline_ms, minimum=1, maximum=600_000),
            grace_seconds=env_float("GRACE_SECONDS", cls.grace_seconds, minimum=0.0, maximum=300.0),
        )
