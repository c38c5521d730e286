"""Impressions on the read path: counted in Redis once per reader, post and hour (bounded,
whatever a reader does), moved to MongoDB by the impressions drain under a lock, each batch at
most once (issue 9, defect 6)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis
from feed_env import FeedEnv

from feed_adapters.redis import timeline_store
from feed_adapters.redis.keys import (
    IMPRESSION_DRAIN_LOCK_KEY,
    IMPRESSION_TAGS,
    LEGACY_IMPRESSION_TAG,
    impression_index_key,
    impression_tag,
    impression_tags,
)

pytestmark = pytest.mark.integration


def stored_impressions(env: FeedEnv) -> int:
    raw = env.event_count({"kind": "impression"})
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


def test_readers_impressions_spread_over_tags_and_the_earlier_single_tag_still_drains(
    env: FeedEnv,
) -> None:
    """Each read counts under its reader's tag only (one of IMPRESSION_TAGS): readers spread
    over as many slots, so no cluster shard takes every read's impressions. Counts left under
    the single {imp} tag of earlier releases are drained too, once."""
    author = env.user()
    post = env.post(author)
    readers = [env.user() for _ in range(2 * IMPRESSION_TAGS)]
    for reader in readers:
        env.services.social.follow(reader, author)
        assert env.feed(reader) == [post]
    hour = datetime.now(UTC).strftime("%Y%m%d%H")
    used = {tag for tag in impression_tags() if env.redis.smembers(impression_index_key(tag))}
    assert used == {impression_tag(r) for r in readers}
    # 64 readers hashed over 32 tags: most tags (about 28 on average), never the old one.
    assert len(used) >= IMPRESSION_TAGS // 2 and LEGACY_IMPRESSION_TAG not in used
    if isinstance(env.redis, redis.RedisCluster):  # spread over every master
        slots = {env.redis.keyslot(impression_index_key(tag)) for tag in used}
        assert len({env.redis.nodes_manager.slots_cache[s][0].name for s in slots}) == len(
            env.redis.get_primaries()
        )
    # An earlier release's count hash (one tag for everyone), not drained before the upgrade.
    legacy = f"{{{LEGACY_IMPRESSION_TAG}}}:count:{hour}:{post % 16}"
    env.redis.hset(legacy, f"{post}:{author}", 5)
    env.redis.sadd(impression_index_key(LEGACY_IMPRESSION_TAG), legacy)
    assert env.services.timelines.pending_impression_count() == len(readers) + 5
    env.services.impressions.run()
    env.services.rollup.run()
    assert env.services.timelines.pending_impression_count() == 0
    totals = env.services.stats.post_stats(post, "day", 1).totals
    assert totals["impressions"] == len(readers) + 5
    env.services.impressions.run()
    env.services.rollup.run()
    assert env.services.stats.post_stats(post, "day", 1).totals["impressions"] == len(readers) + 5
