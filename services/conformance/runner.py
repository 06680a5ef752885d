"""Drive an agency endpoint through the cases and judge each: passed, failed, error, skipped, or expected to fail.

Each case starts from a clean agency (AgencyTesting.Reset, then its
fixtures), runs its steps in order, and after every answer checks the rules
every answer keeps (checks.py) as well as what the step expects. The first
broken expectation fails the case with what was expected, what came, and
the contract's words the case checks.
"""

import fnmatch
import logging
import math
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml
from google.protobuf import json_format
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2

from services.conformance import checks
from services.conformance.cases import Case
from services.conformance.expressions import (
    CaseError,
    Instant,
    Scope,
    expand_repeats,
    parse_duration_s,
    resolve_path,
    to_json,
)
from services.conformance.target import QUERY_METHOD, Answer, Target

logger = logging.getLogger(__name__)

# What each kind may offer; a capability declaration lists a subset.
CAPABILITIES = {
    "bank": ("query", "freeze", "renew", "release", "partial_release", "deduct_from_freeze", "deduct_direct",
             "queue", "test_mode", "reflection", "mtls"),
    "vehicle": ("query", "seal", "renew", "release", "queue", "test_mode", "reflection", "mtls"),
    "realestate": ("query", "seal", "renew", "release", "queue", "transfer", "test_mode", "reflection", "mtls"),
}
DEFAULT_TIMEOUT_S = 5.0
OPERATORS = {"eq", "ne", "gt", "gte", "lt", "lte", "len", "set", "one_of", "matches", "contains", "approx",
             "tolerance", "all"}

PASSED, FAILED, ERROR, SKIPPED, XFAIL, XPASS = "passed", "failed", "error", "skipped", "xfail", "xpass"


class Failure(Exception):
    """An expectation a step did not meet."""


@dataclass
class CaseResult:
    case: Case
    status: str
    message: str = ""
    step: int = 0
    seconds: float = 0.0
    calls: int = 0

    @property
    def bad(self) -> bool:
        return self.status in (FAILED, ERROR, XPASS)


@dataclass
class Capabilities:
    """What the agency says it offers (everything its kind may, unless declared)."""

    offers: frozenset[str]
    declared: bool = False

    @classmethod
    def load(cls, kind: str, path: str | Path | None) -> "Capabilities":
        everything = frozenset(CAPABILITIES[kind])
        if path is None:
            return cls(everything)
        try:
            document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise CaseError(f"{path}: cannot read the capability declaration: {exc}") from None
        if document.get("kind", kind) != kind:
            raise CaseError(f"{path}: declares kind {document.get('kind')!r}, but the target is a {kind}")
        offers = frozenset(document.get("offers") or ())
        unknown = sorted(offers - everything)
        if unknown:
            raise CaseError(f"{path}: offers {unknown[0]!r}, not a {kind} capability ({', '.join(sorted(everything))})")
        return cls(offers, declared=True)


@dataclass
class KnownFailing:
    """Case id patterns (fnmatch) expected to fail, each with why; one per line, '#' comments."""

    patterns: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None) -> "KnownFailing":
        if path is None:
            return cls()
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise CaseError(f"{path}: {exc.strerror}") from None
        patterns = {}
        for line in lines:
            text = line.split("#", 1)
            pattern = text[0].strip()
            if pattern:
                patterns[pattern] = text[1].strip() if len(text) > 1 else ""
        return cls(patterns)

    def reason(self, case_id: str) -> str | None:
        for pattern, why in self.patterns.items():
            if fnmatch.fnmatchcase(case_id, pattern):
                return why or "listed as known failing"
        return None


@dataclass
class Run:
    target: Target
    cases: list[Case]
    capabilities: Capabilities
    known_failing: KnownFailing = field(default_factory=KnownFailing)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    async def execute(self, progress=None) -> list[CaseResult]:
        results = []
        for case in self.cases:
            result = await self._case(case)
            why = self.known_failing.reason(case.id)
            if why is not None and result.status in (FAILED, ERROR):
                result.status, result.message = XFAIL, f"{result.message} (known failing: {why})"
            elif why is not None and result.status == PASSED:
                result.status = XPASS
                result.message = f"passed, but is listed as known failing ({why}): remove it from the list"
            results.append(result)
            if progress is not None:
                progress(result)
        return results

    def _skip_reason(self, case: Case) -> str | None:
        kind = self.target.options.kind
        if kind not in case.kinds:
            return f"not a {kind} case"
        needs = set(case.requires) | ({"test_mode"} if case.reset else set()) | ({"mtls"} if case.needs_mtls else set())
        missing = sorted(needs - self.capabilities.offers)
        if missing:
            return f"not offered: {', '.join(missing)}"
        if case.needs_mtls and self.target.options.plaintext:
            return "plaintext run: identity is checked only over mutual TLS"
        if any(s.get("as") == "intruder" for s in case.steps) and self.target.options.intruder is None:
            return "no intruder certificate given (--intruder-cert/--intruder-key or --pki-dir with ca.key)"
        return None

    async def _case(self, case: Case) -> CaseResult:
        started = time.perf_counter()
        why = self._skip_reason(case)
        if why is not None:
            return CaseResult(case, SKIPPED, why)
        kind = self.target.options.kind
        scope = Scope(
            {**case.variables_for(kind), "agency_id": self.target.options.agency_id, "kind": kind},
            run_id=self.run_id, case_id=case.id,
        )
        result = CaseResult(case, PASSED)
        try:
            if case.reset:
                await self._reset(case, scope, result)
        except (Failure, CaseError, LookupError) as exc:
            result.status, result.message = ERROR, f"setting up: {exc}"
            result.seconds = time.perf_counter() - started
            return result
        for number, step in enumerate(case.steps, start=1):
            result.step = number
            try:
                await self._step(step, scope, result)
            except Failure as exc:
                result.status = FAILED
                result.message = f"step {number} ({_describe(step)}): {exc}"
                break
            except (CaseError, LookupError) as exc:
                result.status = ERROR
                result.message = f"step {number} ({_describe(step)}): the case itself is wrong: {exc}"
                break
        result.seconds = time.perf_counter() - started
        return result

    async def _reset(self, case: Case, scope: Scope, result: CaseResult) -> None:
        target = self.target
        answer = await target.call("Reset", target.request_type("Reset", testing=True)(), timeout_s=DEFAULT_TIMEOUT_S,
                                   testing=True)
        result.calls += 1
        if answer.code != grpc.StatusCode.OK:
            raise Failure(f"AgencyTesting.Reset answered {answer.code.name}: {answer.details}"
                          " (is the agency in test mode?)")
        scope.set("now", Instant.of(answer.response.now))
        fixtures = {name: expand_repeats(items, scope) for name, items in (case.fixtures or {}).items()}
        request = _parse(to_json(fixtures), target.request_type("LoadFixtures", testing=True), "fixtures")
        answer = await target.call("LoadFixtures", request, timeout_s=30.0, testing=True)
        result.calls += 1
        if answer.code != grpc.StatusCode.OK:
            raise Failure(f"AgencyTesting.LoadFixtures answered {answer.code.name}: {answer.details}")

    async def _step(self, step: dict, scope: Scope, result: CaseResult) -> None:
        target = self.target
        expect = step.get("expect") or {}
        who = step.get("as", "gateway")
        if "advance" in step:
            seconds = parse_duration_s(scope.render(step["advance"]))
            whole = math.floor(seconds)
            request = target.request_type("AdvanceClock", testing=True)(
                by=Duration(seconds=whole, nanos=int((seconds - whole) * 1e9)))
            answer = await target.call("AdvanceClock", request, timeout_s=DEFAULT_TIMEOUT_S, testing=True)
            result.calls += 1
            if answer.code != grpc.StatusCode.OK:
                raise Failure(f"AgencyTesting.AdvanceClock answered {answer.code.name}: {answer.details}")
            scope.set("now", Instant.of(answer.response.now))
            return
        if "health" in step:
            service = scope.render(step["health"])
            answer = await target.health("" if service is None else str(service), who=who)
            result.calls += 1
            wanted_status = expect.get("status", "SERVING")
            if "code" in expect:
                _expect_code(answer, expect["code"])
            if answer.code == grpc.StatusCode.OK:
                status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.response.status)
                if status != wanted_status:
                    raise Failure(f"health for service {service!r}: {status}, expected {wanted_status}")
            elif "code" not in expect:
                raise Failure(f"health Check for service name {service!r} answered {answer.code.name}:"
                              f" {answer.details}; expected {wanted_status}")
            return
        if "reflection" in step:
            try:
                listed, _version = await target.reflected_services()
            except LookupError as exc:
                raise Failure(str(exc)) from None
            result.calls += 1
            for name in scope.render(expect.get("lists", [target.service.full_name])):
                if name not in listed:
                    raise Failure(f"server reflection lists {listed}; {name} is missing")
            return
        if "server_identity" in step:
            problems = await target.server_identity()
            result.calls += 1
            if problems:
                raise Failure("; ".join(problems))
            return
        method = scope.render(step["call"])
        try:
            request_type = target.request_type(method)
        except KeyError as exc:
            raise CaseError(str(exc)) from None
        request = _parse(to_json(scope.render(step.get("request") or {})), request_type, f"{method} request")
        timeout_s = step.get("timeout_ms", DEFAULT_TIMEOUT_S * 1000) / 1000
        metadata = () if method == QUERY_METHOD[target.options.kind] else (("x-request-id", scope.key("request")),)
        answer = await target.call(method, request, timeout_s=timeout_s, who=who, metadata=metadata)
        result.calls += 1
        _expect_code(answer, expect.get("code", "OK"))
        if answer.code != grpc.StatusCode.OK:
            problem = checks.refusal_problem(answer.code.name, answer.details) if who == "gateway" else None
            if problem:
                raise Failure(problem)
            if "details" in expect and not re.search(scope.render(expect["details"]), answer.details):
                raise Failure(f"{answer.code.name} message {answer.details!r} does not match {expect['details']!r}")
            return
        if "within_ms" in expect and answer.elapsed_ms > expect["within_ms"]:
            raise Failure(f"answered in {answer.elapsed_ms:.0f} ms; the gateway waits at most {expect['within_ms']} ms")
        if method == QUERY_METHOD[target.options.kind]:
            problem = checks.query_problem(target.options.kind, target.options.agency_id, answer.response)
        else:
            problem = checks.reply_problem(method, request, answer.response)
        if problem:
            raise Failure(f"the answer breaks the contract: {problem}")
        plain_answer = plain(answer.response)
        for path, wanted in scope.render(expect.get("fields") or {}).items():
            _match(plain_answer, str(path), wanted)
        for name, path in (step.get("save") or {}).items():
            # A field path of the answer ("" the whole of it), or a ${...} value to remember.
            if isinstance(path, str) and path.startswith("${"):
                scope.set(name, scope.render(path))
            else:
                scope.set(name, plain_answer if not path else resolve_path(plain_answer, path))


def _describe(step: dict) -> str:
    for kind in ("call", "advance", "health", "reflection", "server_identity"):
        if kind in step:
            value = step[kind]
            return f"{kind} {value!r}" if kind != "call" else str(value)
    return "step"


def _parse(document: Any, message_type: type[Message], what: str) -> Message:
    try:
        return json_format.ParseDict(document, message_type())
    except json_format.ParseError as exc:
        raise CaseError(f"{what} is not a valid {message_type.DESCRIPTOR.full_name}: {exc}") from None


def _expect_code(answer: Answer, wanted: Any) -> None:
    codes = wanted if isinstance(wanted, list) else [wanted]
    if answer.code.name not in codes:
        said = f": {answer.details}" if answer.details else ""
        raise Failure(f"answered {answer.code.name}{said}; expected {' or '.join(codes)}")


def plain(message: Message) -> dict:
    """A message as dicts, lists and plain values: enums by name, int64 as int, timestamps as Instants."""
    out: dict[str, Any] = {}
    for descriptor in message.DESCRIPTOR.fields:
        value = getattr(message, descriptor.name)
        if descriptor.is_repeated:
            out[descriptor.name] = [_plain_value(descriptor, v) for v in value]
        elif descriptor.message_type is not None and not message.HasField(descriptor.name):
            out[descriptor.name] = None
        else:
            out[descriptor.name] = _plain_value(descriptor, value)
    return out


def _plain_value(descriptor, value: Any) -> Any:
    if descriptor.enum_type is not None:
        found = descriptor.enum_type.values_by_number.get(value)
        return found.name if found else value
    if isinstance(value, Timestamp):
        return Instant.of(value)
    if isinstance(value, Message):
        return plain(value)
    return value


def _match(answer: dict, path: str, wanted: Any) -> None:
    try:
        actual = resolve_path(answer, path)
    except LookupError as exc:
        raise Failure(str(exc)) from None
    problem = compare(actual, wanted)
    if problem:
        raise Failure(f"{path}: {problem}")


def _is_operators(wanted: Any) -> bool:
    return isinstance(wanted, dict) and bool(wanted) and set(wanted) <= OPERATORS


def _normal(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    return value


def compare(actual: Any, wanted: Any) -> str | None:
    """Why `actual` does not meet `wanted`, or None."""
    if _is_operators(wanted):
        return _operators(actual, wanted)
    if isinstance(wanted, dict):
        if not isinstance(actual, dict):
            return f"expected a message, got {actual!r}"
        for key, sub in wanted.items():
            try:
                value = resolve_path(actual, str(key))
            except LookupError as exc:
                return str(exc)
            problem = compare(value, sub)
            if problem:
                return f"{key}: {problem}"
        return None
    if isinstance(wanted, list):
        if not isinstance(actual, list) or len(actual) != len(wanted):
            return f"expected {len(wanted)} item(s), got {actual!r}"
        for i, (a, w) in enumerate(zip(actual, wanted)):
            problem = compare(a, w)
            if problem:
                return f"[{i}]: {problem}"
        return None
    if _normal(actual) != _normal(wanted):
        return f"{_show(actual)}, expected {_show(wanted)}"
    return None


def _show(value: Any) -> str:
    return str(value) if isinstance(value, Instant) else repr(value)


def _operators(actual: Any, ops: dict) -> str | None:
    a = _normal(actual)
    for op, raw in ops.items():
        w = _normal(raw)
        if op == "tolerance":
            continue
        if op == "eq" and a != w:
            return f"{_show(actual)}, expected {_show(raw)}"
        if op == "ne" and a == w:
            return f"{_show(actual)}, expected anything else"
        if op in ("gt", "gte", "lt", "lte"):
            if a is None:
                return f"unset, expected {op} {_show(raw)}"
            ok = {"gt": a > w, "gte": a >= w, "lt": a < w, "lte": a <= w}[op]
            if not ok:
                return f"{_show(actual)}, expected {op} {_show(raw)}"
        if op == "len" and (not isinstance(actual, list) or len(actual) != w):
            return f"{len(actual) if isinstance(actual, list) else actual!r} item(s), expected {w}"
        if op == "set":
            present = actual not in (None, "", 0, [], False)
            if present != bool(raw):
                return f"{_show(actual)}, expected it {'set' if raw else 'unset'}"
        if op == "one_of" and a not in [_normal(x) for x in raw]:
            return f"{_show(actual)}, expected one of {raw}"
        if op == "matches" and not (isinstance(actual, str) and re.search(raw, actual)):
            return f"{actual!r} does not match {raw!r}"
        if op == "contains":
            if isinstance(actual, list):
                if not any(compare(item, raw) is None for item in actual):
                    return f"no item matches {raw!r} in {actual!r}"
            elif not (isinstance(actual, str) and str(raw) in actual):
                return f"{actual!r} does not contain {raw!r}"
        if op == "all":
            if not isinstance(actual, list):
                return f"expected a list, got {actual!r}"
            for i, item in enumerate(actual):
                problem = compare(item, raw)
                if problem:
                    return f"[{i}]: {problem}"
        if op == "approx":
            tolerance = parse_duration_s(ops.get("tolerance", "60s"))
            if isinstance(w, Instant):
                if not isinstance(a, Instant) or abs(a.us - w.us) > tolerance * 1_000_000:
                    return f"{_show(actual)}, expected {w} within {ops.get('tolerance', '60s')}"
            elif a is None or abs(a - w) > tolerance:
                return f"{_show(actual)}, expected {w} within {tolerance}"
    return None
