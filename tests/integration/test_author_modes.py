"""author_modes (migration 0007): the copy of the fan-out modes that are not push, which the
feed's graph read joins instead of the followees' users rows (so the read stays on the
reader's shard once sharded). After any sequence of follows, unfollows, blocks and finished
backfills it holds exactly the authors whose users.fanout_mode is not push, and every reader's
graph gives each followee the mode of its users row, as the join it replaced did."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feed_adapters.postgres.graph_store import PostgresGraphStore
from newsfeed.errors import Forbidden
from newsfeed.fanout.rule import Threshold

pytestmark = pytest.mark.integration

N_USERS = 4
THRESHOLD = Threshold.of(2, 1)  # pull at 2 followers, back to push (pending) below 1
ACTIVE_DAYS = 7

# Two authors (0 and 1) and four followers, so crossings are frequent: each author goes
# push -> pull -> push_pending -> pull or push in a few steps.
pair = st.tuples(st.integers(0, N_USERS - 1), st.integers(0, 1)).filter(lambda t: t[0] != t[1])
step = st.tuples(
    st.sampled_from(["follow", "follow", "unfollow", "drop", "block", "finish"]),
    pair,
)


def _rows(pool: Any, sql: str, *params: Any) -> set[tuple[Any, ...]]:
    with pool.connection() as conn:
        return set(conn.execute(sql, params).fetchall())


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=4, max_size=25))
def test_the_mode_copy_follows_every_mode_change(
    pg_pool: Any, clean_stores: None, steps: list[tuple[str, tuple[int, int]]]
) -> None:
    with pg_pool.connection() as conn:
        conn.execute("TRUNCATE follows, blocks, mutes, users CASCADE")
    store = PostgresGraphStore(pg_pool)
    ids = [
        store.create_user(930_000 + i, f"modes|{i}", f"modes_{i}", "M").id for i in range(N_USERS)
    ]
    for op, (a, b) in steps:
        x, y = ids[a], ids[b]
        if op == "follow":
            with contextlib.suppress(Forbidden):  # one blocks the other
                store.follow(x, y, THRESHOLD)
        elif op == "unfollow":
            store.unfollow(x, y, THRESHOLD)
        elif op == "drop":  # every follower of y leaves: a pulled author goes push_pending
            for follower in store.follower_ids_page(y, 0, N_USERS):
                store.unfollow(follower, y, THRESHOLD)
        elif op == "block":
            store.block(x, y, THRESHOLD)
            store.unblock(x, y)  # the follows it dropped stay dropped
        else:  # the pending backfills finish
            for author in ids[:2]:
                if (job := store.backfill_job(author)) is not None:
                    store.finish_backfill(author, job)
        assert _rows(pg_pool, "SELECT author_id, fanout_mode FROM author_modes") == _rows(
            pg_pool, "SELECT id, fanout_mode FROM users WHERE fanout_mode <> 'push'"
        ), (op, a, b)
        for reader in ids:
            graph = PostgresGraphStore(pg_pool).reader_graph(reader, ACTIVE_DAYS)
            assert graph is not None
            joined = _rows(
                pg_pool,
                "SELECT f.followee_id, u.fanout_mode FROM follows f"
                " JOIN users u ON u.id = f.followee_id WHERE f.follower_id = %s",
                reader,
            )
            assert set(graph.followees.items()) == joined


def test_every_crossing_lands_in_the_copy(pg_pool: Any, clean_stores: None) -> None:
    store = PostgresGraphStore(pg_pool)
    author, f1, f2 = (
        store.create_user(940_000 + i, f"x|{i}", f"cross_{i}", "X").id for i in range(3)
    )

    def copy() -> set[tuple[Any, ...]]:
        return _rows(pg_pool, "SELECT author_id, fanout_mode FROM author_modes")

    store.follow(f1, author, THRESHOLD)
    assert copy() == set()  # push: no row
    store.follow(f2, author, THRESHOLD)
    assert copy() == {(author, "pull")}
    store.unfollow(f1, author, THRESHOLD)
    store.unfollow(f2, author, THRESHOLD)
    assert copy() == {(author, "push_pending")}
    store.follow(f1, author, THRESHOLD)
    store.follow(f2, author, THRESHOLD)
    assert copy() == {(author, "pull")}  # back to pull before the backfill finished
    store.unfollow(f1, author, THRESHOLD)
    store.unfollow(f2, author, THRESHOLD)
    job = store.backfill_job(author)
    assert job is not None and store.finish_backfill(author, job)
    assert copy() == set() and store.fanout_mode(author) == "push"
