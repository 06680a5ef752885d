"""Reading settings from environment variables, failing fast on bad values."""

import os


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default).strip() or default


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a whole number") from None
    return _bounded(name, value, minimum, maximum)


def env_float(
    name: str, default: float, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a number") from None
    return _bounded(name, value, minimum, maximum)


def env_address(name: str, default: str) -> str:
    """A host:port to bind or dial; port 0 asks the OS for a free port."""
    value = env_str(name, default)
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise SettingsError(f"{name}={value!r}: expected host:port, for example 127.0.0.1:50051")
    return value


def _bounded(name, value, minimum, maximum):
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name}={value}: must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name}={value}: must be at most {maximum}")
    return value
