"""The Redis client, configured to fail fast (the timeline store turns its errors into the
domain's TimelineStoreUnavailable)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis
    import redis.cluster


def make_redis(
    host: str, port: int, db: int = 0, timeout_ms: int = 800, *, cluster: bool = False
) -> redis.Redis | redis.cluster.RedisCluster:
    """Short timeouts: a dead or hung Redis must degrade a feed read (partial=true) well within
    the API's 2 s. redis-py 8's default retries a failing call 10 times with backoff, about 4 s
    per call; here a refused or reset connection is retried once (a failover), a timeout never
    (the store is hung: retrying only doubles the wait).

    `cluster` (REDIS_CLUSTER, ElastiCache cluster mode): redis-py's cluster client, with
    `host:port` as its startup node (it discovers the others from CLUSTER SLOTS, so it talks to
    the cluster while it is built) and the same timeouts and health checks. A cluster has only
    database 0. redis-py's cluster client takes from the retry object only its count: one retry,
    after refreshing its slot map, of a connection error, a timeout, CLUSTERDOWN or an uncovered
    slot alike (RedisCluster.ERRORS_ALLOW_RETRY), so unlike the single client a timeout is
    retried once."""
    import redis
    from redis.backoff import ExponentialWithJitterBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.retry import Retry

    timeout = timeout_ms / 1000
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "health_check_interval": 30,
        "retry": Retry(
            ExponentialWithJitterBackoff(base=0.01, cap=0.05),
            retries=1,
            supported_errors=(RedisConnectionError,),
        ),
    }
    if cluster:
        if db != 0:
            raise ValueError(f"Redis Cluster has only database 0, got REDIS_DB={db}")
        from redis.cluster import RedisCluster

        return RedisCluster(host=host, port=port, **options)
    return redis.Redis(host=host, port=port, db=db, **options)
