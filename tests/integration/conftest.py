"""Fixtures for domain integration tests against the real PostgreSQL, Redis and MongoDB-wire
server. Each test starts from empty stores: tables truncated, collections emptied, Redis db
FLUSHDB'd. Services are wired with an inline queue so fan-out runs synchronously.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from feed_env import FeedEnv, drop_event_collections

from feed_adapters.mongo.database import ensure_indexes, make_database
from feed_adapters.mongo.engagement_store import MongoEngagementStore
from feed_adapters.mongo.post_store import MongoPostStore
from feed_adapters.postgres.graph_store import PostgresGraphStore, make_pool
from feed_adapters.redis.client import make_redis
from feed_adapters.translate import StoreBreaker
from feed_wiring.root import build_services
from feed_wiring.settings import Settings
from infra import init_db
from newsfeed.telemetry import NO_TELEMETRY, Telemetry
from tests.fakes.queues import InlineFanoutQueue, RecordingFanoutQueue

TABLES = ("follows", "blocks", "mutes", "users")
COLLECTIONS = (
    "posts",
    "likes",
    "post_requests",
    "engagement_stats",
    "job_state",
    "impression_counts",
    "media",
    "media_locks",
)


@pytest.fixture(scope="session")
def pg_pool(settings: Settings) -> Iterator[Any]:
    init_db.ensure_database(settings)
    init_db.apply_postgres_migrations(settings.postgres_dsn)
    pool = make_pool(settings.postgres_dsn, min_size=1, max_size=4)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def mongo_db(settings: Settings) -> Iterator[Any]:
    db = make_database(settings.mongodb_url, settings.mongodb_db)
    ensure_indexes(db)
    yield db
    db.client.close()


@pytest.fixture(scope="session")
def redis_client(settings: Settings) -> Iterator[redis.Redis]:
    client = make_redis(
        settings.redis_host, settings.redis_port, settings.redis_db, cluster=settings.redis_cluster
    )
    yield client
    client.close()


@pytest.fixture
def clean_stores(pg_pool: Any, mongo_db: Any, redis_client: redis.Redis) -> None:
    with pg_pool.connection() as conn:
        conn.execute(f"TRUNCATE {', '.join(TABLES)} CASCADE")
    for name in COLLECTIONS:
        mongo_db[name].delete_many({})
    drop_event_collections(mongo_db)
    redis_client.flushdb()


@pytest.fixture
def make_env(
    settings: Settings, pg_pool: Any, mongo_db: Any, redis_client: redis.Redis, clean_stores: None
) -> Callable[..., FeedEnv]:
    """`make_env(celebrity_threshold=3, ...)`: services with overridden settings."""

    def make(
        *,
        recording: bool = False,
        redis_override: Any = None,
        telemetry: Telemetry | None = None,
        **overrides: Any,
    ) -> FeedEnv:
        """`recording=True`: jobs are only collected (run them with env.run_jobs).
        `telemetry` (e.g. tests.fakes.telemetry.RecordingTelemetry): where the services and
        every store adapter measure."""
        test_settings = dataclasses.replace(settings, **overrides)
        queue: Any = RecordingFanoutQueue() if recording else InlineFanoutQueue()
        graph = PostgresGraphStore(pg_pool, telemetry=telemetry or NO_TELEMETRY)
        posts = MongoPostStore(mongo_db, StoreBreaker("mongodb", telemetry or NO_TELEMETRY))
        services = build_services(
            test_settings,
            graph=graph,
            posts=posts,
            redis_client=redis_override or redis_client,
            queue=queue,
            engagement=MongoEngagementStore(
                mongo_db, StoreBreaker("mongodb", telemetry or NO_TELEMETRY)
            ),
            telemetry=telemetry,
        )
        if not recording:
            queue.bind(services.fanout.handle_message)
        return FeedEnv(
            test_settings, services, queue, graph, posts, redis_client, pg_pool, mongo_db
        )

    return make


@pytest.fixture
def env(make_env: Callable[..., FeedEnv]) -> FeedEnv:
    return make_env(celebrity_threshold=1000, timeline_max_len=50, fanout_chunk_size=100)
