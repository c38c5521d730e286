"""Bench databases on the configured servers, kept apart from dev and test data.

`make bench` uses PostgreSQL `feed_bench`, MongoDB `feed_bench` and Redis logical database 14;
the quick mode (run by `make test`) uses `feed_bench_quick` and Redis database 13. BENCH_* env
names override them. Every load starts by emptying exactly these databases, never others.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from feed_adapters.mongo.database import ensure_indexes, event_day, make_database
from feed_adapters.mongo.post_store import MongoPostStore
from feed_adapters.postgres.graph_store import PostgresGraphStore, make_pool
from feed_adapters.redis.client import make_redis
from feed_wiring.root import Services, build_services
from feed_wiring.settings import Settings
from functions import load_app
from infra import init_db
from newsfeed.telemetry import Telemetry
from tests.fakes.queues import RecordingFanoutQueue

ROOT = Path(__file__).resolve().parent.parent

BENCH_DBS = {
    "full": {"POSTGRES_DB": "feed_bench", "MONGODB_DB": "feed_bench", "REDIS_DB": "14"},
    "quick": {
        "POSTGRES_DB": "feed_bench_quick",
        "MONGODB_DB": "feed_bench_quick",
        "REDIS_DB": "13",
    },
}
COLLECTIONS = ("posts", "likes", "engagement_events", "post_requests")


def load_function(name: str, env: dict[str, str]) -> ModuleType:
    """functions/<name>/app.py initialised as in a cold start, configured by `env` (set in
    os.environ, where the module reads its settings at import); see functions.load_app."""
    os.environ.update(env)
    return load_app(name)


def bench_settings(mode: str, **overrides: Any) -> Settings:
    names = {k: os.environ.get(f"BENCH_{k}", v) for k, v in BENCH_DBS[mode].items()}
    # Bulk loads and FLUSHDB of millions of entries outlast the API's fail-fast store timeout;
    # the benchmarks measure speed, not outages.
    names.setdefault("STORE_TIMEOUT_MS", os.environ.get("BENCH_STORE_TIMEOUT_MS", "30000"))
    base = Settings.from_env({**os.environ, **names})
    return dataclasses.replace(base, **overrides)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a Lambda function would carry for these settings."""
    env = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        env[f.name.upper()] = "" if value is None else str(value)
    return env


@dataclass
class Stores:
    settings: Settings
    pool: Any
    db: Any
    redis: Any
    queue: RecordingFanoutQueue
    services: Services
    graph: PostgresGraphStore  # the adapters the services run on, for the pull baselines
    posts: MongoPostStore

    def close(self) -> None:
        self.pool.close()
        self.db.client.close()
        self.redis.close()


def prepare(settings: Settings) -> Stores:
    """Create the bench databases and schema if missing, empty them, and wire the services with
    a recording queue (jobs are run by the benchmark itself)."""
    init_db.ensure_database(settings)
    init_db.apply_postgres_migrations(settings.postgres_dsn)
    db = make_database(settings.mongodb_url, settings.mongodb_db, settings.store_timeout_ms)
    for name in db.list_collection_names():
        if name in COLLECTIONS or event_day(name):  # the raw events' day collections too
            db.drop_collection(name)
    ensure_indexes(db)
    db.client.close()
    stores = connect(settings)
    stores.redis.flushdb()
    return stores


def connect(settings: Settings, telemetry: Telemetry | None = None) -> Stores:
    """The services on the bench databases as they are (another process of the same run)."""
    db = make_database(settings.mongodb_url, settings.mongodb_db, settings.store_timeout_ms)
    client = make_redis(
        settings.redis_host,
        settings.redis_port,
        settings.redis_db,
        timeout_ms=settings.store_timeout_ms,
    )
    pool = make_pool(
        settings.postgres_dsn,
        min_size=1,
        max_size=4,
        wait_seconds=settings.store_timeout_ms / 1000,
    )
    queue = RecordingFanoutQueue()
    graph = PostgresGraphStore(pool, query_timeout_ms=settings.store_timeout_ms)
    posts = MongoPostStore(db)
    services = build_services(
        settings, graph=graph, posts=posts, redis_client=client, queue=queue, telemetry=telemetry
    )
    return Stores(settings, pool, db, client, queue, services, graph, posts)
