"""Every statement of the graph adapter filters by one shard key or is a listed cross-shard one
(feed_adapters/postgres/sharding.py, docs/sharding.md), against real PostgreSQL: each store
operation runs once here and every statement it sends is checked, and the registry lists no
statement the operations do not send. The session-wide check (tests/shard_rule.py) holds the
rest of the suite to the same rule."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from feed_adapters.postgres import sharding
from feed_adapters.postgres.graph_store import _READER_GRAPH_SQL, PostgresGraphStore, make_pool
from feed_adapters.postgres.sharding import SingleShard, normalise
from newsfeed.fanout.rule import Threshold
from tests.shard_rule import Call, StatementLog, check, registry

pytestmark = pytest.mark.integration

# Pull at 2 followers, back to push (pending) below 1: the mode statements run too.
THRESHOLD = Threshold.of(2, 1)
ACTIVE_DAYS = 7


def _every_operation(store: PostgresGraphStore) -> None:
    """Each method of the store, with the arguments that reach each of its statements."""
    a, b, c, d = (
        store.create_user(910_000 + i, f"shard|{i}", f"shard_{i}", f"Shard {i}").id
        for i in range(4)
    )
    assert store.get_user(a) is not None and store.get_user_by_subject("shard|1") is not None
    assert store.user_exists(b) and store.fanout_mode(b) == "push"
    store.touch_active(a)
    store.follow(a, b, THRESHOLD)
    assert store.follow(c, b, THRESHOLD).crossing == "to_pull"
    assert store.is_following(a, b) and not store.blocked_either(a, c)
    assert store.reader_graph(a, ACTIVE_DAYS) is not None  # edges sent
    assert store.reader_graph(a, ACTIVE_DAYS) is not None  # versions still valid
    assert store.user_hidden_from(b, a) is False and store.user_hidden_from(b, None) is False
    assert [u.id for u in store.followers_page(b, None, 10, viewer_id=d)] == [a, c]
    assert [u.id for u in store.following_page(a, None, 10)] == [b]
    assert store.follower_ids_page(b, 0, 10) == [a, c]
    assert store.follower_ids_in_range(b, 0, c, active_days=None) == [a, c]
    assert store.follower_ids_in_range(b, 0, c, active_days=ACTIVE_DAYS) == [a, c]
    assert store.mute(a, d) and store.unmute(a, d)
    assert store.block(d, c, THRESHOLD).changed and store.unblock(d, c)
    store.unfollow(c, b, THRESHOLD)  # 1 follower: still pulled (hysteresis)
    assert store.unfollow(a, b, THRESHOLD).crossing == "to_push_pending"
    job = store.backfill_job(b)
    assert job is not None and store.claim_stale_backfills(0, 10) == [(b, job)]
    assert store.finish_backfill(b, job) and store.fanout_mode(b) == "push"
    first = store.recently_active_page(24, None, 2)
    assert len(first) == 2 and store.recently_active_page(24, first[-1], 10)
    assert store.inactive_among([a, b, 1], ACTIVE_DAYS) == {1}


def test_every_statement_of_every_operation_keeps_the_rule(
    pg_pool: Any, clean_stores: None, adapter_statements: StatementLog
) -> None:
    with adapter_statements.capture() as calls:
        _every_operation(PostgresGraphStore(pg_pool))
    report = check(calls)
    assert not report, str(report)
    sent = {call.sql for call in calls}
    unused = [sql for sql in registry() if sql not in sent | sharding.REPLICA_CHECKS]
    assert unused == [], "registered but never sent (stale entries, or exercise them here)"


def test_the_feed_read_sends_one_single_shard_statement(
    pg_pool: Any, clean_stores: None, adapter_statements: StatementLog
) -> None:
    store = PostgresGraphStore(pg_pool)
    reader, author = (store.create_user(920_000 + i, f"r|{i}", f"r_{i}", "R").id for i in range(2))
    store.follow(reader, author, THRESHOLD)
    for _ in range(2):  # edges sent, then cached and validated: one round trip either way
        with adapter_statements.capture() as calls:
            store.reader_graph(reader, ACTIVE_DAYS)
        assert [c.sql for c in calls] == [normalise(_READER_GRAPH_SQL)]
        assert isinstance(registry()[calls[0].sql], SingleShard)
        assert not check(calls)


def test_only_the_adapter_statements_are_recorded(
    pg_pool: Any, clean_stores: None, adapter_statements: StatementLog
) -> None:
    # Fixtures and tests writing behind the store's back are not the adapter: where a call
    # comes from decides, not its text.
    with adapter_statements.capture() as calls:
        with pg_pool.connection() as conn:
            conn.execute("SELECT 1 FROM users WHERE id = %s", (1,))
        PostgresGraphStore(pg_pool).user_exists(1)
    assert [(c.sql, c.params, c.site.split(":")[0]) for c in calls] == [
        ("SELECT 1 FROM users WHERE id = %s", (1,), "graph_store.py")
    ]


def test_a_statement_added_to_the_adapter_without_registering_it_fails(
    pg_pool: Any, clean_stores: None, adapter_statements: StatementLog
) -> None:
    # Code compiled as a module of the adapter package stands for a new method there.
    probe: dict[str, Any] = {"__name__": "feed_adapters.postgres.probe"}
    exec(
        "def count_follows(pool):\n"
        "    with pool.connection() as conn:\n"
        "        return conn.execute('SELECT count(*) FROM follows').fetchone()\n",
        probe,
    )
    with adapter_statements.capture(alone=True) as calls:  # kept out of the session's check
        probe["count_follows"](pg_pool)
    report = check(calls)
    assert list(report.unregistered) == ["SELECT count(*) FROM follows"]
    assert "add it to feed_adapters/postgres/sharding.py" in str(report)
    assert all(isinstance(call, Call) for call in calls)
    assert sharding.CROSS_SHARD  # the list a reviewer would add it to, with why


def test_follows_both_ways_at_once_do_not_deadlock(settings: Any, clean_stores: None) -> None:
    # _lock_pair locks one user a statement (one shard each once sharded), always in id order:
    # A-follows-B and B-follows-A running together wait for each other, never deadlock.
    pool = make_pool(settings.postgres_dsn, min_size=4, max_size=4)
    try:
        store = PostgresGraphStore(pool)
        a, b = (store.create_user(950_000 + i, f"dl|{i}", f"dl_{i}", "D").id for i in range(2))
        start = threading.Barrier(4)

        def churn(follower: int, followee: int) -> None:
            start.wait()
            for _ in range(40):
                store.follow(follower, followee, THRESHOLD)
                store.unfollow(follower, followee, THRESHOLD)

        with ThreadPoolExecutor(4) as workers:
            runs = [workers.submit(churn, *pair) for pair in ((a, b), (b, a), (a, b), (b, a))]
            for run in runs:
                run.result()  # a deadlock would raise GraphStoreUnavailable (busy) here
        assert store.get_user(a).follower_count == store.get_user(b).follower_count == 0
    finally:
        pool.close()
