"""The small language of the case files: durations, instants, ${...} substitution, field paths and expectations.

    ${now}            the agency's clock, as Reset or the last AdvanceClock reported it
    ${now+30d}        an instant: now plus a duration (y calendar years, d, h, m, s; sums like 1y+1d)
    ${key.first}      an idempotency key unique to this run, case and name
    ${debtor}         a variable of the file (`vars:`) or one a step saved (`save:`)
    ${freeze.expires_at+30d}   a saved timestamp plus a duration
    ${i}, ${i:04d}    the index inside a `repeat` block of fixtures

A string that is exactly one ${...} becomes the value itself (a message, a
number, an instant); elsewhere the value is written into the string.
"""

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.periods import add_years

_INNERMOST = re.compile(r"\$\{([^${}]+)\}")
_TERM = re.compile(r"\s*([+-])\s*(\d+)\s*(y|d|h|m|s|ms)\s*")
_UNIT_US = {"d": 86_400_000_000, "h": 3_600_000_000, "m": 60_000_000, "s": 1_000_000, "ms": 1000}


class CaseError(ValueError):
    """A case file is malformed or refers to something that is not there; the message says where."""


@dataclass(frozen=True, order=True)
class Instant:
    """A UTC instant in microseconds since the epoch."""

    us: int

    @classmethod
    def of(cls, ts: Timestamp) -> "Instant":
        return cls(ts.seconds * 1_000_000 + ts.nanos // 1000)

    def plus(self, sign: str, amount: int, unit: str) -> "Instant":
        if unit == "y":
            return Instant(add_years(self.us, amount if sign == "+" else -amount))
        delta = amount * _UNIT_US[unit]
        return Instant(self.us + (delta if sign == "+" else -delta))

    def rfc3339(self) -> str:
        moment = dt.datetime.fromtimestamp(self.us // 1_000_000, dt.UTC).replace(microsecond=self.us % 1_000_000)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def __str__(self) -> str:
        return self.rfc3339()


def parse_duration_s(text: str) -> float:
    """'30d', '1d+12h', '90s' as seconds (a year is 365 days here: AdvanceClock takes a duration)."""
    total, rest = 0.0, str(text).strip()
    if not rest.startswith(("+", "-")):
        rest = "+" + rest
    position = 0
    while position < len(rest):
        match = _TERM.match(rest, position)
        if not match:
            raise CaseError(f"duration {text!r}: expected terms like 30d, 12h, 90s, 1y")
        sign, amount, unit = match.groups()
        seconds = int(amount) * (365 * 86_400 if unit == "y" else _UNIT_US[unit] / 1_000_000)
        total += seconds if sign == "+" else -seconds
        position = match.end()
    return total


def resolve_path(value: Any, path: str) -> Any:
    """`a.b[2].c` or `accounts[account_number=6222...].frozen_fen` inside a message or mapping."""
    current = value
    for part in _split_path(path):
        current = _step(current, part, path)
    return current


def _split_path(path: str) -> list[str]:
    parts: list[str] = []
    for chunk in re.findall(r"[^.\[\]]+|\[[^\]]*\]", path):
        parts.append(chunk)
    return parts


def _step(current: Any, part: str, path: str) -> Any:
    if part.startswith("["):
        inner = part[1:-1]
        items = list(current) if not isinstance(current, dict) else None
        if items is None:
            raise CaseError(f"{path}: {part} on something that is not a list")
        if "=" in inner:
            name, _, wanted = inner.partition("=")
            for item in items:
                try:
                    value = resolve_path(item, name)
                except LookupError:
                    continue
                if str(_plain(value)) == wanted:
                    return item
            raise LookupError(f"{path}: no item with {name} = {wanted}")
        index = int(inner)
        if index >= len(items):
            raise LookupError(f"{path}: has {len(items)} item(s), no [{index}]")
        return items[index]
    if isinstance(current, Message):
        descriptor = current.DESCRIPTOR.fields_by_name.get(part)
        if descriptor is None:
            raise CaseError(f"{path}: {current.DESCRIPTOR.full_name} has no field {part!r}")
        return getattr(current, part)
    if isinstance(current, dict):
        if part not in current:
            raise LookupError(f"{path}: no {part!r}")
        return current[part]
    raise CaseError(f"{path}: cannot take {part!r} of {type(current).__name__}")


def _plain(value: Any) -> Any:
    if isinstance(value, Timestamp):
        return Instant.of(value)
    return value


class Scope:
    """The variables a case sees: the file's, the built-ins and what its steps saved."""

    def __init__(self, variables: dict[str, Any], *, run_id: str, case_id: str):
        self.variables = dict(variables)
        self.run_id = run_id
        self.case_id = case_id

    def set(self, name: str, value: Any) -> None:
        self.variables[name] = value

    def key(self, name: str) -> str:
        safe = re.sub(r"[^0-9A-Za-z_.:-]", "-", self.case_id)
        return f"conform.{self.run_id}.{safe}.{name}"[:128]

    def evaluate(self, expression: str) -> Any:
        expression = expression.strip()
        if expression.startswith("key."):
            return self.key(expression[4:])
        head = re.match(r"[A-Za-z_][A-Za-z0-9_]*(?:(?:\.[A-Za-z_][A-Za-z0-9_]*)|\[[^\]]*\])*", expression)
        if not head:
            raise CaseError(f"${{{expression}}}: not a variable or expression")
        name_path, rest = head.group(0), expression[head.end():]
        name, _, sub = name_path.partition(".")
        if "[" in name:
            name, bracket, tail = name.partition("[")
            sub = "[" + tail + ("." + sub if sub else "")
        if name not in self.variables:
            raise CaseError(f"${{{expression}}}: no variable {name!r} (known: {', '.join(sorted(self.variables))})")
        value = self.variables[name]
        if sub:
            try:
                value = resolve_path(value, sub)
            except LookupError as exc:
                raise CaseError(f"${{{expression}}}: {exc}") from None
        value = _plain(value)
        if rest.strip():
            format_spec = re.fullmatch(r":(\w+)", rest.strip())
            if format_spec:
                return format(value, format_spec.group(1))
            if not isinstance(value, Instant):
                raise CaseError(f"${{{expression}}}: arithmetic needs an instant ({name_path} is not one)")
            position = 0
            while position < len(rest):
                match = _TERM.match(rest, position)
                if not match:
                    raise CaseError(f"${{{expression}}}: expected +<n><y|d|h|m|s> terms after {name_path}")
                value = value.plus(match.group(1), int(match.group(2)), match.group(3))
                position = match.end()
        return value

    def render(self, value: Any) -> Any:
        """`value` with every ${...} replaced, keys of mappings included."""
        if isinstance(value, str):
            # Innermost first, so ${now+${max}} reads ${max} into the outer expression.
            while True:
                found = _INNERMOST.search(value)
                if found is None:
                    return value
                if found.span() == (0, len(value)):
                    return self.evaluate(found.group(1))
                value = value[:found.start()] + str(_jsonable(self.evaluate(found.group(1)))) + value[found.end():]
        if isinstance(value, dict):
            return {str(self.render(k)): self.render(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v) for v in value]
        return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, Instant):
        return value.rfc3339()
    return value


def to_json(value: Any) -> Any:
    """A rendered value as proto3 JSON input: instants as RFC 3339, messages as dicts."""
    from google.protobuf import json_format

    if isinstance(value, Instant):
        return value.rfc3339()
    if isinstance(value, Message):
        return json_format.MessageToDict(value, preserving_proto_field_name=True)
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


def expand_repeats(items: list[Any], scope: Scope) -> list[Any]:
    """Fixture lists may hold {repeat: N, item: {...}}: N copies with ${i} set to 0..N-1."""
    expanded = []
    for item in items:
        if isinstance(item, dict) and "repeat" in item:
            count = int(scope.render(item["repeat"]))
            for i in range(count):
                scope.set("i", i)
                expanded.append(scope.render(item["item"]))
            scope.variables.pop("i", None)
        else:
            expanded.append(scope.render(item))
    return expanded
