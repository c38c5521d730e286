"""Redis client factory. Every key and timeline operation lives in `newsfeed/timelines.py`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

    from ..settings import Settings


def make_redis(settings: Settings) -> redis.Redis:
    """Short timeouts and few retries: a slow or dead Redis must degrade a feed read
    (partial=true) within a fraction of a second. redis-py 8's default retries a failing call
    10 times with backoff, about 4 s per call."""
    import redis
    from redis.backoff import ExponentialWithJitterBackoff
    from redis.retry import Retry

    return redis.Redis(
        host=settings.redis_host,
        port=settings.redis_port,
        db=settings.redis_db,
        decode_responses=True,
        socket_connect_timeout=2.0,
        socket_timeout=2.0,
        health_check_interval=30,
        retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), retries=2),
    )
