"""The agency registry file: loaded once with tomllib and checked entry by entry."""

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from protos.gateway.v1 import gateway_pb2
from services.common.settings import SettingsError

KINDS: Mapping[str, int] = {
    "bank": gateway_pb2.AGENCY_KIND_BANK,
    "vehicle": gateway_pb2.AGENCY_KIND_VEHICLE,
    "realestate": gateway_pb2.AGENCY_KIND_REALESTATE,
}
BANK_PROFILES = ("bank", "payment", "securities")
MAX_TIMEOUT_MS = 60_000
# Endpoints of one agency (its replicas: data centres, say): a query goes to any, a control call to one.
MAX_ENDPOINTS = 8
# An agency's answer window (late answers are kept until it ends): at most a day,
# as national 总对总 feedback may take.
MAX_ANSWER_WINDOW_MS = 86_400_000

_ID = re.compile(r"[a-z0-9-]{1,32}")
_FIELDS = ("id", "kind", "name", "address", "endpoints", "timeout_ms", "profile", "external", "hedge",
           "hedge_delay_ms", "answer_window_ms", "max_concurrent", "max_calls_per_second")
FILE, ADMIN = "file", "admin"


class RegistryError(SettingsError):
    """The registry file is unreadable or an entry breaks a rule; the message names both."""

    def __init__(self, message: str, field: str = "", rule: str = ""):
        super().__init__(message)
        # For an entry: which field breaks which rule (the admin API names them).
        self.field = field
        self.rule = rule


@dataclass(frozen=True, slots=True)
class AgencyConfig:
    id: str
    kind: str
    name: str
    address: str
    timeout_ms: int
    # Only the mock agencies read it; the gateway carries it along.
    profile: str | None = None
    # The agency runs on its own: `make run` starts no mock and issues no key
    # for it (it brings a certificate signed from its own request). The
    # gateway calls it like any other.
    external: bool = False
    # Where the entry comes from: the registry file, or the admin API.
    source: str = FILE
    # Every endpoint of the agency, `address` first (replicas: agencies/replicas.py); () means (address,).
    endpoints: tuple[str, ...] = ()
    # Hedged queries (agencies/hedging.py): None follows the gateway's HEDGE_QUERIES, True or False overrides it;
    # hedge_delay_ms a fixed delay before the second attempt, 0 for one learnt from the agency's recent latency.
    hedge: bool | None = None
    hedge_delay_ms: int = 0
    # How long an answer is waited for beyond a query's deadline (0: the
    # gateway's ANSWER_WINDOW_MS), and the agency's quota on court queries
    # (0: none): calls at once, calls per second (agencies/quotas.py).
    answer_window_ms: int = 0
    max_concurrent: int = 0
    max_calls_per_second: float = 0.0

    def __post_init__(self):
        if not self.endpoints:
            object.__setattr__(self, "endpoints", (self.address,))

    @property
    def kind_value(self) -> int:
        return KINDS[self.kind]


def load_registry(path: Path | str) -> tuple[AgencyConfig, ...]:
    path = Path(path)
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except FileNotFoundError:
        raise RegistryError(f"{path}: agency registry not found (set AGENCY_REGISTRY)") from None
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read the agency registry: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{path}: not valid TOML: {exc}") from None
    return parse_registry(document, source=str(path))


def parse_registry(document: Mapping[str, object], source: str = "agency registry") -> tuple[AgencyConfig, ...]:
    """Check every entry; the first broken rule stops loading with a message naming entry and field."""
    extra = sorted(set(document) - {"agency"})
    if extra:
        raise RegistryError(f"{source}: unknown top-level key {extra[0]!r}; only [[agency]] entries belong here")
    entries = document.get("agency")
    if not isinstance(entries, list) or not entries:
        raise RegistryError(f"{source}: no [[agency]] entries")
    agencies: list[AgencyConfig] = []
    seen: dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        agency = _parse_entry(entry, f"{source}: [[agency]] #{number}")
        if agency.id in seen:
            raise RegistryError(
                f'{source}: [[agency]] #{number} (id "{agency.id}"): id: duplicate of [[agency]] #{seen[agency.id]}'
            )
        seen[agency.id] = number
        agencies.append(agency)
    return tuple(agencies)


def check_entry(entry: dict, source: str) -> AgencyConfig:
    """One entry, by the registry file's rules, from another source (the admin API): always external, one endpoint."""
    config = _parse_entry(entry, "agency")
    return AgencyConfig(id=config.id, kind=config.kind, name=config.name, address=config.address,
                        timeout_ms=config.timeout_ms, external=True, source=source)


def _parse_entry(entry: object, where: str) -> AgencyConfig:
    if not isinstance(entry, dict):
        raise RegistryError(f"{where}: must be a table")
    raw_id = entry.get("id")
    if isinstance(raw_id, str) and raw_id:
        where = f'{where} (id "{raw_id}")'

    def fail(field: str, rule: str) -> RegistryError:
        return RegistryError(f"{where}: {field}: {rule}", field, rule)

    unknown = sorted(set(entry) - set(_FIELDS))
    if unknown:
        raise fail(unknown[0], f"unknown field; expected one of {', '.join(_FIELDS)}")
    for field in ("id", "kind", "name", "timeout_ms"):
        if field not in entry:
            raise fail(field, "is required")
    if ("address" in entry) == ("endpoints" in entry):
        raise fail("address", "give address (one endpoint) or endpoints (a list of them), not both"
                   if "address" in entry else "is required (or endpoints, a list of them)")

    agency_id = entry["id"]
    if not isinstance(agency_id, str) or not _ID.fullmatch(agency_id):
        raise fail("id", "must be 1 to 32 characters from a-z, 0-9 and '-'")
    kind = entry["kind"]
    if kind not in KINDS:
        raise fail("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    name = entry["name"]
    if not isinstance(name, str) or not name.strip():
        raise fail("name", "must be a non-empty string")
    if "address" in entry:
        endpoints = [entry["address"]]
        if not isinstance(endpoints[0], str) or not _is_host_port(endpoints[0]):
            raise fail("address", f"{endpoints[0]!r} is not host:port with a port from 1 to 65535")
    else:
        endpoints = entry["endpoints"]
        if not isinstance(endpoints, list) or not 1 <= len(endpoints) <= MAX_ENDPOINTS:
            raise fail("endpoints", f"must be a list of 1 to {MAX_ENDPOINTS} host:port strings")
        for endpoint in endpoints:
            if not isinstance(endpoint, str) or not _is_host_port(endpoint):
                raise fail("endpoints", f"{endpoint!r} is not host:port with a port from 1 to 65535")
        if len(set(endpoints)) != len(endpoints):
            raise fail("endpoints", "lists an endpoint twice")
    timeout_ms = entry["timeout_ms"]
    # bool is an int in Python; `true` is never a timeout.
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or not 1 <= timeout_ms <= MAX_TIMEOUT_MS:
        raise fail("timeout_ms", f"{timeout_ms!r} is not a whole number from 1 to {MAX_TIMEOUT_MS}")
    external = entry.get("external", False)
    if not isinstance(external, bool):
        raise fail("external", f"{external!r} is not true or false")
    profile = entry.get("profile")
    if profile is not None and external:
        raise fail("profile", "describes mock data; an external agency has its own")
    if profile is not None:
        if kind != "bank":
            raise fail("profile", "only applies to kind = \"bank\"")
        if profile not in BANK_PROFILES:
            raise fail("profile", f"{profile!r} is not one of {', '.join(BANK_PROFILES)}")
    hedge = entry.get("hedge")
    if hedge is not None and not isinstance(hedge, bool):
        raise fail("hedge", f"{hedge!r} is not true or false")
    hedge_delay_ms = entry.get("hedge_delay_ms", 0)
    if isinstance(hedge_delay_ms, bool) or not isinstance(hedge_delay_ms, int) or not 0 <= hedge_delay_ms < timeout_ms:
        raise fail("hedge_delay_ms", f"{hedge_delay_ms!r} is not a whole number from 0 (learnt) to below timeout_ms")
    window = entry.get("answer_window_ms", 0)
    if isinstance(window, bool) or not isinstance(window, int) or not 0 <= window <= MAX_ANSWER_WINDOW_MS:
        raise fail("answer_window_ms", f"{window!r} is not a whole number from 0 (the gateway's default)"
                                       f" to {MAX_ANSWER_WINDOW_MS}")
    concurrent = entry.get("max_concurrent", 0)
    if isinstance(concurrent, bool) or not isinstance(concurrent, int) or not 0 <= concurrent <= 100_000:
        raise fail("max_concurrent", f"{concurrent!r} is not a whole number from 0 (no cap) to 100000")
    per_second = entry.get("max_calls_per_second", 0)
    if isinstance(per_second, bool) or not isinstance(per_second, (int, float)) or not 0 <= per_second <= 1_000_000:
        raise fail("max_calls_per_second", f"{per_second!r} is not a number from 0 (no cap) to 1000000")
    return AgencyConfig(
        id=agency_id, kind=kind, name=name, address=endpoints[0], timeout_ms=timeout_ms, profile=profile,
        external=external, endpoints=tuple(endpoints), hedge=hedge, hedge_delay_ms=hedge_delay_ms,
        answer_window_ms=window, max_concurrent=concurrent, max_calls_per_second=float(per_second),
    )


def _is_host_port(value: str) -> bool:
    host, sep, port = value.rpartition(":")
    if not sep or not host or any(c.isspace() for c in host) or not port.isdigit():
        return False
    return 1 <= int(port) <= 65535
