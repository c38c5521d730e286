"""FeedEnv: the real services over the real stores, plus shortcuts for tests."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis

from feed_adapters.mongo.database import LEGACY_EVENTS, event_day
from feed_adapters.mongo.engagement_store import MongoEngagementStore
from feed_adapters.mongo.post_store import MongoPostStore
from feed_adapters.postgres.graph_store import PostgresGraphStore
from feed_wiring.root import Services
from feed_wiring.settings import Settings
from tests.fakes.queues import InlineFanoutQueue, RecordingFanoutQueue


@dataclass
class FeedEnv:
    """Real services over the real stores, plus shortcuts for tests."""

    settings: Settings
    services: Services
    queue: InlineFanoutQueue | RecordingFanoutQueue
    graph: PostgresGraphStore
    posts: MongoPostStore
    redis: redis.Redis
    pool: Any
    db: Any
    _handles: Iterator[int] = dataclasses.field(default_factory=itertools.count)

    @property
    def events(self) -> MongoEngagementStore:
        """The engagement store (owner of the raw events' collections), on the same database."""
        return MongoEngagementStore(self.db)

    def user(self, handle: str | None = None) -> int:
        n = next(self._handles)
        handle = handle or f"user_{n}"
        return self.services.profiles.create_profile(f"sub|{handle}", handle, handle.title()).id

    def post(self, author_id: int, text: str | None = None) -> int:
        return self.services.posts.create(author_id, text or f"post by {author_id}").id

    def feed_pages(self, reader_id: int, limit: int = 5, max_pages: int = 1000) -> list[list[int]]:
        pages: list[list[int]] = []
        cursor = None
        for _ in range(max_pages):
            page = self.services.feed.home_feed(reader_id, cursor, limit)
            assert not page.partial, "unexpected partial page"
            pages.append([p.id for p in page.items])
            cursor = page.next_cursor
            if cursor is None:
                return pages
        raise AssertionError("feed did not end")

    def feed(self, reader_id: int, limit: int = 5) -> list[int]:
        return [pid for page in self.feed_pages(reader_id, limit) for pid in page]

    def set_inactive(self, user_id: int, days: int) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE users SET last_active_at = now() - make_interval(days => %s) WHERE id = %s",
                (days, user_id),
            )

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.pool.connection() as conn:
            return conn.execute(query, params).fetchall()

    def run_jobs(self, times: int = 1) -> list[dict[str, Any]]:
        """With a recording queue: run every queued job (and the jobs they queue) `times` each,
        i.e. simulate SQS redelivery when times > 1."""
        assert isinstance(self.queue, RecordingFanoutQueue)
        ran: list[dict[str, Any]] = []
        while self.queue.jobs:
            for job in self.queue.drain():
                for _ in range(times):
                    self.services.fanout.handle_message(job)
                ran.append(job)
        return ran

    def timeline(self, user_id: int) -> list[int]:
        return self.services.timelines.timeline_ids(user_id)

    def mode(self, user_id: int) -> str:
        return self.services.profiles.get(user_id).fanout_mode

    def reset(self) -> None:
        """Empty every store (for property tests that run many examples in one test)."""
        with self.pool.connection() as conn:
            conn.execute("TRUNCATE follows, blocks, mutes, users CASCADE")
        for name in ("posts", "likes", "engagement_stats", "job_state", "impression_counts"):
            self.db[name].delete_many({})
        drop_event_collections(self.db)
        self.redis.flushdb()

    def event_count(self, query: dict[str, Any]) -> int:
        """Raw engagement events matching `query`, over every day's collection (and the
        single collection of earlier releases)."""
        return sum(self.db[name].count_documents(query) for name in event_collections(self.db))


def event_collections(db: Any) -> list[str]:
    """The raw engagement events' collections: one per day, and the one of earlier releases."""
    return [n for n in db.list_collection_names() if n == LEGACY_EVENTS or event_day(n)]


def drop_event_collections(db: Any) -> None:
    for name in event_collections(db):
        db.drop_collection(name)
