"""Author lists of silent authors expire (issue 12, item 4): the cleanup job drops `ap:`/`apm:`
of authors who have not posted for AUTHOR_LIST_SILENT_DAYS (SCAN over every master), each in a
Lua script that checks the list's newest entry, so memory follows active authors; the next
read rebuilds a dropped list from MongoDB. The authors are pulled (celebrity threshold 1), so
every feed read of their follower reads their lists."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from feed_env import FeedEnv
from redis import RedisCluster

from feed_adapters.redis.keys import author_meta_key, author_posts_key
from newsfeed.ids import IdGenerator
from newsfeed.jobs.cleanup import TimelineCleanup
from newsfeed.model import Post

pytestmark = pytest.mark.integration

DAY_S = 86_400


@pytest.fixture
def env(make_env: Callable[..., FeedEnv]) -> FeedEnv:
    return make_env(celebrity_threshold=1, timeline_max_len=50)


def _old_post(env: FeedEnv, author: int, days_ago: float) -> int:
    """A post made `days_ago` (its id says so), stored and delivered then."""
    at_ms = int((time.time() - days_ago * DAY_S) * 1000)
    post_id = IdGenerator(worker_id=1, clock_ms=lambda: at_ms).next_id()
    at = datetime.fromtimestamp(at_ms / 1000, UTC)
    env.posts.insert_post(Post(post_id, author, f"old post by {author}", (), at))
    env.posts.clear_pending(post_id, "deliver")
    return post_id


def _built_long_ago(env: FeedEnv, *authors: int) -> None:
    """As if each list had been (re)built before its author fell silent."""
    for author in authors:
        env.redis.hset(author_meta_key(author), "built_at", 0)


def _has_list(env: FeedEnv, author: int) -> bool:
    return bool(env.redis.exists(author_meta_key(author)))


def _list_ids(env: FeedEnv, author: int) -> list[int]:
    return env.services.timelines.author_lists([author], None, 50)[author].ids


def _silent_author(env: FeedEnv, reader: int) -> tuple[int, list[int]]:
    author = env.user()
    env.services.social.follow(reader, author)
    silent = env.settings.author_list_silent_days
    return author, [_old_post(env, author, silent + 3), _old_post(env, author, silent + 1)]


def _cleanup(env: FeedEnv, clock: Callable[[], float] = time.time) -> TimelineCleanup:
    return TimelineCleanup(
        env.graph,
        env.services.timelines,
        active_days=env.settings.active_days,
        author_list_silent_days=env.settings.author_list_silent_days,
        clock=clock,
    )


def _on_every_master(
    env: FeedEnv, make: Callable[[], tuple[int, list[int]]]
) -> list[tuple[int, list[int]]]:
    """Authors made by `make`: a few, and on a cluster until their lists lie on every master
    (the job must SCAN each)."""
    made = [make() for _ in range(4)]
    if isinstance(env.redis, RedisCluster):
        masters = {n.name for n in env.redis.get_primaries()}
        while {env.redis.get_node_from_key(author_meta_key(a)).name for a, _ in made} != masters:
            assert len(made) < 64, "authors' lists never covered every master"
            made.append(make())
    return made


def test_lists_of_silent_authors_go_active_ones_stay_and_the_next_read_rebuilds_them(
    env: FeedEnv,
):
    reader = env.user()
    silent = _on_every_master(env, lambda: _silent_author(env, reader))
    active, active_old = _silent_author(env, reader)
    fresh = env.post(active)  # the active author posts again after a silence
    everything = [fresh, *active_old, *(p for _, posts in silent for p in posts)]
    expected = sorted(everything, reverse=True)
    assert env.feed(reader, limit=50) == expected  # builds every list
    authors = [a for a, _ in silent]
    _built_long_ago(env, *authors, active)

    report = env.services.cleanup.run()
    assert report.author_lists_dropped == len(silent)
    assert report.to_dict()["author_lists_dropped"] == len(silent)
    assert report.author_lists_seen >= len(silent) + 2  # the active author's, the reader's
    for author in authors:
        assert not env.redis.exists(author_posts_key(author), author_meta_key(author))
    assert _list_ids(env, active)[0] == fresh
    # The reader's own list is empty (nothing posted) but was built just now: it stays.
    assert _has_list(env, reader)
    assert env.services.cleanup.run().author_lists_dropped == 0

    # A post to a dropped list leaves it missing (MongoDB has the post); the next read
    # rebuilds every missing list from MongoDB, that post included.
    comeback = env.post(authors[0])
    assert not _has_list(env, authors[0])
    assert env.feed(reader, limit=50) == [comeback, *expected]
    for author, posts in silent:
        want = [comeback, *posts[::-1]] if author == authors[0] else posts[::-1]
        assert _list_ids(env, author) == want


def test_a_post_arriving_between_the_scan_and_the_drop_keeps_the_list(
    env: FeedEnv, monkeypatch: pytest.MonkeyPatch
):
    reader = env.user()
    author, posts = _silent_author(env, reader)
    env.feed(reader)
    _built_long_ago(env, author)
    timelines = env.services.timelines
    scan = timelines.author_list_owners
    arrived: list[int] = []

    def scan_then_post(batch: int) -> Iterator[list[int]]:
        for owners in scan(batch):
            arrived.append(env.post(author))  # after the job saw the list, before its script
            yield owners

    monkeypatch.setattr(timelines, "author_list_owners", scan_then_post)
    assert env.services.cleanup.run().author_lists_dropped == 0
    assert _list_ids(env, author) == [arrived[0], *posts[::-1]]
    assert env.feed(reader) == [arrived[0], *posts[::-1]]


def test_a_list_being_rebuilt_is_not_dropped(env: FeedEnv):
    reader = env.user()
    author, posts = _silent_author(env, reader)
    env.feed(reader)
    _built_long_ago(env, author)
    # A reader's rebuild is under way: it has marked the list and read MongoDB. Dropping the
    # list now would make the post below skip it (a missing list stays missing), and the
    # rebuild's commit would then make a list without that post look complete.
    timelines = env.services.timelines
    timelines.begin_author_rebuild(author)
    read = env.posts.author_post_ids(author, None, 50)
    assert env.services.cleanup.run().author_lists_dropped == 0
    new = env.post(author)
    timelines.commit_author_posts(author, read, 0)
    assert _list_ids(env, author) == [new, *posts[::-1]]
    assert env.feed(reader) == [new, *posts[::-1]]

    # A rebuild that never committed (its reader crashed) does not pin a list forever.
    silent_too, _ = _silent_author(env, reader)
    timelines.begin_author_rebuild(silent_too)
    assert _cleanup(env).run().author_lists_dropped == 0
    assert _cleanup(env, clock=lambda: time.time() + DAY_S).run().author_lists_dropped == 1
    assert not _has_list(env, silent_too)
