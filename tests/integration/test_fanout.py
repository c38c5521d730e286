"""Fan-out: push/pull crossings, chunking, inactive skip and redelivery."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from feed_env import FeedEnv

from newsfeed.errors import InvalidInput

pytestmark = pytest.mark.integration


def test_crossing_the_threshold_both_ways_loses_nothing(make_env: Callable[..., FeedEnv]) -> None:
    env = make_env(celebrity_threshold=3)
    users = env.services.social
    author = env.user()
    f1, f2, f3 = env.user(), env.user(), env.user()
    users.follow(f1, author)
    users.follow(f2, author)
    p1 = env.post(author)
    assert env.mode(author) == "push" and env.timeline(f1) == [p1]
    users.follow(f3, author)
    assert env.mode(author) == "pull"
    p2 = env.post(author)
    assert p2 not in env.timeline(f1)  # not pushed any more: pulled at read time
    for reader in (f1, f2, f3):
        assert env.feed(reader, limit=1) == [p2, p1]
    users.unfollow(f3, author)  # back below: push_pending, backfill, push
    assert env.mode(author) == "push"
    assert env.timeline(f1) == [p2, p1] and env.timeline(f2) == [p2, p1]
    p3 = env.post(author)
    for reader in (f1, f2):
        assert env.feed(reader, limit=2) == [p3, p2, p1]
    assert env.feed(f3) == []


def test_push_pending_is_pushed_and_pulled_until_backfill_finishes(
    make_env: Callable[..., FeedEnv],
) -> None:
    env = make_env(celebrity_threshold=3, recording=True)
    users = env.services.social
    author, f1, f2, f3 = env.user(), env.user(), env.user(), env.user()
    for f in (f1, f2, f3):
        users.follow(f, author)
    p1 = env.post(author)  # pull: its job only clears the post's pending mark
    assert [j["kind"] for j in env.run_jobs()] == ["fanout"]
    assert env.timeline(f1) == []  # nothing pushed: readers pull it
    users.unfollow(f3, author)
    assert env.mode(author) == "push_pending"
    assert [j["kind"] for j in env.queue.jobs] == ["backfill_author"]
    p2 = env.post(author)  # pending: pushed too
    env.queue.jobs.reverse()  # SQS does not keep order: run the post's fan-out first
    for reader in (f1, f2):
        assert env.feed(reader) == [p2, p1]  # pulled while the backfill waits
    env.run_jobs()
    assert env.mode(author) == "push"
    for reader in (f1, f2):
        assert env.timeline(reader) == [p2, p1]
        assert env.feed(reader) == [p2, p1]


def test_chunked_fanout_reaches_every_active_follower(make_env: Callable[..., FeedEnv]) -> None:
    env = make_env(fanout_chunk_size=2, fanout_page_size=3)
    users = env.services.social
    author = env.user()
    followers = [env.user() for _ in range(7)]
    for f in followers:
        users.follow(f, author)
    env.set_inactive(followers[3], days=30)
    env.queue.handled.clear()
    pid = env.post(author)
    chunks = [j for j in env.queue.handled if "upto_id" in j]
    assert len(chunks) == 4 and all(j["kind"] == "fanout" for j in chunks)
    covered = sorted(chunks, key=lambda j: j["after_id"])
    assert covered[0]["after_id"] == 0 and covered[-1]["upto_id"] == max(followers)
    for f in followers:
        assert (pid in env.timeline(f)) == (f != followers[3])
    assert env.feed(followers[3]) == [pid]  # the inactive one rebuilds on read
    env.queue.handled.clear()
    env.services.posts.delete(author, pid)
    assert len([j for j in env.queue.handled if j["kind"] == "retract" and "upto_id" in j]) == 4
    for f in followers:
        assert env.timeline(f) == []
        assert env.feed(f) == []


def test_chunked_backfill_switches_to_push_only_when_all_chunks_ran(
    make_env: Callable[..., FeedEnv],
) -> None:
    env = make_env(celebrity_threshold=6, fanout_chunk_size=2, recording=True)
    users = env.services.social
    author = env.user()
    followers = [env.user() for _ in range(6)]
    for f in followers:
        users.follow(f, author)
    assert env.mode(author) == "pull"
    posts = [env.post(author) for _ in range(3)]
    env.run_jobs()  # pull mode: the posts' jobs push nothing
    for f in followers:
        env.feed(f)  # timelines exist
    users.unfollow(followers[0], author)
    head = env.queue.drain()
    env.services.fanout.handle_message(head[0])
    chunks = env.queue.drain()
    assert len(chunks) == 3  # 5 followers, 2 a chunk
    for job in chunks[:-1]:
        env.services.fanout.handle_message(job)
        env.services.fanout.handle_message(job)  # redelivered: still not all done
        assert env.mode(author) == "push_pending"
    env.services.fanout.handle_message(chunks[-1])
    assert env.mode(author) == "push"
    for f in followers[1:]:
        assert env.timeline(f) == posts[::-1]
        assert env.feed(f) == posts[::-1]


def test_redelivered_jobs_are_idempotent(make_env: Callable[..., FeedEnv]) -> None:
    env = make_env(recording=True, fanout_chunk_size=2, timeline_max_len=5)
    users = env.services.social
    author = env.user()
    followers = [env.user() for _ in range(5)]
    for f in followers:
        users.follow(f, author)
    made = [env.post(author) for _ in range(7)]
    env.run_jobs(times=3)
    for f in followers:
        assert env.timeline(f) == made[::-1][:5]
        assert env.feed(f, limit=3) == made[::-1]
    env.services.posts.delete(author, made[-1])
    env.run_jobs(times=2)
    for f in followers:
        assert made[-1] not in env.timeline(f)
        assert env.feed(f, limit=3) == made[:-1][::-1]


def test_fanout_of_a_deleted_post_is_skipped(make_env: Callable[..., FeedEnv]) -> None:
    env = make_env(recording=True)
    author, reader = env.user(), env.user()
    env.services.social.follow(reader, author)
    env.feed(reader)
    pid = env.post(author)
    env.services.posts.delete(author, pid)
    env.run_jobs()  # fan-out after delete: retract and the fan-out head both run
    assert env.timeline(reader) == [] and env.feed(reader) == []


def test_push_chunk_redelivered_after_the_delete_pushes_nothing(
    make_env: Callable[..., FeedEnv],
) -> None:
    env = make_env(recording=True, fanout_chunk_size=2)
    author = env.user()
    followers = [env.user() for _ in range(4)]
    for f in followers:
        env.services.social.follow(f, author)
    env.queue.drain()
    pid = env.post(author)
    for head in env.queue.drain():
        env.services.fanout.handle_message(head)
    chunks = env.queue.drain()
    assert len(chunks) == 2 and all(j["kind"] == "fanout" and "upto_id" in j for j in chunks)
    for job in chunks:
        env.services.fanout.handle_message(job)
    assert all(env.timeline(f) == [pid] for f in followers)
    env.services.posts.delete(author, pid)
    env.run_jobs()  # the retract job and its chunks
    assert all(env.timeline(f) == [] for f in followers)
    for job in chunks:  # SQS redelivers the push chunks late
        env.services.fanout.handle_message(job)
    for f in followers:
        assert env.timeline(f) == [], "a deleted post was written back into a timeline"


def test_malformed_jobs_are_refused(env: FeedEnv) -> None:
    for job in (
        {},
        {"kind": "nope"},
        {"kind": "fanout", "author_id": 1},
        "x",
        {"kind": "fanout", "author_id": "1", "post_id": 2},
        {"kind": "backfill_author", "author_id": 1},
    ):
        with pytest.raises(InvalidInput):
            env.services.fanout.handle_message(job)  # type: ignore[arg-type]


def test_post_created_while_redis_is_down_is_repaired_by_its_fanout_job(
    make_env: Callable[..., FeedEnv],
) -> None:

    from feed_adapters.redis.client import make_redis

    env = make_env(celebrity_threshold=1, recording=True)  # everyone with a follower is pull
    author, reader = env.user(), env.user()
    env.services.social.follow(reader, author)
    assert env.mode(author) == "pull"
    before = env.post(author)
    env.run_jobs()
    assert env.feed(reader) == [before]
    dead = make_redis(env.settings.redis_host, 1)
    broken = make_env(celebrity_threshold=1, recording=True, redis_override=dead)
    during = broken.services.posts.create(author, "written to MongoDB only").id
    # A pull author normally queues nothing; after a Redis failure it queues the repair.
    jobs = broken.queue.drain()
    assert [j["kind"] for j in jobs] == ["fanout"]
    assert env.feed(reader) == [before]  # `ap:` is missing the post for now
    for job in jobs:
        env.services.fanout.handle_message(job)
    assert env.feed(reader) == [during, before]
