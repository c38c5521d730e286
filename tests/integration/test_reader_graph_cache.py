"""The readers' graph cache (feed_adapters/postgres/graph_cache.py) against real PostgreSQL.

Two graph stores on one database stand for two Lambda processes, each with its own cache. Every
change made through either must be seen by the other's very next read: follows, unfollows,
mutes, unmutes, blocks and unblocks (both sides), and fan-out mode changes of a followee
(crossings and finished backfills), which change no row of the reader's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feed_adapters.postgres.graph_cache import CachedGraph, ReaderGraphCache
from feed_adapters.postgres.graph_store import PostgresGraphStore
from newsfeed.errors import Forbidden
from newsfeed.fanout.rule import Threshold
from newsfeed.model import ReaderGraph

pytestmark = pytest.mark.integration

N_USERS = 4
# Crossings all the time: pull at 2 followers, back to push (pending) below 1.
THRESHOLD = Threshold.of(2, 1)
ACTIVE_DAYS = 7


def _fresh(pool: Any, user_id: int) -> ReaderGraph | None:
    """The graph as PostgreSQL has it now, read by a store with nothing cached."""
    return PostgresGraphStore(pool).reader_graph(user_id, ACTIVE_DAYS)


def _users(store: PostgresGraphStore, n: int, tag: str) -> list[int]:
    base = abs(hash(tag)) % 10**12 * 100
    return [
        store.create_user(base + i, f"cache|{tag}|{i}", f"c{base + i}", f"C{i}").id
        for i in range(n)
    ]


def test_a_warm_read_is_served_from_the_cache(pg_pool: Any, clean_stores: None) -> None:
    store = PostgresGraphStore(pg_pool)
    reader, author, other = _users(store, 3, "warm")
    store.follow(reader, author, THRESHOLD)
    first = store.reader_graph(reader, ACTIVE_DAYS)
    assert first is not None and first.followees == {author: "push"}
    # A row written behind the store's back (no version change) stays unseen: proof that the
    # edges came from the cache. Every write of the application goes through the store.
    with pg_pool.connection() as conn:
        conn.execute("INSERT INTO mutes (muter_id, muted_id) VALUES (%s, %s)", (reader, other))
    again = store.reader_graph(reader, ACTIVE_DAYS)
    assert again is not None and again.muted == frozenset()
    assert again.followees is first.followees
    fresh = _fresh(pg_pool, reader)
    assert fresh is not None and fresh.muted == {other}


def test_activity_flags_are_read_fresh_with_a_cached_graph(
    pg_pool: Any, clean_stores: None
) -> None:
    store = PostgresGraphStore(pg_pool)
    (reader,) = _users(store, 1, "flags")
    warm = store.reader_graph(reader, ACTIVE_DAYS)
    assert warm is not None and not warm.inactive and not warm.touch_due
    with pg_pool.connection() as conn:
        conn.execute(
            "UPDATE users SET last_active_at = now() - interval '30 days' WHERE id = %s",
            (reader,),
        )
    cold = store.reader_graph(reader, ACTIVE_DAYS)
    assert cold is not None and cold.inactive and cold.touch_due


def test_an_unknown_reader_is_none_cached_or_not(pg_pool: Any, clean_stores: None) -> None:
    store = PostgresGraphStore(pg_pool)
    (reader,) = _users(store, 1, "gone")
    assert store.reader_graph(reader, ACTIVE_DAYS) is not None
    with pg_pool.connection() as conn:
        conn.execute("DELETE FROM users WHERE id = %s", (reader,))
    assert store.reader_graph(reader, ACTIVE_DAYS) is None


def test_a_followee_mode_change_reaches_a_cached_graph(pg_pool: Any, clean_stores: None) -> None:
    # The followee's crossing changes no row of the reader's: the mode epoch carries it.
    process_a, process_b = PostgresGraphStore(pg_pool), PostgresGraphStore(pg_pool)
    reader, celebrity, fan = _users(process_a, 3, "mode")
    process_a.follow(reader, celebrity, THRESHOLD)
    before = process_a.reader_graph(reader, ACTIVE_DAYS)
    assert before is not None and before.followees == {celebrity: "push"}
    assert process_b.follow(fan, celebrity, THRESHOLD).crossing == "to_pull"
    after = process_a.reader_graph(reader, ACTIVE_DAYS)
    assert after is not None and after.followees == {celebrity: "pull"}
    change = process_b.unfollow(fan, celebrity, THRESHOLD)
    process_b.unfollow(reader, celebrity, THRESHOLD)
    process_b.follow(reader, celebrity, THRESHOLD)
    assert process_a.reader_graph(reader, ACTIVE_DAYS) == _fresh(pg_pool, reader)
    job = process_b.backfill_job(celebrity)
    if change.crossing == "to_push_pending" and job is not None:
        assert process_a.reader_graph(reader, ACTIVE_DAYS).followees[celebrity] == "push_pending"
        assert process_b.finish_backfill(celebrity, job)
        assert process_a.reader_graph(reader, ACTIVE_DAYS).followees == {celebrity: "push"}


def test_the_cache_is_bounded_by_edges() -> None:
    cache = ReaderGraphCache(max_edges=10)

    def graph(n: int) -> CachedGraph:
        return CachedGraph(1, 1, ReaderGraph(0, {i: "push" for i in range(n)}))

    cache.put(1, graph(4))  # 5 edges with the reader's own row
    cache.put(2, graph(4))
    assert len(cache) == 2
    assert cache.get(1) is not None  # 1 is now the most recent
    cache.put(3, graph(2))  # 3 edges: 13 > 10, the least recent (2) goes
    assert cache.get(2) is None and cache.get(1) is not None and cache.get(3) is not None
    cache.put(4, graph(20))  # larger than the whole cache: not kept, evicts nothing
    assert cache.get(4) is None and len(cache) == 2
    cache.put(1, graph(0))  # replacing an entry frees its old weight
    cache.put(5, graph(3))
    assert {r for r in (1, 3, 5) if cache.get(r) is not None} == {1, 3, 5}


def test_the_cache_never_takes_an_older_graph() -> None:
    # Two reads of one reader racing, one on a lagging replica: whichever puts last, the cache
    # keeps the newer graph (versions only grow: one sequence feeds both).
    cache = ReaderGraphCache()
    newer = CachedGraph(7, 5, ReaderGraph(0, {1: "push", 2: "push"}))
    cache.put(0, newer)
    for older in (
        CachedGraph(6, 5, ReaderGraph(0, {1: "push"})),  # the reader's edges behind
        CachedGraph(7, 4, ReaderGraph(0, {1: "push", 2: "pull"})),  # a followee's mode behind
        CachedGraph(3, 2, ReaderGraph(0, {})),
    ):
        cache.put(0, older)
        assert cache.get(0) is newer
    flags = CachedGraph(7, 5, ReaderGraph(0, {1: "push", 2: "push"}, inactive=True))
    cache.put(0, flags)  # same versions, fresh activity flags: taken
    assert cache.get(0) is flags
    cache.put(0, newest := CachedGraph(9, 5, ReaderGraph(0, {})))
    assert cache.get(0) is newest


# -- model-based --------------------------------------------------------------------------------


@dataclass
class GraphModel:
    follows: set[tuple[int, int]] = field(default_factory=set)
    mutes: set[tuple[int, int]] = field(default_factory=set)
    blocks: set[tuple[int, int]] = field(default_factory=set)

    def expect(self, r: int) -> tuple[set[int], set[int], set[int]]:
        return (
            {b for a, b in self.follows if a == r},
            {b for a, b in self.mutes if a == r},
            {b for a, b in self.blocks if a == r} | {a for a, b in self.blocks if b == r},
        )


user = st.integers(0, N_USERS - 1)
pair = st.tuples(user, st.integers(1, N_USERS - 1)).map(lambda t: (t[0], (t[0] + t[1]) % N_USERS))
step = st.tuples(
    st.sampled_from(
        ["follow", "follow", "unfollow", "mute", "unmute", "block", "unblock", "finish"]
    ),
    pair,
    st.integers(0, 1),  # which process writes
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=25))
def test_every_change_by_either_process_is_in_the_next_read_of_both(
    pg_pool: Any, clean_stores: None, steps: list[tuple[str, tuple[int, int], int]]
) -> None:
    processes = (PostgresGraphStore(pg_pool), PostgresGraphStore(pg_pool))
    with pg_pool.connection() as conn:
        conn.execute("TRUNCATE follows, blocks, mutes, users CASCADE")
    ids = _users(processes[0], N_USERS, "model")
    model = GraphModel()
    for process in processes:  # both caches warm before the first change
        for uid in ids:
            process.reader_graph(uid, ACTIVE_DAYS)
    for op, (a, b), writer_index in steps:
        writer = processes[writer_index]
        x, y = ids[a], ids[b]
        if op == "follow":
            try:
                writer.follow(x, y, THRESHOLD)
                model.follows.add((x, y))
            except Forbidden:
                assert (x, y) in model.blocks or (y, x) in model.blocks
        elif op == "unfollow":
            writer.unfollow(x, y, THRESHOLD)
            model.follows.discard((x, y))
        elif op == "mute":
            writer.mute(x, y)
            model.mutes.add((x, y))
        elif op == "unmute":
            writer.unmute(x, y)
            model.mutes.discard((x, y))
        elif op == "block":
            writer.block(x, y, THRESHOLD)
            model.blocks.add((x, y))
            model.follows -= {(x, y), (y, x)}
        elif op == "unblock":
            writer.unblock(x, y)
            model.blocks.discard((x, y))
        else:
            job = writer.backfill_job(y)
            if job is not None:
                writer.finish_backfill(y, job)
        for uid in ids:
            fresh = _fresh(pg_pool, uid)
            for process in processes:
                got = process.reader_graph(uid, ACTIVE_DAYS)
                assert got == fresh, (op, a, b)
                assert got is not None
                assert (set(got.followees), set(got.muted), set(got.blocked)) == model.expect(uid)
