from __future__ import annotations

import pytest
from feed_env import FeedEnv

from feed_wiring.root import Services, build_services
from newsfeed.errors import Conflict, DuplicateId, Forbidden, InvalidInput, NotFound
from newsfeed.ids import EPOCH_MS, IdGenerator

pytestmark = pytest.mark.integration


def test_create_profile_and_lookups(env: FeedEnv) -> None:
    profiles = env.services.profiles
    alice = profiles.create_profile("sub|a", "Alice_1", "  Alice  ")
    assert alice.display_name == "Alice" and alice.fanout_mode == "push"
    assert profiles.get(alice.id) == profiles.get_by_subject("sub|a")
    with pytest.raises(Conflict, match="taken"):
        profiles.create_profile("sub|b", "alice_1", "Other")  # case-insensitive handle
    with pytest.raises(Conflict, match="already has a profile"):
        profiles.create_profile("sub|a", "alice_2", "Again")
    with pytest.raises(NotFound):
        profiles.get_by_subject("sub|nobody")
    with pytest.raises(NotFound):
        profiles.get(12345)
    for handle in ("ab", "has space", "x" * 31, "ünï"):
        with pytest.raises(InvalidInput):
            profiles.create_profile("sub|c", handle, "C")
    with pytest.raises(InvalidInput):
        profiles.create_profile("sub|c", "valid_handle", "   ")


@pytest.mark.parametrize(
    ("handle", "display_name"),
    [
        ("trailing_nl\n", "Nl"),  # `$` matches before a final newline
        ("nul_name", "Ada\x00Lovelace"),  # PostgreSQL refuses NUL in text
        ("ctl_name", "Ada\x1bLovelace"),
    ],
)
def test_profile_the_store_would_refuse_is_invalid_input(
    env: FeedEnv, handle: str, display_name: str
) -> None:
    with pytest.raises(InvalidInput):
        env.services.profiles.create_profile("sub|odd", handle, display_name)
    assert env.sql("SELECT count(*) FROM users") == [(0,)]


def test_a_user_id_collision_is_retried_with_a_new_id(env: FeedEnv) -> None:
    # Two processes that drew the same random snowflake worker make the same ids within the
    # same millisecond: the second profile must get another id, not a 409.
    def process() -> Services:
        ids = IdGenerator(worker_id=5, clock_ms=lambda: EPOCH_MS + 1_000)
        return build_services(
            env.settings,
            graph=env.graph,
            posts=env.posts,
            engagement=env.events,
            redis_client=env.redis,
            queue=env.queue,
            ids=ids,
        )

    first = process().profiles.create_profile("sub|one", "first_one", "One")
    with pytest.raises(DuplicateId):
        env.graph.create_user(first.id, "sub|raw", "raw_insert", "Raw")
    second = process().profiles.create_profile("sub|two", "second_two", "Two")
    assert second.id != first.id and second.handle == "second_two"
    assert env.sql("SELECT count(*) FROM users") == [(2,)]


def test_follow_rules_and_counts(env: FeedEnv) -> None:
    profiles = env.services.profiles
    users = env.services.social
    a, b = env.user(), env.user()
    with pytest.raises(InvalidInput):
        users.follow(a, a)
    with pytest.raises(NotFound):
        users.follow(a, 999)
    with pytest.raises(NotFound):
        users.follow(999, a)
    users.follow(a, b)
    users.follow(a, b)  # idempotent
    assert profiles.get(a).following_count == 1 and profiles.get(b).follower_count == 1
    users.unfollow(a, b)
    users.unfollow(a, b)
    assert profiles.get(a).following_count == 0 and profiles.get(b).follower_count == 0
    users.block(b, a)
    with pytest.raises(Forbidden):
        users.follow(a, b)
    with pytest.raises(Forbidden):
        users.follow(b, a)
    users.unblock(b, a)
    users.follow(a, b)


def test_block_drops_follows_both_ways_with_counts(env: FeedEnv) -> None:
    profiles = env.services.profiles
    users = env.services.social
    a, b = env.user(), env.user()
    users.follow(a, b)
    users.follow(b, a)
    users.block(a, b)
    users.block(a, b)  # idempotent
    for u in (a, b):
        user = profiles.get(u)
        assert (user.follower_count, user.following_count) == (0, 0)
    assert env.sql("SELECT count(*) FROM follows")[0][0] == 0


def test_mute_block_validation(env: FeedEnv) -> None:
    users = env.services.social
    a = env.user()
    for action in (users.mute, users.unmute, users.block, users.unblock):
        with pytest.raises(InvalidInput):
            action(a, a)
        with pytest.raises(NotFound):
            action(a, 424242)


def test_followers_and_following_pagination(env: FeedEnv) -> None:
    profiles = env.services.profiles
    users = env.services.social
    star = env.user()
    fans = [env.user() for _ in range(7)]
    for fan in fans:
        users.follow(fan, star)
        users.follow(star, fan)
    for listing in (profiles.followers, profiles.following):
        seen, cursor = [], None
        while True:
            page = listing(star, cursor, 3)
            assert len(page.items) <= 3
            seen += [u.id for u in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == sorted(fans)
    with pytest.raises(InvalidInput):
        profiles.followers(star, "garbage", 3)
    with pytest.raises(InvalidInput):  # a following cursor is not a followers cursor
        profiles.followers(star, profiles.following(star, None, 3).next_cursor, 3)
    for bad in (0, 101, -1):
        with pytest.raises(InvalidInput):
            profiles.followers(star, None, bad)
    with pytest.raises(NotFound):
        profiles.followers(31337, None, 3)
