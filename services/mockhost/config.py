"""The mock host's settings from the environment, checked at start-up."""

import os
from dataclasses import dataclass
from pathlib import Path

import grpc

from services.common.settings import SettingsError, env_address, env_float, env_int, env_str

_PREFIX_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


@dataclass(frozen=True)
class HostSettings:
    # How many mock banks, and how each is named: "<prefix><number>", numbered from 0.
    agencies: int
    prefix: str
    # Ports per agency: each serves the same bank (its replicas, one registry entry with several endpoints).
    replicas: int
    bind_host: str
    metrics_address: str
    # The registry file written once every port listens: one [[agency]] per bank.
    registry_path: Path
    # The timeout_ms the registry entries carry.
    timeout_ms: int
    # The generator's seed and subject count, as for services.bank (each bank's data is its own).
    seed: int
    subjects: int
    # Stragglers: this share of queries waits `straggler_ms` more before answering.
    straggler_rate: float
    straggler_ms: float
    # This share of queries fails with `error_code` at once.
    error_rate: float
    error_code: grpc.StatusCode

    @classmethod
    def from_env(cls) -> "HostSettings":
        if os.environ.get("INSECURE_PLAINTEXT", "").strip() != "1":
            raise SettingsError(
                "the mock host serves plaintext only (it is a load generator's peer, not an agency):"
                " set INSECURE_PLAINTEXT=1"
            )
        prefix = env_str("MOCK_AGENCY_PREFIX", "bank")
        if not prefix or len(prefix) > 24 or not set(prefix) <= _PREFIX_CHARS:
            raise SettingsError(f"MOCK_AGENCY_PREFIX={prefix!r}: 1 to 24 characters from a-z, 0-9 and '-'")
        registry = env_str("MOCK_REGISTRY", "")
        if not registry:
            raise SettingsError("MOCK_REGISTRY is not set: the path of the agency registry file the host writes")
        code_name = env_str("MOCK_ERROR_CODE", "UNAVAILABLE").upper()
        if code_name not in grpc.StatusCode.__members__ or code_name == "OK":
            raise SettingsError(f"MOCK_ERROR_CODE={code_name!r}: not a gRPC error code name")
        host, _, _ = env_address("MOCK_BIND_ADDRESS", "127.0.0.1:0").rpartition(":")
        return cls(
            agencies=env_int("MOCK_AGENCIES", 100, minimum=1, maximum=5000),
            prefix=prefix,
            replicas=env_int("MOCK_REPLICAS", 1, minimum=1, maximum=8),
            bind_host=host,
            metrics_address=env_address("METRICS_ADDRESS", "127.0.0.1:0"),
            registry_path=Path(registry),
            timeout_ms=env_int("MOCK_TIMEOUT_MS", 2000, minimum=1, maximum=60_000),
            seed=env_int("SEED", 42, minimum=0, maximum=2**63 - 1),
            subjects=env_int("SUBJECTS", 2000, minimum=1, maximum=1_000_000),
            straggler_rate=env_float("MOCK_STRAGGLER_RATE", 0.0, minimum=0.0, maximum=1.0),
            straggler_ms=env_float("MOCK_STRAGGLER_MS", 1000.0, minimum=0.0, maximum=600_000.0),
            error_rate=env_float("MOCK_ERROR_RATE", 0.0, minimum=0.0, maximum=1.0),
            error_code=grpc.StatusCode[code_name],
        )

    def agency_id(self, number: int) -> str:
        return f"{self.prefix}{number:04d}"
