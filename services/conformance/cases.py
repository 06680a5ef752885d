"""Test cases as data: the YAML files of services/conformance/cases/ (or --cases DIR), loaded and checked.

Files whose name starts with "_" are shared by the others, not cases:
`_shared.yaml` holds the variables every file sees (`vars`, `kind_vars`)
and named fixture sets (`fixture_sets`) a file or case names instead of
spelling them out (`fixtures: standard`).

A file:

    kinds: [bank]                  # the agency kinds its cases are for
    vars: {court_a: {...}}         # variables every case of the file sees
    kind_vars: {vehicle: {...}}    # more, per kind (files shared by kinds)
    fixtures: {subjects: [...], accounts: [...]}   # loaded after Reset, before each case
    cases:
      - id: bank.freeze.exact      # unique, stable: known-failing lists name it
        title: A freeze within the available balance holds exactly the amount asked
        rule: the contract's words this case checks (shown when it fails)
        requires: [freeze]         # capabilities; a case needing one not offered is skipped
        fixtures: {...}            # instead of the file's
        reset: true                # false: no Reset/LoadFixtures (health, reflection, identity)
        steps: [...]

A step is one of:

    - call: Freeze                 # an RPC of the agency's service
      request: {...}               # proto3 JSON, with ${...} (services/conformance/expressions.py)
      as: gateway                  # or intruder (another CA certificate) or anonymous (none)
      timeout_ms: 5000
      expect:
        code: OK                   # or a list of codes
        details: "^expires_at: "   # a regular expression the status message must match
        within_ms: 1500
        fields: {state: HOLD_STATE_ACTIVE, frozen_fen: 300000, "accounts[0].freezes": {len: 1}}
      save: {freeze: ""}           # the whole answer, or a field path of it, as ${freeze}
    - advance: 31d                 # AgencyTesting.AdvanceClock
    - health: ""                   # grpc.health.v1 Check for this service name; expect {status: SERVING}
    - reflection: true             # server reflection lists the agency's service
    - server_identity: true        # the server certificate names the agency (URI and DNS SAN)

Field expectations compare a value, or apply operators: eq, ne, gt, gte, lt,
lte, len, set, one_of, matches, contains, approx (with tolerance), all.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from services.conformance.expressions import CaseError

CASES_DIR = Path(__file__).parent / "cases"
KINDS = ("bank", "vehicle", "realestate")
STEP_KINDS = ("call", "advance", "health", "reflection", "server_identity")
CASE_KEYS = {"id", "title", "rule", "requires", "fixtures", "reset", "steps"}
FILE_KEYS = {"kinds", "vars", "kind_vars", "fixtures", "cases"}
STEP_KEYS = {"call", "request", "as", "timeout_ms", "expect", "save", "advance", "health", "reflection",
             "server_identity", "note"}
EXPECT_KEYS = {"code", "details", "within_ms", "fields", "status", "lists"}
CLIENTS = ("gateway", "intruder", "anonymous")


@dataclass(frozen=True)
class Case:
    id: str
    title: str
    rule: str
    kinds: tuple[str, ...]
    requires: tuple[str, ...]
    reset: bool
    fixtures: dict[str, Any]
    steps: tuple[dict[str, Any], ...]
    variables: dict[str, Any]
    kind_variables: dict[str, dict[str, Any]]
    source: str
    needs_mtls: bool = field(default=False)

    def variables_for(self, kind: str) -> dict[str, Any]:
        return {**self.variables, **self.kind_variables.get(kind, {})}


def _check_step(step: Any, where: str) -> None:
    if not isinstance(step, dict):
        raise CaseError(f"{where}: a step is a mapping")
    unknown = set(step) - STEP_KEYS
    if unknown:
        raise CaseError(f"{where}: unknown key {sorted(unknown)[0]!r}; expected some of {', '.join(sorted(STEP_KEYS))}")
    kinds = [k for k in STEP_KINDS if k in step]
    if len(kinds) != 1:
        raise CaseError(f"{where}: name exactly one of {', '.join(STEP_KINDS)}")
    if step.get("as", "gateway") not in CLIENTS:
        raise CaseError(f"{where}: as: expected one of {', '.join(CLIENTS)}")
    expect = step.get("expect", {})
    if not isinstance(expect, dict) or set(expect) - EXPECT_KEYS:
        raise CaseError(f"{where}: expect: a mapping of {', '.join(sorted(EXPECT_KEYS))}")


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CaseError(f"{path}: not valid YAML: {exc}") from None


def _fixtures(value: Any, shared: dict, where: str) -> dict:
    if isinstance(value, str):
        sets = shared.get("fixture_sets") or {}
        if value not in sets:
            raise CaseError(f"{where}: fixtures: no fixture set {value!r} in _shared.yaml ({', '.join(sets)})")
        return sets[value]
    return value or {}


def load_file(path: Path, shared: dict | None = None) -> list[Case]:
    shared = shared or {}
    document = _read(path)
    if not isinstance(document, dict):
        raise CaseError(f"{path}: expected a mapping with kinds and cases")
    unknown = set(document) - FILE_KEYS
    if unknown:
        raise CaseError(f"{path}: unknown key {sorted(unknown)[0]!r}; expected some of {', '.join(sorted(FILE_KEYS))}")
    kinds = tuple(document.get("kinds") or ())
    if not kinds or set(kinds) - set(KINDS):
        raise CaseError(f"{path}: kinds: a list of {', '.join(KINDS)}")
    cases = []
    for number, raw in enumerate(document.get("cases") or (), start=1):
        where = f"{path.name}: case #{number}"
        if not isinstance(raw, dict) or not raw.get("id"):
            raise CaseError(f"{where}: needs an id")
        where = f"{path.name}: {raw['id']}"
        unknown = set(raw) - CASE_KEYS
        if unknown:
            raise CaseError(f"{where}: unknown key {sorted(unknown)[0]!r}; expected some of {', '.join(sorted(CASE_KEYS))}")
        steps = raw.get("steps") or ()
        if not steps:
            raise CaseError(f"{where}: no steps")
        for i, step in enumerate(steps, start=1):
            _check_step(step, f"{where}: step {i}")
        needs_mtls = any(s.get("as", "gateway") != "gateway" or "server_identity" in s for s in steps)
        cases.append(Case(
            id=str(raw["id"]),
            title=str(raw.get("title", raw["id"])),
            rule=str(raw.get("rule", "")).strip(),
            kinds=kinds,
            requires=tuple(raw.get("requires") or ()),
            reset=bool(raw.get("reset", True)),
            fixtures=_fixtures(raw.get("fixtures", document.get("fixtures")), shared, where),
            steps=tuple(steps),
            variables={**(shared.get("vars") or {}), **(document.get("vars") or {})},
            kind_variables={
                kind: {**(shared.get("kind_vars") or {}).get(kind, {}), **(document.get("kind_vars") or {}).get(kind, {})}
                for kind in KINDS
            },
            source=path.name,
            needs_mtls=needs_mtls,
        ))
    return cases


def load_cases(directory: Path | str = CASES_DIR) -> list[Case]:
    """Every case of every *.yaml file in `directory`, in file and then case order; ids must be unique."""
    directory = Path(directory)
    files = sorted(p for p in directory.glob("*.yaml") if not p.name.startswith("_"))
    if not files:
        raise CaseError(f"{directory}: no *.yaml case files")
    shared_path = directory / "_shared.yaml"
    shared = (_read(shared_path) or {}) if shared_path.is_file() else {}
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for path in files:
        for case in load_file(path, shared):
            if case.id in seen:
                raise CaseError(f"{path.name}: case id {case.id!r} is also in {seen[case.id]}")
            seen[case.id] = path.name
            cases.append(case)
    return cases
