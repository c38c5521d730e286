"""What follows a committed write is durable: a post stored while the queue (and Redis) failed,
or whose client never retried, is still delivered; a delete whose retract could not be queued
is still retracted. The repair job finds them by the `pending` mark the write itself stored
(issue 9, defect 2)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from feed_env import FeedEnv

from feed_adapters.redis.client import make_redis
from newsfeed.errors import NotFound, QueueUnavailable
from newsfeed.ids import lowest_id_at

pytestmark = pytest.mark.integration


def _queue_down(jobs: object) -> None:
    raise QueueUnavailable()


def _author_and_fan(env: FeedEnv) -> tuple[int, int]:
    """An author and an active follower whose timeline exists."""
    author, fan = env.user(), env.user()
    env.services.social.follow(fan, author)
    env.feed(fan)
    return author, fan


def _later(env: FeedEnv, seconds: float = 600) -> int:
    """A repair run as if `seconds` from now: everything pending before that is old enough."""
    return lowest_id_at(int((time.time() + seconds) * 1000))


def test_a_post_whose_job_could_not_be_queued_is_acknowledged_and_delivered_by_repair(
    make_env: Callable[..., FeedEnv], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_env()
    author, fan = _author_and_fan(env)
    deliver = env.queue.send
    monkeypatch.setattr(env.queue, "send", _queue_down)
    post = env.services.posts.create(author, "no client retry")  # no Idempotency-Key either
    assert post.id not in env.timeline(fan)
    monkeypatch.setattr(env.queue, "send", deliver)
    assert env.services.repair.run(older_than_id=lowest_id_at(0)).delivered == 0  # too young
    report = env.services.repair.run(older_than_id=_later(env))
    assert report.delivered == 1
    assert env.timeline(fan) == [post.id] and env.feed(fan) == [post.id]
    assert env.services.repair.run(older_than_id=_later(env)).delivered == 0  # done once


def test_a_post_stored_while_redis_and_the_queue_failed_is_delivered_by_repair(
    make_env: Callable[..., FeedEnv], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_env()
    author, fan = _author_and_fan(env)
    broken = make_env(redis_override=make_redis(env.settings.redis_host, 1))
    monkeypatch.setattr(broken.queue, "send", _queue_down)
    post = broken.services.posts.create(author, "stored in MongoDB only")
    assert env.feed(fan) == []  # the author list does not know it yet
    assert env.services.repair.run(older_than_id=_later(env)).delivered == 1
    assert env.feed(fan) == [post.id] and env.feed(author) == [post.id]


def test_a_delete_whose_retract_could_not_be_queued_is_retracted_by_repair(
    make_env: Callable[..., FeedEnv], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_env()
    author, fan = _author_and_fan(env)
    pid = env.post(author)
    assert env.timeline(fan) == [pid]
    deliver = env.queue.send
    monkeypatch.setattr(env.queue, "send", _queue_down)
    env.services.posts.delete(author, pid)  # committed: 204, not 503
    with pytest.raises(NotFound):
        env.services.posts.get(pid)
    assert env.timeline(fan) == [pid]  # hidden by its tombstone, not yet retracted
    monkeypatch.setattr(env.queue, "send", deliver)
    assert env.services.repair.run(older_than_id=_later(env)).retracted == 1
    assert env.timeline(fan) == []


def test_a_crossing_whose_backfill_could_not_be_queued_is_backfilled_by_repair(
    make_env: Callable[..., FeedEnv], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_env(celebrity_threshold=3, recording=True)
    author, f1, f2, f3 = env.user(), env.user(), env.user(), env.user()
    for f in (f1, f2, f3):
        env.services.social.follow(f, author)
    older = env.post(author)
    env.run_jobs()
    for f in (f1, f2):
        env.feed(f)
    deliver = env.queue.send
    monkeypatch.setattr(env.queue, "send", _queue_down)
    env.services.social.unfollow(f3, author)  # committed: no 503 for the lost backfill job
    monkeypatch.setattr(env.queue, "send", deliver)
    assert env.mode(author) == "push_pending"
    assert env.feed(f1) == [older]  # still pulled meanwhile: nothing missing
    assert env.services.repair.run(min_age_seconds=3600).backfills == 0  # too young
    assert env.services.repair.run(min_age_seconds=0).backfills == 1
    env.run_jobs()
    assert env.mode(author) == "push"
    for f in (f1, f2):
        assert env.timeline(f) == [older] and env.feed(f) == [older]


def test_a_post_re_queued_by_repair_is_not_re_queued_again_while_its_job_waits(
    make_env: Callable[..., FeedEnv], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_env(recording=True)
    author = env.user()
    monkeypatch.setattr(env.queue, "send", _queue_down)
    env.services.posts.create(author, "lost job")
    monkeypatch.undo()
    assert env.services.repair.run(older_than_id=_later(env), min_age_seconds=60).delivered == 1
    # The fan-out backlog is long: the re-queued job has not run yet. No second copy.
    assert env.services.repair.run(older_than_id=_later(env), min_age_seconds=60).delivered == 0
    assert [j["kind"] for j in env.run_jobs()] == ["fanout"]
    assert env.services.repair.run(older_than_id=_later(env), min_age_seconds=0).delivered == 0
