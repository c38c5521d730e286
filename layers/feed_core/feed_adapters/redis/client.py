"""The Redis client, configured to fail fast (the timeline store turns its errors into the
domain's TimelineStoreUnavailable)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis


def make_redis(host: str, port: int, db: int = 0) -> redis.Redis:
    """Short timeouts and few retries: a slow or dead Redis must degrade a feed read
    (partial=true) within a fraction of a second. redis-py 8's default retries a failing call
    10 times with backoff, about 4 s per call."""
    import redis
    from redis.backoff import ExponentialWithJitterBackoff
    from redis.retry import Retry

    return redis.Redis(
        host=host,
        port=port,
        db=db,
        decode_responses=True,
        socket_connect_timeout=2.0,
        socket_timeout=2.0,
        health_check_interval=30,
        retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), retries=2),
    )
