"""The Redis client, configured to fail fast (the timeline store turns its errors into the
domain's TimelineStoreUnavailable)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis


def make_redis(host: str, port: int, db: int = 0, timeout_ms: int = 800) -> redis.Redis:
    """Short timeouts: a dead or hung Redis must degrade a feed read (partial=true) well within
    the API's 2 s. redis-py 8's default retries a failing call 10 times with backoff, about 4 s
    per call; here a refused or reset connection is retried once (a failover), a timeout never
    (the store is hung: retrying only doubles the wait)."""
    import redis
    from redis.backoff import ExponentialWithJitterBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.retry import Retry

    timeout = timeout_ms / 1000
    return redis.Redis(
        host=host,
        port=port,
        db=db,
        decode_responses=True,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        health_check_interval=30,
        retry=Retry(
            ExponentialWithJitterBackoff(base=0.01, cap=0.05),
            retries=1,
            supported_errors=(RedisConnectionError,),
        ),
    )
