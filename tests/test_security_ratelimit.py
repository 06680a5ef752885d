"""Query and control limits per executor and per court, in memory and in Redis.

Redis down fails open to per-process limits.
"""

import asyncio
import socket
import time
import uuid

import pytest

from services.common.settings import SettingsError
from services.security.ratelimit import CONTROL, FALLBACK, QUERY, RATE_LIMITED, RateLimit, RateLimiter, RateLimits
from tests.support.faultproxy import FaultProxy

WIDE = RateLimit(1000.0, 1000)


def limits(executor=RateLimit(1.0, 3), court=RateLimit(100.0, 100), *, control_executor=WIDE, control_court=WIDE,
           redis_url="", prefix="") -> RateLimits:
    return RateLimits(executor, court, control_executor, control_court, redis_url=redis_url,
                      redis_prefix=prefix or f"chakong-test-{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["memory", "redis"])
async def make_limiter(request):
    """Build limiters on the backend under test; each test's keys are its own."""
    redis_url = request.getfixturevalue("redis_server") if request.param == "redis" else ""
    prefix = f"chakong-test-{uuid.uuid4().hex[:12]}"
    made: list[RateLimiter] = []

    def make(**kwargs) -> RateLimiter:
        limiter = RateLimiter(limits(**kwargs, redis_url=redis_url, prefix=prefix))
        made.append(limiter)
        return limiter

    yield make
    await close_all(*made)


async def close_all(*limiters: RateLimiter) -> None:
    for limiter in limiters:
        await limiter.close()


async def allowed(limiter: RateLimiter, n: int, executor="E1", court="340100", family=QUERY) -> list[bool]:
    return [(await limiter.check(family, executor, court)).allowed for _ in range(n)]


async def test_a_burst_is_allowed_then_refused_with_a_retry_after(make_limiter):
    limiter = make_limiter()
    before = RATE_LIMITED.labels(QUERY, "executor")._value.get()
    assert await allowed(limiter, 3) == [True, True, True]
    refused = await limiter.check(QUERY, "E1", "340100")
    assert (refused.allowed, refused.limited_by) == (False, "executor")
    assert 2.0 < refused.retry_after_s <= 3.0  # the first of the three leaves the 3 s window then
    assert refused.retry_after_header == "3"
    assert RATE_LIMITED.labels(QUERY, "executor")._value.get() == before + 1


async def test_the_window_moves_on(make_limiter):
    limiter = make_limiter(executor=RateLimit(2.0, 2))  # 2 in any 1 s
    assert await allowed(limiter, 3) == [True, True, False]
    await asyncio.sleep(1.05)
    assert await allowed(limiter, 3) == [True, True, False]


async def test_executors_have_their_own_windows_and_share_the_courts(make_limiter):
    limiter = make_limiter(executor=RateLimit(0.1, 2), court=RateLimit(0.1, 3))
    assert await allowed(limiter, 3, "E1") == [True, True, False]
    assert await allowed(limiter, 1, "E2") == [True]
    refused = await limiter.check(QUERY, "E3", "340100")
    assert (refused.allowed, refused.limited_by) == (False, "court")
    assert await allowed(limiter, 1, "E3", "340200") == [True]  # another court, another window
    # The same executor ID in another court is another executor.
    assert await allowed(limiter, 1, "E1", "340200") == [True]


async def test_a_refusal_takes_nothing_from_the_court(make_limiter):
    limiter = make_limiter(executor=RateLimit(0.1, 2), court=RateLimit(0.1, 4))
    assert await allowed(limiter, 2, "E1") == [True, True]
    for _ in range(10):
        assert (await limiter.check(QUERY, "E1", "340100")).limited_by == "executor"
    # The court still has its two other places, for other executors.
    assert await allowed(limiter, 3, "E2") == [True, True, False]


async def test_control_actions_have_limits_of_their_own(make_limiter):
    limiter = make_limiter(executor=RateLimit(0.1, 2), control_executor=RateLimit(0.1, 1),
                           control_court=RateLimit(0.1, 2))
    assert await allowed(limiter, 2, family=QUERY) == [True, True]
    # Queries used up do not touch the control limit, and the other way round.
    assert await allowed(limiter, 2, family=CONTROL) == [True, False]
    assert (await limiter.check(QUERY, "E1", "340100")).allowed is False
    assert await allowed(limiter, 2, "E2", family=CONTROL) == [True, False]
    refused = await limiter.check(CONTROL, "E3", "340100")
    assert (refused.allowed, refused.limited_by) == (False, "court")
    with pytest.raises(ValueError):
        await limiter.check("batch", "E1", "340100")


async def test_two_limiters_on_one_redis_share_one_limit_and_in_memory_they_do_not(redis_server):
    prefix = f"chakong-test-{uuid.uuid4().hex[:12]}"
    shared = [RateLimiter(limits(redis_url=redis_server, prefix=prefix)) for _ in range(2)]
    # Two gateways, alternating requests of one executor.
    decisions = [(await shared[n % 2].check(QUERY, "E1", "340100")).allowed for n in range(6)]
    assert decisions == [True, True, True, False, False, False]
    alone = [RateLimiter(limits(prefix=prefix)) for _ in range(2)]
    decisions = [(await alone[n % 2].check(QUERY, "E1", "340100")).allowed for n in range(6)]
    assert decisions == [True] * 6  # each process counts alone: twice the limit
    await close_all(*shared, *alone)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_redis_down_fails_open_to_limits_per_process_not_to_no_limit():
    limiter = RateLimiter(limits(redis_url=f"redis://127.0.0.1:{closed_port()}/0"))
    assert not await limiter.ping()
    before = FALLBACK._value.get()
    start = time.monotonic()
    assert await allowed(limiter, 4) == [True, True, True, False]
    assert time.monotonic() - start < 2.0  # Redis is tried once, then left alone for a while
    assert FALLBACK._value.get() == before + 4
    await close_all(limiter)


async def test_limits_are_shared_again_once_redis_answers(redis_server):
    host_port = redis_server.split("://", 1)[1].split("/", 1)[0]
    proxy = await FaultProxy(host_port).start()
    prefix = f"chakong-test-{uuid.uuid4().hex[:12]}"
    limiter = RateLimiter(limits(redis_url=f"redis://{proxy.address}/0", prefix=prefix), retry_shared_s=0.3)
    other = RateLimiter(limits(redis_url=redis_server, prefix=prefix))  # another gateway, Redis reachable
    try:
        assert await allowed(limiter, 1) == [True]
        proxy.cut()
        before = FALLBACK._value.get()
        # Redis away: this process's own window (empty) decides, three more at most.
        assert await allowed(limiter, 4) == [True, True, True, False]
        assert FALLBACK._value.get() == before + 4
        proxy.heal()
        await asyncio.sleep(0.4)
        # Shared again: Redis saw only the first, the other gateway takes the last two places.
        assert await allowed(other, 3) == [True, True, False]
        assert await allowed(limiter, 1) == [False]
        assert FALLBACK._value.get() == before + 4
    finally:
        await close_all(limiter, other)
        await proxy.close()


def test_limits_from_the_environment(monkeypatch):
    # conftest raises every limit for the other tests; the defaults are under test here.
    for name in ("COURT", "CONTROL_EXECUTOR", "CONTROL_COURT"):
        monkeypatch.delenv(f"RATE_LIMIT_{name}_PER_MINUTE", raising=False)
        monkeypatch.delenv(f"RATE_LIMIT_{name}_BURST", raising=False)
    monkeypatch.delenv("RATE_LIMIT_REDIS_URL", raising=False)
    monkeypatch.setenv("RATE_LIMIT_EXECUTOR_PER_MINUTE", "30")
    monkeypatch.setenv("RATE_LIMIT_EXECUTOR_BURST", "5")
    found = RateLimits.from_env()
    assert found.per_executor == RateLimit(0.5, 5) and found.per_executor.window_s == 10
    assert found.per_court == RateLimit(20.0, 200)
    assert found.control_per_executor == RateLimit(0.5, 10)
    assert found.control_per_court == RateLimit(10.0, 100)
    assert (found.redis_url, found.redis_prefix) == ("", "chakong")
    monkeypatch.setenv("RATE_LIMIT_COURT_BURST", "0")
    with pytest.raises(SettingsError, match="RATE_LIMIT_COURT_BURST"):
        RateLimits.from_env()
    monkeypatch.delenv("RATE_LIMIT_COURT_BURST")
    monkeypatch.setenv("RATE_LIMIT_REDIS_URL", "127.0.0.1:6379")
    with pytest.raises(SettingsError, match="RATE_LIMIT_REDIS_URL"):
        RateLimits.from_env()
    monkeypatch.setenv("RATE_LIMIT_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("RATE_LIMIT_REDIS_PREFIX", "a b")
    with pytest.raises(SettingsError, match="RATE_LIMIT_REDIS_PREFIX"):
        RateLimits.from_env()


def test_bad_limits_are_refused():
    with pytest.raises(ValueError):
        RateLimit(0.0, 1)
    with pytest.raises(ValueError):
        RateLimit(1.0, 0)
