"""Token-bucket limits on queries, per executor and per court.

In-process: each gateway process keeps its own buckets, so with N gateway
processes behind a balancer an executor may get up to N times the
configured rate. Size the limits per process accordingly, or move the
buckets to PostgreSQL or Redis when the gateway is scaled out.

Not thread-safe: call from the event loop (each check is synchronous, so
it is atomic there).
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter

from services.common.settings import SettingsError, env_float, env_int

RATE_LIMITED = Counter(
    "chakong_rate_limited_total", "Requests refused by a rate limit, by the limit that refused them.", ["scope"]
)
for _scope in ("executor", "court"):
    RATE_LIMITED.labels(_scope)


@dataclass(frozen=True)
class RateLimit:
    """`rate_per_s` tokens return each second, up to `burst` held at once."""

    rate_per_s: float
    burst: int

    def __post_init__(self):
        if not (self.rate_per_s > 0 and math.isfinite(self.rate_per_s)):
            raise ValueError(f"rate: {self.rate_per_s}; must be a positive number per second")
        if self.burst < 1:
            raise ValueError(f"burst: {self.burst}; must be at least 1")


@dataclass(frozen=True)
class RateLimits:
    per_executor: RateLimit
    per_court: RateLimit

    @classmethod
    def from_env(cls) -> "RateLimits":
        """RATE_LIMIT_EXECUTOR_PER_MINUTE / _BURST (default 60 / 20) and
        RATE_LIMIT_COURT_PER_MINUTE / _BURST (default 1200 / 200)."""
        try:
            return cls(
                per_executor=RateLimit(
                    env_float("RATE_LIMIT_EXECUTOR_PER_MINUTE", 60.0, minimum=0.001, maximum=1e6) / 60,
                    env_int("RATE_LIMIT_EXECUTOR_BURST", 20, minimum=1, maximum=1_000_000),
                ),
                per_court=RateLimit(
                    env_float("RATE_LIMIT_COURT_PER_MINUTE", 1200.0, minimum=0.001, maximum=1e7) / 60,
                    env_int("RATE_LIMIT_COURT_BURST", 200, minimum=1, maximum=10_000_000),
                ),
            )
        except ValueError as exc:
            if isinstance(exc, SettingsError):
                raise
            raise SettingsError(str(exc)) from None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # Seconds until the same request would be allowed; 0 when allowed.
    retry_after_s: float = 0.0
    # "executor" or "court": which limit refused; "" when allowed.
    limited_by: str = ""

    @property
    def retry_after_header(self) -> str:
        """For HTTP Retry-After and gRPC metadata: whole seconds, at least 1."""
        return str(max(1, math.ceil(self.retry_after_s)))


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float):
        self.tokens = tokens
        self.updated = updated


class _Buckets:
    """One bucket per key, created full; full idle buckets are dropped to bound memory."""

    def __init__(self, limit: RateLimit, max_keys: int):
        self.limit = limit
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def level(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._sweep(now)
            bucket = self._buckets[key] = _Bucket(float(self.limit.burst), now)
            return bucket
        elapsed = max(0.0, now - bucket.updated)  # a clock stepping back refills nothing
        bucket.tokens = min(float(self.limit.burst), bucket.tokens + elapsed * self.limit.rate_per_s)
        bucket.updated = max(bucket.updated, now)
        return bucket

    def wait(self, bucket: _Bucket, cost: float) -> float:
        missing = cost - bucket.tokens
        return 0.0 if missing <= 0 else missing / self.limit.rate_per_s

    def _sweep(self, now: float) -> None:
        full_after = self.limit.burst / self.limit.rate_per_s
        for key in [k for k, b in self._buckets.items() if now - b.updated >= full_after]:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


class QueryRateLimiter:
    """Allow a request only if both the executor's and the court's buckets hold enough tokens.

    A refused request takes nothing from either bucket, so a court's busy
    executor does not also drain the court's share while being refused.
    """

    def __init__(self, limits: RateLimits, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        self.limits = limits
        self._clock = clock
        self._executors = _Buckets(limits.per_executor, max_keys)
        self._courts = _Buckets(limits.per_court, max_keys)

    def check(self, executor_id: str, court_code: str, cost: int = 1) -> Decision:
        if cost < 1:
            raise ValueError(f"cost: {cost}; must be at least 1")
        if cost > self.limits.per_executor.burst or cost > self.limits.per_court.burst:
            # Could never be allowed; the caller's per-request bound must be lower.
            raise ValueError(f"cost: {cost} exceeds a burst size; bound the request size below it")
        now = self._clock()
        # Executors of different courts may share an ID: key them by court too.
        executor = self._executors.level(f"{court_code}/{executor_id}", now)
        court = self._courts.level(court_code, now)
        executor_wait = self._executors.wait(executor, cost)
        court_wait = self._courts.wait(court, cost)
        if executor_wait or court_wait:
            scope = "executor" if executor_wait >= court_wait else "court"
            RATE_LIMITED.labels(scope).inc()
            return Decision(False, max(executor_wait, court_wait), scope)
        executor.tokens -= cost
        court.tokens -= cost
        return Decision(True)
