"""The graph adapter's shard registry (feed_adapters/postgres/sharding.py) and the checker that
holds the suite's statements to it (tests/shard_rule.py), without a database: every
single-shard entry's text shows its keys, and the checker refuses what breaks the rule."""

from __future__ import annotations

import pytest

from feed_adapters.postgres import sharding
from feed_adapters.postgres.graph_store import _READER_GRAPH_SQL
from feed_adapters.postgres.sharding import Key, SingleShard, normalise
from tests.shard_rule import Call, check, registry, run_problems, static_problems, tables_of

KNOWN = set(sharding.SHARD_KEYS) | sharding.REFERENCE_TABLES | sharding.SYSTEM_TABLES


@pytest.mark.parametrize("entry", sharding.SINGLE_SHARD, ids=lambda e: e.sql[:60])
def test_each_single_shard_statement_shows_its_keys(entry: SingleShard) -> None:
    assert static_problems(entry) == []


def test_every_statement_is_registered_once_and_names_known_tables() -> None:
    entries = registry()  # raises on a statement in both lists or twice in one
    assert len(entries) == len(sharding.SINGLE_SHARD) + len(sharding.CROSS_SHARD)
    for entry in sharding.CROSS_SHARD:
        assert entry.why.strip(), entry.sql
        assert tables_of(entry.sql) <= KNOWN, entry.sql


def test_the_feed_read_is_single_shard() -> None:
    entry = registry()[normalise(_READER_GRAPH_SQL)]
    assert isinstance(entry, SingleShard)
    assert tables_of(entry.sql) - sharding.REFERENCE_TABLES == set(sharding.SHARD_KEYS)


def test_an_unregistered_statement_is_reported() -> None:
    report = check([Call("SELECT count(*) FROM follows", None, "graph_store.py:1 in new")])
    assert report and "unregistered statement from graph_store.py:1" in str(report)


def test_a_join_to_other_users_rows_is_not_single_shard() -> None:
    # The reader graph's old form: the followees' users rows are on the followees' shards.
    joined = SingleShard(
        "SELECT f.followee_id, u.fanout_mode FROM follows f JOIN users u"
        " ON u.id = f.followee_id WHERE f.follower_id = %s",
        (Key("follows", "f.follower_id", 0),),
    )
    assert static_problems(joined) == ["users is read without its shard key"]


def test_a_key_must_be_a_shard_key_compared_with_its_parameter() -> None:
    sql = "SELECT 1 FROM blocks WHERE blocker_id = %s AND blocked_id = %s"
    assert static_problems(SingleShard(sql, (Key("blocks", "blocker_id", 1),))) == [
        "blocker_id is not compared with parameter 1"
    ]
    assert static_problems(SingleShard(sql, (Key("blocks", "created_at", 0),))) == [
        "created_at is not a shard key of blocks"
    ]
    unknown = SingleShard("SELECT 1 FROM likes WHERE user_id = %s", ())
    assert static_problems(unknown) == ["table likes is neither sharded nor a reference table"]


def test_an_insert_ties_a_column_to_its_value() -> None:
    sql = "INSERT INTO mutes (muter_id, muted_id) VALUES (%s, %s)"
    assert static_problems(SingleShard(sql, (Key("mutes", "muter_id", 0),))) == []
    assert static_problems(SingleShard(sql, (Key("mutes", "muter_id", 1),))) != []


def test_an_execution_with_two_users_in_its_keys_is_reported() -> None:
    either = SingleShard(
        "SELECT 1 FROM blocks WHERE (blocker_id = %s AND blocked_id = %s)"
        " OR (blocker_id = %s AND blocked_id = %s)",
        (Key("blocks", "blocker_id", 0), Key("blocks", "blocked_id", 3)),
    )
    assert run_problems(either, (1, 2, 2, 1)) == []
    assert run_problems(either, (1, 2, 1, 2)) != []  # blocked_id = 2: b's shard too
    by_ids = SingleShard("SELECT 1 FROM users WHERE id = ANY(%s)", (Key("users", "id", 0),))
    assert run_problems(by_ids, ([7, 7],)) == []
    assert run_problems(by_ids, ([7, 8],)) == [
        "its shard keys carry 2 users in one execution: [7, 8]"
    ]
    assert run_problems(by_ids, ([None],)) != []


def test_a_statement_without_sharded_tables_needs_no_key() -> None:
    reference_only = SingleShard("SELECT mode_epoch FROM graph_epoch", ())
    assert static_problems(reference_only) == [] and run_problems(reference_only, None) == []
    assert static_problems(SingleShard("SELECT id FROM users", ())) == [
        "users is read without its shard key"
    ]
