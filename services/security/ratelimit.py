"""Rate limits on queries and on control actions, per executor and per court, by the `limits` library.

Each limit is a moving window: at most `burst` requests in any window of
`burst / rate` seconds (rounded up to whole seconds), so a quiet executor
may send `burst` at once and a busy one gets `rate` on average. The windows
live in this process's memory (the embedded default: each process counts
alone, so N workers or gateways give an executor N times the rate) or, with
RATE_LIMIT_REDIS_URL, in Redis, where every worker and gateway counts in the
same windows: one executor's limit is one limit.

Two families: `query` (asking agencies about a debtor) and `control` (the
actions that change a hold: freeze, deduct, seal, ...), each with its own
per-executor and per-court limits. A request is allowed only if both its
executor's and its court's windows have room. The court's window is looked
at first and the executor's taken before the court's, so a request refused
by either takes nothing from the court's share (a busy executor does not
drain the court while being refused); one refused by the court alone has
used one of its executor's.

Redis down: fail open to this process's own windows, not to no limit. The
rate limit protects agencies' quotas and bounds what one stolen token can
read; it is not the record of anything (the audit trail is, and fails
closed). Refusing every query and action while Redis is away would stop
enforcement for want of a counter, and no limit at all would open the door
wide; per-process limits keep a bound (at most N times the rate, as without
Redis) until Redis answers again. Each such decision is counted
(`chakong_rate_limit_fallback_total`); Redis is tried again after
`retry_shared_s`, and each check waits for it at most `timeout_s`.
"""

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from prometheus_client import Counter

from services.common.settings import SettingsError, env_float, env_int, env_str

logger = logging.getLogger(__name__)

QUERY = "query"
CONTROL = "control"
FAMILIES = (QUERY, CONTROL)
SCOPES = ("executor", "court")

RATE_LIMITED = Counter(
    "chakong_rate_limited_total",
    "Requests refused by a rate limit, by family (query, control) and the limit that refused them.",
    ["limit", "scope"],
)
FALLBACK = Counter(
    "chakong_rate_limit_fallback_total",
    "Rate-limit checks decided by this process's own windows because the shared Redis did not answer.",
)
for _family in FAMILIES:
    for _scope in SCOPES:
        RATE_LIMITED.labels(_family, _scope)

# How long a check waits for Redis, and how long after a failure it is left alone.
REDIS_TIMEOUT_S = 0.25
RETRY_SHARED_S = 5.0


@dataclass(frozen=True)
class RateLimit:
    """`rate_per_s` requests a second on average, up to `burst` at once."""

    rate_per_s: float
    burst: int

    def __post_init__(self):
        if not (self.rate_per_s > 0 and math.isfinite(self.rate_per_s)):
            raise ValueError(f"rate: {self.rate_per_s}; must be a positive number per second")
        if self.burst < 1:
            raise ValueError(f"burst: {self.burst}; must be at least 1")

    @property
    def window_s(self) -> int:
        return max(1, math.ceil(self.burst / self.rate_per_s))

    def item(self, family: str, scope: str) -> RateLimitItemPerSecond:
        return RateLimitItemPerSecond(self.burst, self.window_s, namespace=f"{family}-{scope}")


def _limit_from_env(prefix: str, per_minute: float, burst: int, max_per_minute: float, max_burst: int) -> RateLimit:
    return RateLimit(
        env_float(f"{prefix}_PER_MINUTE", per_minute, minimum=0.001, maximum=max_per_minute) / 60,
        env_int(f"{prefix}_BURST", burst, minimum=1, maximum=max_burst),
    )


@dataclass(frozen=True)
class RateLimits:
    per_executor: RateLimit
    per_court: RateLimit
    control_per_executor: RateLimit = RateLimit(0.5, 10)
    control_per_court: RateLimit = RateLimit(10.0, 100)
    # "" keeps the windows in this process; redis://host:port/db shares them.
    redis_url: str = ""
    redis_prefix: str = "chakong"

    def limit(self, family: str, scope: str) -> RateLimit:
        if family == QUERY:
            return self.per_executor if scope == "executor" else self.per_court
        return self.control_per_executor if scope == "executor" else self.control_per_court

    @classmethod
    def from_env(cls) -> "RateLimits":
        """RATE_LIMIT_EXECUTOR_PER_MINUTE / _BURST (default 60 / 20), RATE_LIMIT_COURT_* (1200 / 200),
        RATE_LIMIT_CONTROL_EXECUTOR_* (30 / 10), RATE_LIMIT_CONTROL_COURT_* (600 / 100),
        RATE_LIMIT_REDIS_URL (none) and RATE_LIMIT_REDIS_PREFIX (chakong)."""
        try:
            redis_url = env_str("RATE_LIMIT_REDIS_URL", "")
            if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
                raise SettingsError(
                    f"RATE_LIMIT_REDIS_URL={redis_url!r}: expected redis://host:port/db, rediss://... or unix://..."
                )
            prefix = env_str("RATE_LIMIT_REDIS_PREFIX", "chakong")
            if not prefix or not prefix.replace("-", "").replace("_", "").replace(".", "").isalnum():
                raise SettingsError(f"RATE_LIMIT_REDIS_PREFIX={prefix!r}: letters, digits, '-', '_' and '.' only")
            return cls(
                per_executor=_limit_from_env("RATE_LIMIT_EXECUTOR", 60.0, 20, 1e6, 1_000_000),
                per_court=_limit_from_env("RATE_LIMIT_COURT", 1200.0, 200, 1e7, 10_000_000),
                control_per_executor=_limit_from_env("RATE_LIMIT_CONTROL_EXECUTOR", 30.0, 10, 1e6, 1_000_000),
                control_per_court=_limit_from_env("RATE_LIMIT_CONTROL_COURT", 600.0, 100, 1e7, 10_000_000),
                redis_url=redis_url,
                redis_prefix=prefix,
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


class _Windows:
    """The moving windows of one storage."""

    def __init__(self, storage: Storage):
        self.storage = storage
        self.strategy = MovingWindowRateLimiter(storage)

    async def check(self, limits: RateLimits, family: str, executor_id: str, court_code: str) -> Decision:
        # Executors of different courts may share an ID: key them by court too.
        executor = limits.limit(family, "executor").item(family, "executor")
        court = limits.limit(family, "court").item(family, "court")
        if not await self.strategy.test(court, court_code):
            return await self._refused(court, (court_code,), "court")
        if not await self.strategy.hit(executor, court_code, executor_id):
            return await self._refused(executor, (court_code, executor_id), "executor")
        if not await self.strategy.hit(court, court_code):
            return await self._refused(court, (court_code,), "court")
        return Decision(True)

    async def _refused(self, item, keys: tuple[str, ...], scope: str) -> Decision:
        stats = await self.strategy.get_window_stats(item, *keys)
        return Decision(False, max(0.0, stats.reset_time - time.time()), scope)


class RateLimiter:
    """`await check(family, executor_id, court_code)`: one request's decision; the door's whole interface."""

    def __init__(self, limits: RateLimits, *, retry_shared_s: float = RETRY_SHARED_S,
                 timeout_s: float = REDIS_TIMEOUT_S, clock: Callable[[], float] = time.monotonic):
        self.limits = limits
        self._local = _Windows(MemoryStorage())
        self._shared: _Windows | None = None
        if limits.redis_url:
            self._shared = _Windows(RedisStorage(
                f"async+{limits.redis_url}", implementation="redispy", key_prefix=limits.redis_prefix,
                wrap_exceptions=True, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
            ))
        self._timeout_s = timeout_s
        self._retry_shared_s = retry_shared_s
        self._clock = clock
        self._shared_down_until = 0.0

    @property
    def shared(self) -> bool:
        return self._shared is not None

    async def check(self, family: str, executor_id: str, court_code: str) -> Decision:
        if family not in FAMILIES:
            raise ValueError(f"family: {family!r} is not one of {', '.join(FAMILIES)}")
        decision = await self._decide(family, executor_id, court_code)
        if not decision.allowed:
            RATE_LIMITED.labels(family, decision.limited_by).inc()
        return decision

    async def _decide(self, family: str, executor_id: str, court_code: str) -> Decision:
        if self._shared is not None and self._clock() >= self._shared_down_until:
            try:
                async with asyncio.timeout(4 * self._timeout_s):
                    decision = await self._shared.check(self.limits, family, executor_id, court_code)
            except (StorageError, asyncio.TimeoutError, OSError) as exc:
                if not self._shared_down_until:
                    logger.error(
                        "rate limits: Redis does not answer (%s); each process limits on its own for now",
                        _describe(exc),
                    )
                self._shared_down_until = self._clock() + self._retry_shared_s
            else:
                if self._shared_down_until:
                    logger.warning("rate limits: Redis answers again; limits are shared again")
                    self._shared_down_until = 0.0
                return decision
        if self._shared is not None:
            FALLBACK.inc()
        return await self._local.check(self.limits, family, executor_id, court_code)

    async def ping(self) -> bool:
        """True if the shared store answers (always True in memory)."""
        if self._shared is None:
            return True
        try:
            async with asyncio.timeout(4 * self._timeout_s):
                return bool(await self._shared.storage.check())
        except (StorageError, asyncio.TimeoutError, OSError):
            return False

    async def close(self) -> None:
        if self._shared is not None:
            client = self._shared.storage.bridge.storage
            await client.aclose()


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__ if isinstance(exc, StorageError) and exc.__cause__ else exc
    return f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__
