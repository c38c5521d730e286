"""The push/pull state machine (issue 9, defect 8): a backfill finishes only its own crossing,
an author hovering at the threshold does not re-backfill at every crossing, and a pull-mode
author's delete does not plan retract chunks over every follower."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from feed_env import FeedEnv

pytestmark = pytest.mark.integration


def test_a_stale_backfill_cannot_finish_a_newer_crossing(
    make_env: Callable[..., FeedEnv],
) -> None:
    env = make_env(celebrity_threshold=3, fanout_chunk_size=1, recording=True)
    social = env.services.social
    author, f1, f2, f3 = env.user(), env.user(), env.user(), env.user()
    for f in (f1, f2, f3):
        social.follow(f, author)
    older = env.post(author)
    env.run_jobs()
    for f in (f1, f2, f3):
        env.feed(f)
    social.unfollow(f3, author)  # 2 < 3: push_pending, backfill #1
    first = env.queue.drain()
    assert [j["kind"] for j in first] == ["backfill_author"]
    env.services.fanout.handle_message(first[0])  # plans its chunks (f1, f2) and queues them
    stale_chunks = env.queue.drain()
    social.follow(f3, author)  # back to pull
    late = env.user()  # follows while the author is pulled: no merge on follow
    social.follow(late, author)
    env.feed(late)
    social.unfollow(f3, author)
    social.unfollow(f1, author)  # 2 < 3 again: push_pending, backfill #2
    second = env.queue.drain()
    assert [j["kind"] for j in second] == ["backfill_author"]
    for job in stale_chunks + second:  # the first crossing's chunks finish first
        env.services.fanout.handle_message(job)
    env.run_jobs()
    assert env.mode(author) == "push"
    assert env.feed(late) == [older]  # the second backfill reached the late follower
    assert older in env.timeline(late)


def test_an_author_hovering_at_the_threshold_is_not_backfilled_at_every_crossing(
    make_env: Callable[..., FeedEnv],
) -> None:
    env = make_env(celebrity_threshold=10, recording=True)  # back to push below 9
    social = env.services.social
    author = env.user()
    followers = [env.user() for _ in range(10)]
    for f in followers:
        social.follow(f, author)
    assert env.mode(author) == "pull"
    social.unfollow(followers[0], author)  # 9: still pull, no backfill
    assert env.mode(author) == "pull" and env.queue.drain() == []
    social.follow(followers[0], author)
    social.unfollow(followers[0], author)
    social.unfollow(followers[1], author)  # 8 < 9: push_pending
    assert env.mode(author) == "push_pending"
    assert [j["kind"] for j in env.queue.drain()] == ["backfill_author"]


def test_a_pull_mode_authors_delete_plans_no_retract_chunks(
    make_env: Callable[..., FeedEnv],
) -> None:
    env = make_env(celebrity_threshold=3, fanout_chunk_size=1, recording=True)
    social = env.services.social
    author = env.user()
    followers = [env.user() for _ in range(4)]
    for f in followers:
        social.follow(f, author)
        env.feed(f)
    assert env.mode(author) == "pull"
    pid = env.post(author)
    env.run_jobs()
    env.services.posts.delete(author, pid)
    ran = env.run_jobs()
    assert [j["kind"] for j in ran] == ["retract"]  # the head only: nothing was pushed
    for f in followers:
        assert env.feed(f) == []


def test_two_plans_of_one_backfill_never_add_up_to_a_finished_one(
    make_env: Callable[..., FeedEnv],
) -> None:
    env = make_env(celebrity_threshold=5, fanout_chunk_size=1, recording=True)
    social = env.services.social
    author = env.user()
    fans = [env.user() for _ in range(5)]
    for f in fans:
        social.follow(f, author)
    older = env.post(author)
    env.run_jobs()
    for f in fans:
        env.feed(f)
    social.unfollow(fans[4], author)  # 4 < 5: push_pending
    (head,) = env.queue.drain()
    env.services.fanout.handle_message(head)
    plan_a = env.queue.drain()  # four chunks: fans 0..3
    social.unfollow(fans[0], author)  # still push_pending
    env.services.fanout.handle_message(head)  # the head again (redelivered, or repair)
    plan_b = env.queue.drain()  # three chunks: fans 1..3, numbered 0..2
    assert (len(plan_a), len(plan_b)) == (4, 3)
    for job in (plan_a[0], plan_a[1], plan_b[2]):  # chunk numbers 0, 1, 2 of mixed plans
        env.services.fanout.handle_message(job)
    assert env.mode(author) == "push_pending"  # no plan has run all its chunks
    for job in plan_a[2:] + plan_b[:2]:
        env.services.fanout.handle_message(job)
    assert env.mode(author) == "push"
    for f in fans[1:4]:
        assert older in env.timeline(f)
