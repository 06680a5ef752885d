"""Mock agencies as real processes: the agency sets the tests share, their environment, start-up side by side.

The shared sets are the `healthy` and `agencies` fixtures (tests/conftest.py).
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tests.support.harness import ServiceProcess

SEED = 7
SUBJECTS = 300

MODULES = {"bank": "services.bank", "vehicle": "services.vehicle", "realestate": "services.realestate"}
# The healthy set every test may share: (id, kind, bank profile).
HEALTHY = (
    ("icbc", "bank", "bank"),
    ("alipay", "bank", "payment"),
    ("hefei-vmo", "vehicle", None),
    ("hefei-rer", "realestate", None),
)
# The set the control tests share (the `agencies` fixture).
BANK, VEHICLES, PROPERTIES = "icbc", "hefei-vmo", "hefei-rer"
AGENCIES = ((BANK, "bank", "bank"), (VEHICLES, "vehicle", None), (PROPERTIES, "realestate", None))


@dataclass(frozen=True)
class Agency:
    id: str
    kind: str
    address: str
    timeout_ms: int = 1500
    process: ServiceProcess | None = field(default=None, compare=False, repr=False)
    # Several endpoints (replicas) in the registry entry instead of `address`.
    endpoints: tuple[str, ...] = ()
    # More of its registry entry (max_concurrent, answer_window_ms, ...).
    entry: tuple[tuple[str, int | float], ...] = ()


def agency_env(agency_id: str, kind: str, profile: str | None = None, **faults: str) -> dict[str, str]:
    env = {
        "AGENCY_ID": agency_id,
        "GRPC_ADDRESS": "127.0.0.1:0",
        "METRICS_ADDRESS": "127.0.0.1:0",
        "SEED": str(SEED),
        "SUBJECTS": str(SUBJECTS),
        "LOG_FORMAT": "text",
        "INSECURE_PLAINTEXT": "1",
        **faults,
    }
    if profile:
        env["BANK_PROFILE"] = profile
    return env


def start_all(start, specs) -> list[ServiceProcess]:
    """Start agency processes side by side; each takes most of a second to come up."""
    with ThreadPoolExecutor(len(specs)) as pool:
        processes = list(pool.map(lambda spec: start(MODULES[spec[1]], **spec[2]), specs))
    return processes


def start_agencies(start_service, *specs: tuple[str, str, dict[str, str]]) -> list[Agency]:
    """Agencies for one test: (id, kind, extra env) each, via the conftest fixture."""
    processes = start_all(start_service, [(i, kind, agency_env(i, kind, **env)) for i, kind, env in specs])
    return [Agency(i, kind, p.endpoints["grpc"], process=p) for (i, kind, _), p in zip(specs, processes)]


def start_mock_host(start_service, directory, prefix: str, agencies: int = 1, **env: str) -> tuple[ServiceProcess, str]:
    """A services.mockhost process serving `agencies` banks named <prefix>0000...; (process, its registry's text)."""
    registry = directory / f"{prefix}-registry.toml"
    process = start_service("services.mockhost", MOCK_AGENCIES=str(agencies), MOCK_AGENCY_PREFIX=prefix,
                            MOCK_REGISTRY=str(registry), SEED=str(SEED), SUBJECTS=str(SUBJECTS), **env)
    return process, registry.read_text(encoding="utf-8")
