"""Per-executor and per-court token buckets, driven by an injected clock."""

import pytest

from services.common.settings import SettingsError
from services.security.ratelimit import QueryRateLimiter, RateLimit, RateLimits


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(executor=RateLimit(1.0, 3), court=RateLimit(10.0, 100), **kwargs):
    clock = Clock()
    return QueryRateLimiter(RateLimits(executor, court), clock=clock, **kwargs), clock


def test_a_burst_is_allowed_then_refused_with_a_retry_after():
    limits, _ = limiter()
    assert [limits.check("E1", "340100").allowed for _ in range(3)] == [True, True, True]
    refused = limits.check("E1", "340100")
    assert not refused.allowed
    assert refused.limited_by == "executor"
    assert refused.retry_after_s == pytest.approx(1.0)
    assert refused.retry_after_header == "1"


def test_tokens_refill_at_the_rate_up_to_the_burst():
    limits, clock = limiter()
    for _ in range(3):
        limits.check("E1", "340100")
    clock.now += 0.5
    assert limits.check("E1", "340100").retry_after_s == pytest.approx(0.5)
    clock.now += 0.5
    assert limits.check("E1", "340100").allowed
    clock.now += 3600  # a long pause refills only up to the burst
    assert [limits.check("E1", "340100").allowed for _ in range(4)] == [True, True, True, False]


def test_executors_have_their_own_buckets_and_share_the_courts():
    limits, _ = limiter(executor=RateLimit(1.0, 2), court=RateLimit(1.0, 3))
    assert limits.check("E1", "340100").allowed and limits.check("E1", "340100").allowed
    assert not limits.check("E1", "340100").allowed
    assert limits.check("E2", "340100").allowed
    refused = limits.check("E3", "340100")
    assert (refused.allowed, refused.limited_by) == (False, "court")
    assert limits.check("E3", "340200").allowed  # another court, another bucket


def test_the_same_executor_id_in_two_courts_is_two_executors():
    limits, _ = limiter(executor=RateLimit(1.0, 1))
    assert limits.check("E1", "340100").allowed
    assert limits.check("E1", "340200").allowed


def test_a_refusal_takes_nothing_from_either_bucket():
    limits, clock = limiter(executor=RateLimit(1.0, 5), court=RateLimit(1.0, 2))
    limits.check("E1", "340100")
    limits.check("E1", "340100")
    for _ in range(10):
        assert not limits.check("E1", "340100").allowed  # refused by the court
    clock.now += 2
    # The executor bucket still holds 3 + 2 refilled (capped at 5); the court's refilled 2.
    assert [limits.check("E1", "340100").allowed for _ in range(3)] == [True, True, False]


def test_cost_counts_several_subjects():
    limits, _ = limiter(executor=RateLimit(1.0, 5))
    assert limits.check("E1", "340100", cost=4).allowed
    refused = limits.check("E1", "340100", cost=4)
    assert refused.retry_after_s == pytest.approx(3.0)
    with pytest.raises(ValueError, match="burst"):
        limits.check("E1", "340100", cost=6)
    with pytest.raises(ValueError):
        limits.check("E1", "340100", cost=0)


def test_a_clock_stepping_back_refills_nothing():
    limits, clock = limiter(executor=RateLimit(1.0, 1))
    assert limits.check("E1", "340100").allowed
    clock.now -= 100
    assert not limits.check("E1", "340100").allowed
    clock.now += 101
    assert limits.check("E1", "340100").allowed


def test_idle_full_buckets_are_dropped_to_bound_memory():
    limits, clock = limiter(executor=RateLimit(1.0, 2), max_keys=10)
    for n in range(10):
        limits.check(f"E{n}", "340100")
    clock.now += 10  # every bucket full again
    limits.check("E-new", "340100")
    assert len(limits._executors) == 1


def test_limits_from_the_environment(monkeypatch):
    # conftest raises every limit for the other tests; the defaults are under test here.
    monkeypatch.delenv("RATE_LIMIT_COURT_PER_MINUTE", raising=False)
    monkeypatch.delenv("RATE_LIMIT_COURT_BURST", raising=False)
    monkeypatch.setenv("RATE_LIMIT_EXECUTOR_PER_MINUTE", "30")
    monkeypatch.setenv("RATE_LIMIT_EXECUTOR_BURST", "5")
    limits = RateLimits.from_env()
    assert limits.per_executor == RateLimit(0.5, 5)
    assert limits.per_court == RateLimit(20.0, 200)
    monkeypatch.setenv("RATE_LIMIT_COURT_BURST", "0")
    with pytest.raises(SettingsError, match="RATE_LIMIT_COURT_BURST"):
        RateLimits.from_env()


def test_bad_limits_are_refused():
    with pytest.raises(ValueError):
        RateLimit(0.0, 1)
    with pytest.raises(ValueError):
        RateLimit(1.0, 0)
