"""Impressions on the read path: counted in Redis once per reader, post and hour (bounded,
whatever a reader does), moved to MongoDB by the impressions drain under a lock, each batch at
most once (issue 9, defect 6)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from feed_env import FeedEnv

from feed_adapters.redis import timeline_store
from feed_adapters.redis.keys import IMPRESSION_DRAIN_LOCK_KEY

pytestmark = pytest.mark.integration


def stored_impressions(env: FeedEnv) -> int:
    raw = env.db.engagement_events.count_documents({"kind": "impression"})
    return raw + sum(d["count"] for d in env.db.impression_counts.find())


def _reader_of(env: FeedEnv, posts: int = 3) -> tuple[int, list[int]]:
    author, fan = env.user(), env.user()
    env.services.social.follow(fan, author)
    ids = [env.post(author) for _ in range(posts)]
    return fan, ids


def test_feed_reads_count_impressions_and_the_drain_stores_them(env: FeedEnv) -> None:
    fan, posts = _reader_of(env)
    assert env.feed(fan) == posts[::-1]
    assert stored_impressions(env) == 0  # nothing written to MongoDB by the read itself
    assert env.services.timelines.pending_impression_count() == 3
    report = env.services.rollup.run()
    assert report.events_drained == 3
    assert env.services.timelines.pending_impression_count() == 0
    assert env.services.stats.post_stats(posts[0], "day", 1).totals["impressions"] == 1
    assert env.services.rollup.run().events_drained == 0  # nothing left: nothing again
    assert stored_impressions(env) == 3


def test_an_impression_counts_once_per_reader_post_and_hour(env: FeedEnv) -> None:
    fan, posts = _reader_of(env)
    for _ in range(50):  # a reader refreshing the same page
        env.services.feed.home_feed(fan, None, 20)
    assert env.services.timelines.pending_impression_count() == 3  # not 150
    other = env.user()
    env.services.social.follow(other, env.services.posts.get(posts[0]).author_id)
    env.services.feed.home_feed(other, None, 20)
    assert env.services.timelines.pending_impression_count() == 6
    env.services.impressions.run()
    env.services.rollup.run()
    assert env.services.stats.post_stats(posts[0], "day", 1).totals["impressions"] == 2


def test_a_readers_hour_is_bounded(env: FeedEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timeline_store, "IMPRESSIONS_PER_READER_HOUR", 2)
    fan, _ = _reader_of(env)
    env.services.feed.home_feed(fan, None, 20)
    assert env.services.timelines.pending_impression_count() == 2
    assert env.services.timelines.impressions_dropped(datetime.now(UTC)) == 1


def test_a_drain_that_fails_midway_counts_nothing_twice(env: FeedEnv) -> None:
    fan, _ = _reader_of(env, posts=5)
    env.feed(fan, limit=5)
    timelines, events = env.services.timelines, env.events

    def store_then_crash(batch: str, hour: datetime, counts: list) -> None:
        events.add_impression_counts(batch, hour, counts)  # stored, then the drain dies
        raise ConnectionError("lambda timed out")

    with pytest.raises(ConnectionError):
        timelines.drain_impression_counts(store_then_crash)
    assert stored_impressions(env) > 0
    assert timelines.pending_impression_count() == 5  # taken, not confirmed
    # The next drain hands the same batches over again; the store adds each once.
    assert timelines.drain_impression_counts(events.add_impression_counts) == 5
    assert stored_impressions(env) == 5
    assert timelines.pending_impression_count() == 0


def test_two_drains_never_take_the_same_counts(env: FeedEnv) -> None:
    fan, _ = _reader_of(env)
    env.feed(fan)
    env.redis.set(IMPRESSION_DRAIN_LOCK_KEY, "another drain", ex=60)
    report = env.services.impressions.run()
    assert report.locked_out and report.impressions == 0
    assert env.services.timelines.pending_impression_count() == 3
    env.redis.delete(IMPRESSION_DRAIN_LOCK_KEY)
    assert env.services.impressions.run().impressions == 3
    assert stored_impressions(env) == 3
