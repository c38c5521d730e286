"""Impressions go to a Redis buffer on the read path; the roll-up stores each exactly once."""

from __future__ import annotations

import pytest
from feed_env import FeedEnv

from feed_adapters.redis.keys import ENGAGEMENT_BUFFER_KEY, ENGAGEMENT_DRAINING_KEY

pytestmark = pytest.mark.integration


def stored_impressions(env: FeedEnv) -> int:
    return env.db.engagement_events.count_documents({"kind": "impression"})


def test_feed_reads_buffer_impressions_and_the_rollup_stores_them(env: FeedEnv) -> None:
    author, fan = env.user(), env.user()
    env.services.social.follow(fan, author)
    posts = [env.post(author) for _ in range(3)]
    assert env.feed(fan) == posts[::-1]
    # Nothing written to MongoDB by the read itself.
    assert stored_impressions(env) == 0
    assert env.services.timelines.buffered_event_count() == 3

    report = env.services.rollup.run()
    assert report.events_drained == 3
    assert stored_impressions(env) == 3
    assert env.services.timelines.buffered_event_count() == 0
    assert env.services.stats.post_stats(posts[0], "day", 1).totals["impressions"] == 1
    # Nothing left to drain: a second run stores nothing again.
    assert env.services.rollup.run().events_drained == 0
    assert stored_impressions(env) == 3


def test_a_drain_that_fails_midway_loses_and_duplicates_nothing(env: FeedEnv) -> None:
    author, fan = env.user(), env.user()
    env.services.social.follow(fan, author)
    for _ in range(5):
        env.post(author)
    env.feed(fan, limit=5)
    timelines = env.services.timelines

    def store_then_crash(events: list[dict]) -> None:
        env.events.record_events(events)  # stored, but the drain dies before confirming
        raise ConnectionError("lambda timed out")

    with pytest.raises(ConnectionError):
        timelines.drain_events(store_then_crash, batch=2)
    assert stored_impressions(env) == 2
    assert env.redis.llen(ENGAGEMENT_DRAINING_KEY) == 2  # taken, not confirmed
    assert env.redis.llen(ENGAGEMENT_BUFFER_KEY) == 3

    # The next drain stores the unconfirmed batch again (skipped as duplicates), then the rest.
    assert timelines.drain_events(env.events.record_events, batch=2) == 5
    assert stored_impressions(env) == 5
    assert timelines.buffered_event_count() == 0
    ids = [d["_id"] for d in env.db.engagement_events.find({"kind": "impression"})]
    assert len(set(ids)) == 5
