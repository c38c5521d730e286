"""The scheduled jobs against the real stores: cache prewarm, timeline cleanup, analytics."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from feed_env import FeedEnv

from feed_adapters.mongo.engagement_store import MongoEngagementStore
from feed_adapters.redis.keys import post_cache_key, timeline_meta_key
from newsfeed.errors import InvalidInput, NotFound
from newsfeed.jobs.cleanup import TimelineCleanup
from newsfeed.jobs.prewarm import Prewarmer
from newsfeed.jobs.rollup import EngagementRollup, bucket_start

pytestmark = pytest.mark.integration


def _author_and_readers(env: FeedEnv, readers: int = 2, posts: int = 3):
    author = env.user("author")
    fans = [env.user(f"fan_{i}") for i in range(readers)]
    for fan in fans:
        env.services.social.follow(fan, author)
    ids = [env.post(author, f"post {i}") for i in range(posts)]
    return author, fans, ids


def _set_seen(env: FeedEnv, user_id: int, hours_ago: float) -> None:
    env.sql(
        "UPDATE users SET last_active_at = now() - make_interval(secs => %s) WHERE id = %s"
        " RETURNING id",
        hours_ago * 3600,
        user_id,
    )


# -- prewarm ------------------------------------------------------------------------------------


def test_prewarm_rebuilds_lost_timelines_and_the_first_read_comes_from_cache(env: FeedEnv):
    _author, fans, ids = _author_and_readers(env)
    expected = sorted(ids, reverse=True)
    for fan in fans:
        assert env.feed(fan) == expected
    env.redis.flushdb()  # a Redis failover: every timeline and cached post is gone

    report = env.services.prewarm.run()
    assert (report.active_users, report.warmed, report.failed) == (3, 3, 0)
    assert report.seconds >= 0
    for fan in fans:
        assert env.timeline(fan) == expected

    # Served from Redis alone: with the posts gone from MongoDB the page is still complete.
    env.db.posts.delete_many({})
    page = env.services.feed.home_feed(fans[0], None, 20)
    assert [p.id for p in page.items] == expected and not page.partial


def test_prewarm_leaves_warm_and_long_gone_users_alone(env: FeedEnv):
    _author, (fan, gone), ids = _author_and_readers(env)
    env.feed(fan)
    env.feed(gone)
    _set_seen(env, gone, hours_ago=env.settings.prewarm_active_hours + 1)
    env.redis.delete(timeline_meta_key(gone))

    def impressions() -> int:  # stored, or counted in Redis and waiting for the drain
        stored = env.event_count({"kind": "impression"})
        counted = sum(d["count"] for d in env.db.impression_counts.find())
        return stored + counted + env.services.timelines.pending_impression_count()

    before = impressions()
    assert before > 0

    first = env.services.prewarm.run()
    assert first.active_users == 2  # the author and `fan`; `gone` is outside the window
    assert first.warmed == 0  # both are already warm
    assert env.services.timelines.timeline_state(gone).state == ""

    # A cached body expires: that user's first page is cold again.
    env.redis.delete(post_cache_key(ids[-1]))
    again = env.services.prewarm.run()
    # Only the fan's: the author follows nobody, so their timeline is empty (own posts are
    # read from their author list, which the prewarm check does not look at).
    assert again.warmed == 1
    assert env.redis.exists(post_cache_key(ids[-1]))
    # Warming is not reading: no impressions and no activity recorded.
    assert impressions() == before
    still_gone = "SELECT last_active_at < now() - interval '1 hour' FROM users WHERE id = %s"
    assert env.sql(still_gone, gone) == [(True,)]


def test_prewarm_stops_at_max_users_most_recent_first(env: FeedEnv):
    users = [env.user() for _ in range(5)]
    for age, user in enumerate(users):
        _set_seen(env, user, hours_ago=age)
    env.redis.flushdb()
    prewarm = Prewarmer(
        env.graph,
        env.services.timelines,
        env.services.feed,
        active_hours=24,
        max_users=3,
        page_size=20,
    )
    assert prewarm.run().warmed == 3
    warm = [u for u in users if env.services.timelines.timeline_state(u).ready]
    assert warm == users[:3]


# -- cleanup ------------------------------------------------------------------------------------


def test_cleanup_drops_inactive_users_timelines_and_they_rebuild_on_return(env: FeedEnv):
    _author, (active, idle), ids = _author_and_readers(env)
    env.feed(active)
    env.feed(idle)
    env.set_inactive(idle, days=env.settings.active_days + 1)
    # The timeline was built a moment ago: a reader who just came back keeps it ...
    cleanup = env.services.cleanup
    assert cleanup.run().dropped == 0
    # ... but an hour later the grace period is over.
    later = TimelineCleanup(
        env.graph,
        env.services.timelines,
        active_days=env.settings.active_days,
        clock=lambda: time.time() + 3600,
    )
    report = later.run()
    assert (report.timelines_seen, report.dropped) == (3, 1)
    assert not env.redis.exists(timeline_meta_key(idle))
    assert env.services.timelines.timeline_state(active).ready
    assert later.run().dropped == 0  # idempotent

    # The user comes back: the first read rebuilds the timeline, nothing is missing.
    assert env.feed(idle) == sorted(ids, reverse=True)
    assert env.services.timelines.timeline_state(idle).ready


def test_cleanup_never_drops_a_timeline_while_it_is_being_rebuilt(env: FeedEnv):
    _author, (idle, _), _ = _author_and_readers(env)
    env.feed(idle)
    env.set_inactive(idle, days=env.settings.active_days + 1)
    env.redis.hset(timeline_meta_key(idle), "built_at", 0)  # built long ago
    # Its owner comes back and a rebuild starts: fan-out writes into it from now on, so
    # dropping it here would lose what fan-out adds before the rebuild commits.
    env.services.timelines.begin_timeline_rebuild(idle)
    assert env.services.cleanup.run().dropped == 0
    assert env.services.timelines.timeline_state(idle).state == "building"
    # A rebuild that never committed (its reader crashed) does not pin the timeline forever.
    next_day = TimelineCleanup(
        env.graph,
        env.services.timelines,
        active_days=env.settings.active_days,
        clock=lambda: time.time() + 86_400,
    )
    assert next_day.run().dropped == 1


# -- analytics roll-up --------------------------------------------------------------------------


def _stats_docs(env: FeedEnv) -> list[dict]:
    return sorted(
        ({k: v for k, v in d.items()} for d in env.db.engagement_stats.find()),
        key=lambda d: d["_id"],
    )


def test_rollup_counts_per_post_and_author_and_is_idempotent(env: FeedEnv):
    author, (a, b), (p1, _p2, p3) = _author_and_readers(env)
    env.services.feed.home_feed(a, None, 20)  # 3 impressions
    env.services.feed.home_feed(b, None, 2)  # 2 impressions: p3, p2
    env.services.likes.like(a, p3)
    env.services.likes.like(b, p3)
    env.services.likes.unlike(b, p3)

    report = env.services.rollup.run()
    assert report.hours >= 1 and report.days >= 1 and report.rows > 0
    stats = env.services.stats
    post = stats.post_stats(p3, "hour", 1)
    assert post.totals["impressions"] == 2
    assert (post.totals["likes"], post.totals["unlikes"]) == (2, 1)
    assert post.totals["engagement_rate"] == 1.0
    assert stats.post_stats(p1, "day", 1).totals["impressions"] == 1
    author_day = stats.author_stats(author, "day", 1)
    assert len(author_day.buckets) == 1
    totals = author_day.totals
    assert (totals["impressions"], totals["likes"], totals["follows"], totals["posts"]) == (
        5,
        2,
        2,
        3,
    )
    assert totals["engagement_rate"] == 0.4

    # Re-running, also over the whole history, gives the same rows.
    before = _stats_docs(env)
    env.services.rollup.run()
    env.services.rollup.run(since=datetime(2020, 1, 1, tzinfo=UTC))
    assert _stats_docs(env) == before


def test_rollup_picks_up_late_events_on_the_next_run(env: FeedEnv):
    author, (fan, _), (p1, _, _) = _author_and_readers(env)
    env.services.rollup.run()
    # An impression that happened three hours ago reaches the store only now.
    three_hours_ago = datetime.now(UTC) - timedelta(hours=3)
    late = {"kind": "impression", "actor_id": fan, "post_id": p1, "author_id": author}
    env.events.record_events([{**late, "at": three_hours_ago}])

    report = env.services.rollup.run()
    # The late event's hour, and the current one again (the watermark overlaps a little).
    assert report.hours == 2
    hourly = env.services.stats.post_stats(p1, "hour", 2)
    late_hour = bucket_start(three_hours_ago, "hour")
    assert [(r.start, r.counts["impressions"]) for r in hourly.buckets] == [(late_hour, 1)]
    days = env.services.stats.author_stats(author, "day", 2)
    assert days.totals["impressions"] == 1 and days.totals["posts"] == 3


def test_rollup_with_a_fixed_clock_records_the_watermark(env: FeedEnv):
    store = MongoEngagementStore(env.db)
    fixed = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    EngagementRollup(store, clock=lambda: fixed).run()
    assert store.watermark() == fixed


def test_stats_of_unknown_things_and_bad_windows(env: FeedEnv):
    author = env.user()
    post = env.post(author)
    stats = env.services.stats
    with pytest.raises(NotFound):
        stats.post_stats(post + 1)
    with pytest.raises(NotFound):
        stats.author_stats(author + 1)
    with pytest.raises(InvalidInput):
        stats.post_stats(post, "week")
    with pytest.raises(InvalidInput):
        stats.author_stats(author, "day", 0)
    env.services.posts.delete(author, post)
    with pytest.raises(NotFound):
        stats.post_stats(post)
