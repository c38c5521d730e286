"""make_redis: the single client unless REDIS_CLUSTER; a cluster has only database 0 (the
cluster client itself, which connects as it is built, is tested in tests/stack)."""

from __future__ import annotations

import pytest
import redis

from feed_adapters.redis.client import make_redis


def test_single_redis_by_default_with_the_fail_fast_options():
    client = make_redis("127.0.0.1", 1, 15, timeout_ms=300)
    assert type(client) is redis.Redis
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["db"] == 15
    assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == 0.3
    assert client.get_retry().get_retries() == 1


def test_cluster_mode_refuses_a_database_other_than_0_before_connecting():
    with pytest.raises(ValueError, match="only database 0, got REDIS_DB=15"):
        make_redis("127.0.0.1", 1, 15, cluster=True)
