"""Home feed behaviour through the real services and stores (fan-out runs inline)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from feed_env import FeedEnv

from feed_adapters.redis.client import make_redis
from feed_adapters.redis.keys import author_posts_key, post_cache_key, timeline_meta_key
from newsfeed.errors import Forbidden, InvalidInput, NotFound
from newsfeed.ids import to_member

pytestmark = pytest.mark.integration


def test_own_posts_and_follow_backfill(env: FeedEnv) -> None:
    reader, author = env.user(), env.user()
    older = [env.post(author) for _ in range(3)]
    mine = env.post(reader)
    assert env.feed(reader) == [mine]
    env.services.social.follow(reader, author)
    # The backfill wrote the author's posts into the (already valid) timeline.
    assert env.timeline(reader) == older[::-1]
    assert env.feed(reader, limit=2) == [mine, *older[::-1]]
    newer = env.post(author)
    assert env.timeline(reader)[0] == newer
    assert env.feed(reader)[0] == newer


def test_unfollow_removes_posts(env: FeedEnv) -> None:
    reader, author, other = env.user(), env.user(), env.user()
    env.services.social.follow(reader, author)
    env.services.social.follow(reader, other)
    a_posts = [env.post(author) for _ in range(3)]
    o_post = env.post(other)
    env.feed(reader)
    env.services.social.unfollow(reader, author)
    assert env.timeline(reader) == [o_post]
    assert env.feed(reader) == [o_post]
    env.services.social.follow(reader, author)  # and back again
    assert env.feed(reader) == [o_post, *a_posts[::-1]]


def test_block_purges_both_timelines(env: FeedEnv) -> None:
    users = env.services.social
    a, b = env.user(), env.user()
    users.follow(a, b)
    users.follow(b, a)
    pa, pb = env.post(a), env.post(b)
    assert env.feed(a) == [pb, pa] and env.feed(b) == [pb, pa]
    users.block(a, b)
    assert env.timeline(a) == [] and env.timeline(b) == []
    assert env.feed(a) == [pa] and env.feed(b) == [pb]
    with pytest.raises(Forbidden):
        users.follow(b, a)
    with pytest.raises(NotFound):  # as GET of the post: across a block it does not exist
        env.services.likes.like(b, pa)
    users.unblock(a, b)
    assert env.feed(a) == [pa]  # unblocking does not restore the follows


def test_mute_hides_until_unmuted(env: FeedEnv) -> None:
    users = env.services.social
    reader, loud, quiet = env.user(), env.user(), env.user()
    users.follow(reader, loud)
    users.follow(reader, quiet)
    loud_posts = [env.post(loud) for _ in range(4)]
    q = env.post(quiet)
    users.mute(reader, loud)
    assert env.feed(reader, limit=1) == [q]
    users.unmute(reader, loud)
    assert env.feed(reader) == [q, *loud_posts[::-1]]


def test_delete_disappears_everywhere(make_env: Callable[..., FeedEnv]) -> None:
    env = make_env(celebrity_threshold=2)
    users, posts = env.services.social, env.services.posts
    author, f1, f2 = env.user(), env.user(), env.user()
    users.follow(f1, author)
    keep = env.post(author)
    doomed = env.post(author)
    users.follow(f2, author)  # author is now pull mode: f2 pulls
    assert env.mode(author) == "pull"
    for reader in (author, f1, f2):
        assert env.feed(reader) == [doomed, keep]
    assert doomed in env.timeline(f1)
    with pytest.raises(Forbidden):
        posts.delete(f1, doomed)
    with pytest.raises(NotFound):
        posts.delete(author, 1234)
    posts.delete(author, doomed)
    posts.delete(author, doomed)  # idempotent
    for reader in (author, f1, f2):
        assert env.feed(reader) == [keep]
    # Pushed to f1 before the author became a celebrity: a pull-mode author's delete plans no
    # retract over every follower (millions), so the id stays in f1's timeline, hidden by its
    # tombstone and, once that expires, by the post store's deletion mark.
    assert doomed in env.timeline(f1)
    env.redis.delete(f"post:{{{doomed}}}")
    assert env.feed(f1) == [keep]
    members = env.redis.zrange(author_posts_key(author), 0, -1)
    assert [int(m) for m in members] == [keep]
    cached = env.redis.get(post_cache_key(doomed))
    assert cached and '"deleted_at":null' not in cached  # tombstone
    with pytest.raises(NotFound):
        posts.get(doomed)
    assert [p.id for p in posts.author_posts(author, None, 10).items] == [keep]
    env.redis.flushdb()  # and from the source of truth alone
    assert env.feed(f1) == [keep] and env.feed(f2) == [keep]


def test_deleting_someone_elses_deleted_post_is_not_found(env: FeedEnv) -> None:
    # GET says 404 for a deleted post; DELETE must not reveal it existed with a 403.
    posts = env.services.posts
    author, other = env.user(), env.user()
    pid = env.post(author)
    posts.delete(author, pid)
    with pytest.raises(NotFound):
        posts.get(pid)
    with pytest.raises(NotFound):
        posts.delete(other, pid)
    posts.delete(author, pid)  # the author's retry stays idempotent


def test_timeline_cap_and_lazy_loading_past_it(make_env: Callable[..., FeedEnv]) -> None:
    env = make_env(timeline_max_len=10)
    users = env.services.social
    reader, a, b = env.user(), env.user(), env.user()
    users.follow(reader, a)
    users.follow(reader, b)
    made = []
    for i in range(27):
        made.append(env.post(a if i % 3 else b))
    timeline = env.timeline(reader)
    assert timeline == made[::-1][:10]  # capped, newest kept
    horizon = env.redis.hget(timeline_meta_key(reader), "h")
    assert horizon is not None and int(horizon) == timeline[-1]
    # Scrolling goes on past the cap (and past each author list's cap) down to the first post.
    for limit in (1, 4, 7, 100):
        assert env.feed(reader, limit=limit) == made[::-1]


def test_inactive_follower_skipped_then_rebuilt(env: FeedEnv) -> None:
    users = env.services.social
    reader, author = env.user(), env.user()
    users.follow(reader, author)
    first = env.post(author)
    assert env.feed(reader) == [first]
    env.set_inactive(reader, days=env.settings.active_days + 1)
    second = env.post(author)
    assert env.timeline(reader) == [first]  # fan-out skipped the inactive reader
    assert env.feed(reader) == [second, first]  # rebuilt on read
    assert env.timeline(reader) == [second, first]
    third = env.post(author)  # active again: pushed
    assert env.timeline(reader)[0] == third


def test_missing_timeline_and_caches_are_rebuilt(env: FeedEnv) -> None:
    users = env.services.social
    reader = env.user()
    authors = [env.user() for _ in range(3)]
    for a in authors:
        users.follow(reader, a)
    made = [env.post(authors[i % 3]) for i in range(40)]
    before = env.feed(reader, limit=7)
    assert before == made[::-1]
    env.redis.flushdb()
    assert env.feed(reader, limit=25) == before  # > 16 misses: the $in hydration path too
    assert env.timeline(reader)  # rebuilt
    assert env.redis.exists(post_cache_key(made[-1]))


def test_stable_paging_while_new_posts_arrive(env: FeedEnv) -> None:
    reader, author = env.user(), env.user()
    env.services.social.follow(reader, author)
    old = [env.post(author) for _ in range(9)]
    feed = env.services.feed
    page = feed.home_feed(reader, None, 4)
    seen = [p.id for p in page.items]
    new = []
    while page.next_cursor:
        new.append(env.post(author))  # new posts land above the cursor, never inside the walk
        page = feed.home_feed(reader, page.next_cursor, 4)
        seen += [p.id for p in page.items]
    assert seen == old[::-1]
    assert [p.id for p in feed.home_feed(reader, None, 100).items] == (old + new)[::-1]


def test_likes_are_idempotent_with_counts(env: FeedEnv) -> None:
    posts = env.services.posts
    author, fan, other = env.user(), env.user(), env.user()
    pid = env.post(author)
    env.services.likes.like(fan, pid)
    env.services.likes.like(fan, pid)
    env.services.likes.like(other, pid)
    assert posts.get(pid).like_count == 2
    env.services.social.follow(fan, author)
    assert env.services.feed.home_feed(fan, None, 5).items[0].like_count == 2
    env.services.likes.unlike(fan, pid)
    env.services.likes.unlike(fan, pid)
    assert posts.get(pid).like_count == 1
    assert env.posts.get_post(pid).like_count == 1  # MongoDB agrees with the cache
    assert env.db.likes.count_documents({"post_id": to_member(pid)}) == 1
    with pytest.raises(NotFound):
        env.services.likes.like(fan, 777)
    with pytest.raises(NotFound):
        env.services.likes.like(999, pid)
    posts.delete(author, pid)
    with pytest.raises(NotFound):
        env.services.likes.like(other, pid)


def test_input_validation(env: FeedEnv) -> None:
    posts, feed = env.services.posts, env.services.feed
    author = env.user()
    for text in ("", "   ", "x" * 2001, None):
        with pytest.raises(InvalidInput):
            posts.create(author, text)  # type: ignore[arg-type]
    assert posts.create(author, "x" * 2000).text == "x" * 2000
    with pytest.raises(NotFound):
        posts.create(555, "hello")
    for media_ids in (["x"], [1] * 5, [1, 1], [0], "nope", [True]):
        with pytest.raises(InvalidInput):
            posts.create(author, "hi", media_ids)  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="media 1000000000000000000 not found"):
        posts.create(author, "pic", [10**18])
    assert posts.author_posts(author, None, 10).items[0].text == "x" * 2000  # no other post
    for limit in (0, 101, -5):
        with pytest.raises(InvalidInput):
            feed.home_feed(author, None, limit)
    with pytest.raises(InvalidInput):
        feed.home_feed(author, "not-a-cursor", 10)
    with pytest.raises(NotFound):
        feed.home_feed(8888, None, 10)
    with pytest.raises(NotFound):
        posts.get(8888)
    with pytest.raises(NotFound):
        posts.author_posts(8888, None, 10)


def test_author_posts_pagination(env: FeedEnv) -> None:
    author = env.user()
    made = [env.post(author) for _ in range(7)]
    seen, cursor = [], None
    while True:
        page = env.services.posts.author_posts(author, cursor, 3)
        seen += [p.id for p in page.items]
        cursor = page.next_cursor
        if not cursor:
            break
    assert seen == made[::-1]


def test_redis_down_degrades_to_partial(make_env: Callable[..., FeedEnv], env: FeedEnv) -> None:
    reader, author = env.user(), env.user()
    env.services.social.follow(reader, author)
    made = [env.post(author) for _ in range(5)]
    dead = make_redis(env.settings.redis_host, 1)  # nothing listens there
    broken = make_env(redis_override=dead, celebrity_threshold=1000)
    started = time.monotonic()
    page = broken.services.feed.home_feed(reader, None, 3)
    assert time.monotonic() - started < 2.0
    assert page.partial
    assert [p.id for p in page.items] == made[::-1][:3]
    rest = broken.services.feed.home_feed(reader, page.next_cursor, 3)
    assert [p.id for p in rest.items] == made[::-1][3:] and rest.next_cursor is None
    assert broken.services.posts.get(made[0]).id == made[0]  # reads fall back to MongoDB
