"""A deleted post never comes back: not through a cache fill that races the delete, not through
a like on a stale cache entry, not when the delete's cache step fails (issue 9, defect 1)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from feed_env import FeedEnv

from feed_adapters.redis.client import make_redis
from newsfeed.errors import NotFound
from newsfeed.ids import to_member
from newsfeed.model import Post

pytestmark = pytest.mark.integration


def test_a_cache_fill_racing_a_delete_never_overwrites_the_tombstone(env: FeedEnv) -> None:
    author = env.user()
    pid = env.post(author)
    env.redis.delete(f"post:{{{pid}}}")  # the cache entry expired
    live = env.posts.get_post(pid)  # a feed read loads the body from MongoDB...
    assert live is not None and not live.is_deleted
    env.services.posts.delete(author, pid)  # ...the delete lands and writes its tombstone...
    env.services.timelines.cache_posts([live])  # ...then the read fills the cache with it
    with pytest.raises(NotFound):
        env.services.posts.get(pid)
    assert env.feed(author) == []


def test_a_like_on_a_deleted_post_is_404_even_through_a_stale_cache(env: FeedEnv) -> None:
    author, fan = env.user(), env.user()
    pid = env.post(author)
    # The delete reached MongoDB but not the cache (its tombstone write failed).
    cached = env.services.posts.get(pid)
    env.posts.mark_deleted(pid, cached.created_at)
    assert isinstance(env.services.timelines.cached_posts([pid])[pid], Post)
    with pytest.raises(NotFound):
        env.services.likes.like(fan, pid)
    assert env.posts.get_post(pid).like_count == 0
    assert env.db.likes.count_documents({"post_id": to_member(pid)}) == 0


def test_a_delete_whose_cache_step_fails_is_finished_by_its_retract_job(
    make_env: Callable[..., FeedEnv],
) -> None:
    env = make_env(recording=True)
    author, reader = env.user(), env.user()
    env.services.social.follow(reader, author)
    env.feed(reader)
    pid = env.post(author)
    env.run_jobs()
    assert env.feed(reader) == [pid]
    broken = make_env(recording=True, redis_override=make_redis(env.settings.redis_host, 1))
    # Redis is unavailable to this delete: the truth (MongoDB) is committed and the retract job
    # is queued, so the delete succeeds; the job redoes the cache and timeline steps.
    broken.services.posts.delete(author, pid)
    assert env.posts.get_post(pid).is_deleted
    jobs = broken.queue.drain()
    assert [j["kind"] for j in jobs] == ["retract"]
    for job in jobs:
        env.services.fanout.handle_message(job)
    with pytest.raises(NotFound):
        env.services.posts.get(pid)
    assert env.timeline(reader) == [] and env.feed(reader) == []
    assert pid not in [int(m) for m in env.redis.zrange(f"ap:{{{author}}}", 0, -1)]
