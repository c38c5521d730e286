"""Fan-out writes into timelines: lazy trim with slack, horizon, batching across script calls,
and the same results in cluster mode (one call per timeline) and single-Redis mode (batched)."""

from __future__ import annotations

import pytest
import redis

from feed_adapters.redis.keys import author_posts_key, timeline_key, timeline_meta_key
from feed_adapters.redis.timeline_store import LISTPACK_MAX_ENTRIES, PUSH_BATCH, RedisTimelineStore
from feed_wiring.settings import Settings

BASE = 10**17


def test_lazy_trim_keeps_the_newest_and_raises_the_horizon(
    redis_client: redis.Redis, clean_stores: None
) -> None:
    t = RedisTimelineStore(redis_client, max_len=10, post_ttl_seconds=60, trim_slack=3)
    owners, stranger = [1, 2], 3
    for u in owners:
        redis_client.hset(timeline_meta_key(u), "state", "ready")
    ids = [BASE + i for i in range(40)]
    for n, post_id in enumerate(ids, start=1):
        assert t.push([*owners, stranger], [post_id]) == 2
        newest_first = ids[:n][::-1]
        for u in owners:
            held = t.timeline_ids(u)
            assert held == newest_first[: len(held)]  # always the newest, contiguous
            assert len(held) == n or 10 <= len(held) <= 13  # trimmed only above 10 + 3
            horizon = redis_client.hget(timeline_meta_key(u), "h")
            if len(held) < n:  # something was dropped: the horizon is the oldest kept entry
                assert horizon is not None and int(horizon) == held[-1]
            else:
                assert horizon is None
        assert not redis_client.exists(timeline_key(stranger))  # never created


def test_push_horizon_argument_and_many_followers(
    redis_client: redis.Redis, clean_stores: None
) -> None:
    t = RedisTimelineStore(redis_client, max_len=800, post_ttl_seconds=60)
    redis_client.hset(timeline_meta_key(5), "state", "ready")
    t.push([5], [BASE + 100, BASE + 101], horizon=BASE + 100)
    assert int(redis_client.hget(timeline_meta_key(5), "h") or 0) == BASE + 100
    t.push([5], [BASE + 102], horizon=BASE + 50)  # never lowered
    assert int(redis_client.hget(timeline_meta_key(5), "h") or 0) == BASE + 100
    followers = list(range(1_000, 1_000 + 2 * PUSH_BATCH + 7))  # spans three script calls
    for u in followers[::2]:
        redis_client.hset(timeline_meta_key(u), "state", "ready")
    assert t.push(followers, [BASE + 7]) == len(followers[::2])
    assert t.push(followers, [BASE + 7]) == len(followers[::2])  # idempotent
    for u in followers:
        assert t.timeline_ids(u) == ([BASE + 7] if u in followers[::2] else [])


def test_trim_slack_defaults_and_listpack_bound(redis_client: redis.Redis) -> None:
    def slack(max_len: int, configured: int | None = None) -> int:
        return RedisTimelineStore(
            redis_client, max_len=max_len, post_ttl_seconds=1, trim_slack=configured
        ).trim_slack

    assert slack(800) == 80 and slack(50) == 0 and slack(800, 0) == 0
    assert 1000 + slack(1000) == LISTPACK_MAX_ENTRIES  # clamped: timelines stay listpacks
    assert slack(800, 500) == LISTPACK_MAX_ENTRIES - 800


def test_settings_read_cluster_flag_and_slack() -> None:
    assert Settings.from_env({}).redis_cluster is False
    assert Settings.from_env({"REDIS_CLUSTER": "true"}).redis_cluster is True
    assert Settings.from_env({"REDIS_CLUSTER": "0"}).redis_cluster is False
    assert Settings.from_env({}).timeline_trim_slack is None
    assert Settings.from_env({"TIMELINE_TRIM_SLACK": "40"}).timeline_trim_slack == 40


def test_seed_replaces_timelines_and_lengths_are_reported(
    redis_client: redis.Redis, clean_stores: None
) -> None:
    """The bench refills timelines to the trim threshold before each measured post: a seed must
    replace what a timeline held (template owners included), not add to it."""
    t = RedisTimelineStore(redis_client, max_len=10, post_ttl_seconds=60, trim_slack=3)
    assert t.trim_at == 13
    owners = [1, 2, 3]
    old = [[BASE + i for i in range(20, 30)], [BASE + i for i in range(30, 40)]]
    t.seed_timelines(owners, old)
    new = [[BASE + i for i in range(13)], [BASE + i for i in range(100, 113)]]
    t.seed_timelines(owners, new)
    assert t.timeline_lengths([*owners, 99]) == [13, 13, 13, 0]
    assert t.timeline_ids(1) == sorted(new[0], reverse=True)
    assert t.timeline_ids(2) == sorted(new[1], reverse=True)
    assert t.timeline_ids(3) == sorted(new[0], reverse=True)
    # At the threshold, one more post runs the trim: back to the cap, horizon at the oldest kept.
    assert t.push(owners, [BASE + 500]) == 3
    assert t.timeline_lengths(owners) == [10, 10, 10]
    assert int(redis_client.hget(timeline_meta_key(1), "h") or 0) == t.timeline_ids(1)[-1]


class RoundTrips:
    """Counts what the client sends to the server (one send per command or per pipeline)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.n = 0
        original = redis.connection.AbstractConnection.send_packed_command

        def counted(conn: object, *args: object, **kwargs: object) -> object:
            self.n += 1
            return original(conn, *args, **kwargs)

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)


def test_a_read_and_a_push_are_one_round_trip_each(
    redis_client: redis.Redis, clean_stores: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A script queued in a pipeline through redis-py's Script first costs a SCRIPT EXISTS.
    t = RedisTimelineStore(redis_client, max_len=10, post_ttl_seconds=60)
    t.commit_timeline(1, [BASE + 1], 0)
    # Warm: the first call of a script on a server loads it (NOSCRIPT, then SCRIPT LOAD).
    t.read_candidates(1, [7, 8], None, 5)
    t.push([1, 2], [BASE + 1])
    trips = RoundTrips(monkeypatch)
    timeline, lists = t.read_candidates(1, [7, 8], None, 5)
    assert timeline is not None and timeline.ids == [BASE + 1] and set(lists) == {7, 8}
    # A cluster: one send per node that holds one of the keys, all written before any reply.
    read_keys = [timeline_key(1), author_posts_key(7), author_posts_key(8)]
    assert trips.n == nodes_holding(redis_client, read_keys)
    trips.n = 0
    assert t.push([1, 2], [BASE + 2]) == 1
    assert trips.n == nodes_holding(redis_client, [timeline_key(1), timeline_key(2)])


def nodes_holding(client: redis.Redis | redis.RedisCluster, keys: list[str]) -> int:
    """How many servers hold these keys: 1 on a single Redis."""
    if not isinstance(client, redis.RedisCluster):
        return 1
    return len({client.get_node_from_key(key).name for key in keys})


def test_scripts_the_server_lost_are_loaded_again(
    redis_client: redis.Redis, clean_stores: None
) -> None:
    # A restart, a failover or SCRIPT FLUSH empties the server's script cache.
    t = RedisTimelineStore(redis_client, max_len=10, post_ttl_seconds=60)
    t.commit_timeline(1, [BASE + 1], 0)
    redis_client.script_flush()
    assert t.push([1], [BASE + 2]) == 1
    redis_client.script_flush()
    timeline, _ = t.read_candidates(1, [], None, 5)
    assert timeline is not None and timeline.ids == [BASE + 2, BASE + 1]
    redis_client.script_flush()
    assert t.drop_timelines([1], built_before_ms=2**62) == 1
