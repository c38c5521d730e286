"""Home timelines as Redis LISTs of integer ids, newest first: the cases a LIST must handle that a
ZSET handled by itself (order, duplicates), the horizon, trims, removal, reads below a cursor,
rebuilds, the storage format, and keys of the ZSET layout left behind. Every behaviour in both
modes: batched script calls (single Redis) and one call per timeline (cluster)."""

from __future__ import annotations

import pytest
import redis

from feed_adapters.redis.keys import (
    legacy_timeline_keys,
    timeline_key,
    timeline_meta_key,
)
from feed_adapters.redis.timeline_store import RedisTimelineStore
from newsfeed.ids import MAX_ID

B = 10**17


def store(r: redis.Redis, max_len: int = 800, slack: int | None = None):
    return RedisTimelineStore(r, max_len=max_len, post_ttl_seconds=60, trim_slack=slack)


def horizon(r: redis.Redis, user: int) -> int:
    return int(r.hget(timeline_meta_key(user), "h") or 0)


def test_out_of_order_inserts_land_in_sorted_position(
    redis_client: redis.Redis, clean_stores: None
) -> None:
    t = store(redis_client)
    t.commit_timeline(1, [B + 10, B + 5, B + 1], 0)
    t.commit_timeline(2, [], 0)  # ready and empty
    assert t.push([1, 2], [B + 7]) == 2  # a chunk job of an older post arriving late
    assert t.push([1, 2], [B + 12]) == 2
    assert t.push([1, 2], [B + 3]) == 2
    assert t.push([1, 2], [B]) == 2  # older than everything, no horizon: at the tail
    assert t.timeline_ids(1) == [B + 12, B + 10, B + 7, B + 5, B + 3, B + 1, B]
    assert t.timeline_ids(2) == [B + 12, B + 7, B + 3, B]
    # Many ids at once (a backfill), interleaved with what is there, in any order.
    t.push([1], [B + 4, B + 11, B + 20, B + 2])
    assert t.timeline_ids(1) == [
        *(B + i for i in (20, 12, 11, 10, 7, 5, 4, 3, 2, 1)),
        B,
    ]


def test_ids_compare_as_integers_across_digit_counts_and_near_2_to_63(
    redis_client: redis.Redis, clean_stores: None
) -> None:
    """Lua numbers are doubles (53 bits): ids must never be compared as numbers in a script."""
    t = store(redis_client)
    big = [MAX_ID, MAX_ID - 1, MAX_ID - 2]  # equal as doubles
    small = [99_999_999_999_999_999, 10**17 + 1]  # 17 and 18 digits: bytewise, '9...' > '1...'
    t.commit_timeline(1, [big[0], small[1]], 0)
    t.push([1], [big[2]])
    t.push([1], [big[1]])
    t.push([1], [small[0]])
    t.push([1], [big[1]])  # present: no-op
    assert t.timeline_ids(1) == [*big, small[1], small[0]]
    read, _ = t.read_candidates(1, [], MAX_ID - 1, 10)
    assert read is not None and read.ids == [big[2], small[1], small[0]]


def test_redelivery_leaves_no_duplicate(redis_client: redis.Redis, clean_stores: None) -> None:
    t = store(redis_client)
    t.commit_timeline(1, [B + 9, B + 5, B + 1], 0)
    for _ in range(2):
        t.push([1], [B + 9])  # the head again
        t.push([1], [B + 5])  # a middle entry again
        t.push([1], [B + 1])  # the tail again
        t.push([1], [B + 7, B + 5, B + 9])  # a backfill delivered twice
    assert t.timeline_ids(1) == [B + 9, B + 7, B + 5, B + 1]
    assert t.count_holding([1, 2], B + 5) == 1


def test_an_insert_older_than_the_horizon_is_skipped(
    redis_client: redis.Redis, clean_stores: None
) -> None:
    t = store(redis_client)
    t.commit_timeline(1, [B + 9, B + 5], B + 5)  # complete only down to B + 5
    t.commit_timeline(2, [], B + 5)  # empty, horizon set
    assert t.push([1, 2], [B + 3]) == 2  # written means: the timeline exists
    assert t.push([1, 2], [B + 2, B + 1]) == 2
    assert t.timeline_ids(1) == [B + 9, B + 5] and t.timeline_ids(2) == []
    t.push([1, 2], [B + 6])
    assert t.timeline_ids(1) == [B + 9, B + 6, B + 5] and t.timeline_ids(2) == [B + 6]
    # A push whose source is complete only down to some id raises the horizon; entries below
    # it go (the reader would not show them: below the horizon it pulls from the authors).
    t.push([1], [B + 10, B + 8], horizon=B + 6)
    assert t.timeline_ids(1) == [B + 10, B + 9, B + 8, B + 6]
    assert horizon(redis_client, 1) == B + 6


def test_trim_keeps_the_cap_and_raises_the_horizon(
    redis_client: redis.Redis, clean_stores: None
) -> None:
    t = store(redis_client, max_len=5, slack=2)
    t.commit_timeline(1, [], 0)
    for i in range(1, 8):
        t.push([1], [B + i])
    assert len(t.timeline_ids(1)) == 7 and horizon(redis_client, 1) == 0  # at trim_at: no trim
    t.push([1], [B + 8])
    assert t.timeline_ids(1) == [B + i for i in (8, 7, 6, 5, 4)]
    assert horizon(redis_client, 1) == B + 4
    t.push([1], [B + 2])  # below the horizon now: skipped
    assert B + 2 not in t.timeline_ids(1)
    # A many-id push past trim_at trims too.
    t.push([1], [B + i for i in range(20, 30)])
    assert t.timeline_ids(1) == [B + i for i in (29, 28, 27, 26, 25)]
    assert horizon(redis_client, 1) == B + 25
    # A commit trims exactly to the cap.
    t.commit_timeline(1, [B + i for i in range(40, 48)], 0)
    assert t.timeline_ids(1) == [B + i for i in (47, 46, 45, 44, 43)]
    assert horizon(redis_client, 1) == B + 43


def test_remove_takes_ids_out_of_lists(redis_client: redis.Redis, clean_stores: None) -> None:
    t = store(redis_client)
    ids = [B + i for i in range(40, 0, -1)]
    t.commit_timeline(1, ids, B + 1)
    t.commit_timeline(2, ids[:3], 0)
    t.remove([1, 2, 3], [B + 40])  # one id (retract): LREM
    assert t.timeline_ids(1) == ids[1:] and t.timeline_ids(2) == ids[1:3]
    gone = ids[5:30]  # many ids (unmerge): one pass over the list
    t.remove([1, 2], gone)
    assert t.timeline_ids(1) == [p for p in ids[1:] if p not in gone]
    t.remove([2], ids[:3])
    assert t.timeline_ids(2) == [] and t.timeline_state(2).ready  # empty, still valid
    assert horizon(redis_client, 1) == B + 1  # removal never moves the horizon
    assert not redis_client.exists(timeline_key(3))


def test_reads_below_a_cursor(redis_client: redis.Redis, clean_stores: None) -> None:
    t = store(redis_client)
    ids = [B + 2 * i for i in range(100, 0, -1)]  # even ids, B+200 .. B+2
    t.commit_timeline(1, ids, 0)
    read, _ = t.read_candidates(1, [], None, 5)
    assert read is not None and read.ready and read.horizon == 0 and read.ids == ids[:5]
    read, _ = t.read_candidates(1, [], B + 101, 4)  # between entries
    assert read is not None and read.ids == [B + 100, B + 98, B + 96, B + 94]
    read, _ = t.read_candidates(1, [], B + 100, 2)  # strictly below an entry
    assert read is not None and read.ids == [B + 98, B + 96]
    read, _ = t.read_candidates(1, [], B + 7, 10)  # near the end: short
    assert read is not None and read.ids == [B + 6, B + 4, B + 2]
    read, _ = t.read_candidates(1, [], B + 2, 10)
    assert read is not None and read.ids == []
    read, _ = t.read_candidates(1, [], B + 999, 2)  # above the head
    assert read is not None and read.ids == ids[:2]
    # With a horizon: nothing below it is returned, and the horizon comes along.
    t.commit_timeline(2, ids, B + 50)
    read, _ = t.read_candidates(2, [], B + 57, 10)
    assert read is not None and read.horizon == B + 50
    assert read.ids == [B + 56, B + 54, B + 52, B + 50]
    read, _ = t.read_candidates(2, [], B + 40, 10)
    assert read is not None and read.ids == [] and read.horizon == B + 50
    missing, _ = t.read_candidates(3, [], B + 40, 10)
    assert missing is not None and not missing.ready and missing.ids == []


def test_a_rebuild_replaces_contents_keeping_concurrent_fanout(
    redis_client: redis.Redis, clean_stores: None
) -> None:
    t = store(redis_client, max_len=6, slack=0)
    t.commit_timeline(1, [B + 5, B + 3], 0)
    t.begin_timeline_rebuild(1)
    assert not t.timeline_state(1).ready
    t.push([1], [B + 30])  # fan-out during the rebuild must not be lost
    # The rebuild: merged ids newest first, complete down to B + 20.
    t.commit_timeline(1, [B + 29, B + 25, B + 22, B + 20], B + 20)
    state = t.timeline_state(1)
    assert state.ready and state.horizon == B + 20
    # Entries of the old timeline below the new horizon are gone; the concurrent push stays.
    assert t.timeline_ids(1) == [B + 30, B + 29, B + 25, B + 22, B + 20]
    # seed_timelines replaces whatever an owner held.
    t.seed_timelines([1, 2], [[B + 1, B + 3, B + 2]])
    assert t.timeline_ids(1) == t.timeline_ids(2) == [B + 3, B + 2, B + 1]
    assert t.timeline_lengths([1, 2, 3]) == [3, 3, 0]


def test_storage_is_a_compact_list_of_integers(
    redis_client: redis.Redis, clean_stores: None
) -> None:
    t = store(redis_client)
    ids = [B * 20 + 4_194_304 * i for i in range(800)]  # 19-digit snowflake-like ids
    t.commit_timeline(1, ids, 0)
    assert redis_client.type(timeline_key(1)) in ("list", b"list")
    footprint = t.timeline_footprint(1)
    assert footprint["encoding"] in ("listpack", "quicklist")
    assert footprint["list_bytes"] / 800 <= 12  # issue 11's memory goal


def test_encoding_footprints_measure_the_same_ids_in_each_layout(
    redis_client: redis.Redis, clean_stores: None
) -> None:
    """The bench's memory comparison: the LIST as stored, and its ids as a ZSET listpack and a
    ZSET skiplist on scratch keys, which are gone afterwards; the timeline is left as it was."""
    t = store(redis_client)
    t.commit_timeline(1, [B * 20 + 4_194_304 * i for i in range(800)], 0)
    held, keys = t.timeline_ids(1), set(redis_client.keys("*"))
    fp = t.encoding_footprints(1)
    assert {name: row["entries"] for name, row in fp.items()} == {
        "list": 800,
        "zset_listpack": 800,
        "zset_skiplist": 800,
    }
    assert fp["list"]["memory_usage_bytes"] == t.timeline_footprint(1)["list_bytes"]
    assert fp["zset_skiplist"]["encoding"] == "skiplist"
    listpack_max = next(iter(redis_client.config_get("zset-max-listpack-entries").values()))
    if int(listpack_max) >= 800:
        assert fp["zset_listpack"]["encoding"] == "listpack"
    sizes = [fp[k]["memory_usage_bytes"] for k in ("list", "zset_listpack", "zset_skiplist")]
    assert sizes == sorted(sizes) and len(set(sizes)) == 3, fp
    assert set(redis_client.keys("*")) == keys
    assert t.timeline_ids(1) == held


def test_timelines_of_the_zset_layout_are_never_read_and_are_dropped(
    redis_client: redis.Redis, clean_stores: None
) -> None:
    """Keys of the old layout (ZSET `tl:`, its `tlm:` hash) are ignored: the owner's timeline is
    missing, rebuilt on the next read, and the rebuild deletes the old keys; the cleanup job
    drops those of owners who never come back."""
    t = store(redis_client)
    for user in (1, 2):
        old_list, old_meta = legacy_timeline_keys(user)
        redis_client.zadd(old_list, {f"{B + 1:019d}": B + 1})
        redis_client.hset(old_meta, mapping={"state": "ready", "built_at": 1})
    assert not t.timeline_state(1).ready
    t.push([1], [B + 2])  # never written into, never created
    assert not redis_client.exists(timeline_key(1))
    t.commit_timeline(1, [B + 3], 0)
    assert t.timeline_ids(1) == [B + 3]
    assert not any(redis_client.exists(k) for k in legacy_timeline_keys(1))
    owners = {u for batch in t.timeline_owners() for u in batch}
    assert owners == {1, 2}
    assert t.drop_timelines([2], built_before_ms=2**62) == 1
    assert not any(redis_client.exists(k) for k in legacy_timeline_keys(2))


def test_many_author_lists_in_one_read_each_get_their_own_ids_and_state(
    redis_client: redis.Redis,
    clean_stores: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Single Redis reads the lists in calls of RANGE_BATCH (made small here to cross batch
    # boundaries); cluster mode one call per list. Each reply must land on its own author.
    from feed_adapters.redis import timeline_store

    monkeypatch.setattr(timeline_store, "RANGE_BATCH", 3)
    t = store(redis_client, max_len=5)
    authors = list(range(101, 109))  # 8 authors: batches of 3, 3, 2
    for n, author in enumerate(authors):
        if author == 104:
            continue  # missing: not ready, no ids
        t.commit_author_posts(author, [B + 100 * author + i for i in range(n + 1)], 0)
    _, lists = t.read_candidates(None, authors, None, 4)
    assert list(lists) == authors
    for n, author in enumerate(authors):
        read = lists[author]
        if author == 104:
            assert not read.ready and read.ids == []
            continue
        assert read.ready
        expected = sorted((B + 100 * author + i for i in range(n + 1)), reverse=True)
        assert read.ids == expected[:4]
    below = B + 100 * 108 + 6  # lists hold their newest 5 (max_len)
    _, lists = t.read_candidates(1, authors[-2:], below, 2)
    assert lists[108].ids == [B + 100 * 108 + 5, B + 100 * 108 + 4]
    assert lists[107].ids == [B + 100 * 107 + 6, B + 100 * 107 + 5]
