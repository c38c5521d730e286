"""The composition root gives every store adapter the STORE_TIMEOUT_MS of its settings (the
template sets 5 s for fan-out and 30 s for scheduled jobs, where the API keeps 800 ms)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import redis

from feed_adapters.mongo.engagement_store import MongoEngagementStore
from feed_adapters.mongo.post_store import MongoPostStore
from feed_adapters.postgres.graph_store import PostgresGraphStore
from feed_adapters.translate import StoreBreaker
from feed_wiring.root import build_services
from feed_wiring.settings import Settings
from tests.fakes.queues import RecordingFanoutQueue

pytestmark = pytest.mark.integration


def test_the_redis_client_waits_as_long_as_the_settings_say(
    settings: Settings, pg_pool: Any, mongo_db: Any
) -> None:
    slow = dataclasses.replace(settings, store_timeout_ms=4321)
    # The session's pool and database (a pool built here would be left for the collector).
    services = build_services(
        slow,
        graph=PostgresGraphStore(pg_pool),
        posts=MongoPostStore(mongo_db),
        engagement=MongoEngagementStore(mongo_db, StoreBreaker("mongodb")),
        queue=RecordingFanoutQueue(),
    )
    client = services.timelines._r  # the client the timeline store was built with
    if isinstance(client, redis.RedisCluster):  # REDIS_CLUSTER: every node's pool
        pools = [client.get_redis_connection(n).connection_pool for n in client.get_nodes()]
    else:
        pools = [client.connection_pool]
    for pool in pools:
        kwargs = pool.connection_kwargs
        assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == 4.321
    assert client.ping()
    client.close()
