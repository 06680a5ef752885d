"""Settings every mock agency reads from the environment, checked at start-up."""

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.agency import faults
from services.common.interceptors import FaultSettings
from services.common.settings import SettingsError, env_address, env_float, env_int, env_str
from services.common.tls import GATEWAY_IDENTITY, ServerTls, agency_identity

# Agency IDs end up in file names, log lines and metric labels.
_AGENCY_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")

# Mutual TLS is the default (issue 4): an agency refuses to start without
# TLS_CERT, TLS_KEY and TLS_CA unless INSECURE_PLAINTEXT=1. True would bring
# back plaintext when no TLS setting is given; nothing should need that.
PLAINTEXT_WITHOUT_TLS_SETTINGS = False
_TLS_FILES = ("TLS_CERT", "TLS_KEY", "TLS_CA")


@dataclass(frozen=True)
class AgencyDefaults:
    """What an agency kind is called and where it listens when nothing is set."""

    agency_id: str
    agency_name: str
    grpc_address: str


@dataclass(frozen=True)
class AgencySettings:
    agency_id: str
    agency_name: str
    grpc_address: str
    metrics_address: str
    data_dir: Path
    db_path: Path
    # Mock data: the generator's seed and how many subjects it draws.
    seed: int
    subjects: int
    grace_seconds: float
    faults: FaultSettings
    # None: plaintext (INSECURE_PLAINTEXT). Keyword-only with a default so
    # subclasses may add required fields and in-process tests stay short.
    tls: ServerTls | None = field(default=None, kw_only=True)
    # AGENCY_TEST_MODE=1: an empty database of its own, chakong.testing.v1
    # served (fixtures, clock) for `chakong conform`. Never in production.
    test_mode: bool = field(default=False, kw_only=True)
    # AGENCY_DELIBERATE_FAULTS (services.agency.faults): test only.
    deliberate_faults: frozenset[str] = field(default=frozenset(), kw_only=True)

    @property
    def data_parameters(self) -> dict[str, str]:
        """Everything the seeded data depends on; a change means reseeding."""
        return {
            "agency_id": self.agency_id,
            "agency_name": self.agency_name,
            "seed": str(self.seed),
            "subjects": str(self.subjects),
            # Only when set: existing seeded databases keep their fingerprint.
            **({"test_mode": "1"} if self.test_mode else {}),
        }


def agency_env(defaults: AgencyDefaults) -> dict[str, Any]:
    """The AgencySettings fields from the environment, for a subclass's from_env."""
    agency_id = env_str("AGENCY_ID", defaults.agency_id)
    if not _AGENCY_ID.fullmatch(agency_id):
        raise SettingsError(
            f"AGENCY_ID={agency_id!r}: expected 1 to 32 lower-case letters, digits or '-', for example 'icbc'"
        )
    # Another institution run from this code needs its own display name;
    # until one is given, its ID is clearer than a wrong bank's name.
    default_name = defaults.agency_name if agency_id == defaults.agency_id else agency_id
    agency_name = env_str("AGENCY_NAME", default_name)
    if len(agency_name) > 100:
        raise SettingsError(f"AGENCY_NAME={agency_name!r}: must be at most 100 characters")
    data_dir = Path(env_str("DATA_DIR", "var"))
    test_mode = env_flag("AGENCY_TEST_MODE")
    # Test mode never touches the demo data: the kit resets what it drives.
    db_path = Path(env_str("DB_PATH", str(data_dir / f"{agency_id}{'.test' if test_mode else ''}.db")))
    if db_path.exists() and not db_path.is_file():
        raise SettingsError(f"DB_PATH={str(db_path)!r}: exists and is not a file")
    return {
        "agency_id": agency_id,
        "agency_name": agency_name,
        "grpc_address": env_address("GRPC_ADDRESS", defaults.grpc_address),
        "metrics_address": env_address("METRICS_ADDRESS", "127.0.0.1:0"),
        "data_dir": data_dir,
        "db_path": db_path,
        "seed": env_int("SEED", 42, minimum=0, maximum=2**63 - 1),
        "subjects": env_int("SUBJECTS", 10_000, minimum=1, maximum=100_000_000),
        "grace_seconds": env_float("GRACE_SECONDS", 5.0, minimum=0.0, maximum=600.0),
        "faults": FaultSettings.from_env(),
        "tls": tls_env(agency_id),
        "test_mode": test_mode,
        "deliberate_faults": faults.from_env(),
    }


def env_flag(name: str) -> bool:
    value = os.environ.get(name, "").strip()
    if value not in ("", "0", "1"):
        raise SettingsError(f"{name}={value!r}: expected 1 or 0")
    return value == "1"



def tls_env(agency_id: str) -> ServerTls | None:
    """Mutual TLS from TLS_CERT, TLS_KEY, TLS_CA and TLS_ALLOWED_CLIENT; None means plaintext.

    Plaintext needs INSECURE_PLAINTEXT=1 (or, until the switch-over, no TLS
    setting at all). INSECURE_PLAINTEXT=0 demands TLS already today.
    """
    flag = os.environ.get("INSECURE_PLAINTEXT", "").strip()
    if flag not in ("", "0", "1"):
        raise SettingsError(f"INSECURE_PLAINTEXT={flag!r}: expected 1 (allow plaintext, development only) or 0")
    paths = {name: env_str(name, "") for name in _TLS_FILES}
    given = [name for name, value in paths.items() if value]
    if flag == "1":
        if given:
            raise SettingsError(f"INSECURE_PLAINTEXT=1 and {given[0]} are both set: choose plaintext or mutual TLS")
        return None
    if not given:
        if flag == "" and PLAINTEXT_WITHOUT_TLS_SETTINGS:
            return None
        raise SettingsError(
            "mutual TLS needs TLS_CERT, TLS_KEY and TLS_CA (create them with `chakong pki init`); "
            "set INSECURE_PLAINTEXT=1 to serve plaintext for development"
        )
    missing = [name for name, value in paths.items() if not value]
    if missing:
        raise SettingsError(f"{missing[0]} is not set: mutual TLS needs all of {', '.join(_TLS_FILES)}")
    allowed = [c.strip() for c in env_str("TLS_ALLOWED_CLIENT", GATEWAY_IDENTITY).split(",") if c.strip()]
    tls = ServerTls.from_files(paths["TLS_CERT"], paths["TLS_KEY"], paths["TLS_CA"], allowed)
    names = tls.names
    # The gateway would refuse a certificate naming another agency: say so now, not on every call.
    if names is None or agency_id not in names.dns_names or names.identity != agency_identity(agency_id):
        shown = ", ".join([*(names.uris if names else ()), *(names.dns_names if names else ())]) or "nothing"
        raise SettingsError(
            f"TLS_CERT={paths['TLS_CERT']!r}: names {shown}, not agency {agency_id!r} "
            f"(expected DNS {agency_id!r} and URI {agency_identity(agency_id)!r}; "
            f"`chakong pki issue --agency {agency_id}`)"
        )
    return tls
