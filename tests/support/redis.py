"""Redis for the shared rate-limit tests: is it there."""

import redis


def redis_ping(url: str, timeout_s: float = 2.0) -> None:
    """Raise unless the Redis at `url` answers PING."""
    client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        client.ping()
    finally:
        client.close()
