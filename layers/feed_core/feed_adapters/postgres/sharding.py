"""Where every statement of the graph adapter would run once PostgreSQL is sharded by user id
(Citus or Aurora PostgreSQL Limitless; docs/sharding.md).

The statements stay where they are written (graph_store.py); this module lists each by its
text, whitespace collapsed, as one of:

- `SINGLE_SHARD`: every sharded table it names is filtered by the shard key of the copy it is
  read from (`Key`: table, column, and the parameter compared with it), and at run time all
  those parameters carry one and the same user id, so the statement runs on that user's shard
  (a statement naming only reference tables, or no table, has no key and runs on any node);
- `CROSS_SHARD`: reviewed, with why and how it would run.

The tables as sharded (`SHARD_KEYS`): `users` by id; `follows` and `blocks` kept twice, once
by each side, so each direction is read on one shard; `mutes` by the muter only (never read
from the muted side). `REFERENCE_TABLES` are copied to every node: reading them costs no other
shard, writing them writes every node.

tests/shard_rule.py checks every statement the test suite sends from this package against
these lists, and fails on any statement that is on neither. Not imported by the application.
"""

from __future__ import annotations

from dataclasses import dataclass

from .graph_store import (
    _BUMP_GRAPH_VERSION,
    _BUMP_MODE_EPOCH,
    _DROP_AUTHOR_MODE,
    _READER_GRAPH_SQL,
    _SET_AUTHOR_MODE,
    _USER_COLUMNS,
    PostgresGraphStore,
)
from .replica import _AURORA_LAG_SQL, _STANDBY_STATUS_SQL, PRIMARY_POSITION_SQL

# Each sharded table's copies, by the column each copy is sharded by.
SHARD_KEYS: dict[str, tuple[str, ...]] = {
    "users": ("id",),
    "follows": ("follower_id", "followee_id"),
    "blocks": ("blocker_id", "blocked_id"),
    "mutes": ("muter_id",),
}
# On every node: small, and written only with fan-out mode changes.
REFERENCE_TABLES: frozenset[str] = frozenset({"graph_epoch", "author_modes"})
# PostgreSQL's own catalogs, on every node (the replica router's checks).
SYSTEM_TABLES: frozenset[str] = frozenset({"pg_proc"})
# The replica router's checks (replica.py): sent only where a replica is configured, so the
# replica's tests (test_pg_replica.py) send them, not the run of every graph operation.
REPLICA_CHECKS: frozenset[str] = frozenset(
    " ".join(sql.split()) for sql in (PRIMARY_POSITION_SQL, _STANDBY_STATUS_SQL, _AURORA_LAG_SQL)
)


def normalise(sql: str) -> str:
    """A statement's identity here: its text with every run of whitespace one space."""
    return " ".join(sql.split())


@dataclass(frozen=True)
class Key:
    """`column` (as the statement writes it, alias included) is compared with parameter `param`
    (a position for %s, a name for %(name)s); the statement reads the copy of `table` sharded
    by that column."""

    table: str
    column: str
    param: int | str


@dataclass(frozen=True)
class SingleShard:
    sql: str
    keys: tuple[Key, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "sql", normalise(self.sql))


@dataclass(frozen=True)
class CrossShard:
    sql: str
    why: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "sql", normalise(self.sql))


_UID = Key("users", "id", 0)  # the most common key: WHERE id = %s, first parameter
_PAGE_COLUMNS = ", ".join(f"u.{c.strip()}" for c in _USER_COLUMNS.split(","))
_NOT_BLOCKED = PostgresGraphStore._NOT_BLOCKED

SINGLE_SHARD: tuple[SingleShard, ...] = (
    SingleShard(f"SELECT {_USER_COLUMNS} FROM users WHERE id = %s", (_UID,)),
    SingleShard("SELECT 1 FROM users WHERE id = %s", (_UID,)),
    SingleShard("SELECT fanout_mode FROM users WHERE id = %s", (_UID,)),
    SingleShard(
        "SELECT backfill_job FROM users WHERE id = %s AND fanout_mode = 'push_pending'", (_UID,)
    ),
    SingleShard("UPDATE users SET last_active_at = now() WHERE id = %s", (_UID,)),
    # Follow, unfollow and block lock their two users one statement each, in id order.
    SingleShard("SELECT fanout_mode, follower_count FROM users WHERE id = %s FOR UPDATE", (_UID,)),
    # The profile's owner u: its row, the blocks u made (by blocker) and u received (by blocked).
    SingleShard(
        "SELECT EXISTS (SELECT 1 FROM blocks"
        " WHERE (blocker_id = %(u)s AND blocked_id = %(v)s)"
        " OR (blocker_id = %(v)s AND blocked_id = %(u)s)) FROM users WHERE id = %(u)s",
        (
            Key("users", "id", "u"),
            Key("blocks", "blocker_id", "u"),
            Key("blocks", "blocked_id", "u"),
        ),
    ),
    # (a, b, b, a): a's blocks of b by blocker, b's blocks of a by blocked: both on a's shard.
    SingleShard(
        "SELECT 1 FROM blocks WHERE (blocker_id = %s AND blocked_id = %s)"
        " OR (blocker_id = %s AND blocked_id = %s)",
        (Key("blocks", "blocker_id", 0), Key("blocks", "blocked_id", 3)),
    ),
    SingleShard(
        "UPDATE users SET fanout_mode = 'push', backfill_job = NULL WHERE id = %s"
        " AND fanout_mode = 'push_pending' AND backfill_job = %s",
        (_UID,),
    ),
    # A follow's or unfollow's counters: one statement per side, each on its user's shard.
    SingleShard(
        "UPDATE users SET following_count = following_count + %s,"
        " graph_version = nextval('graph_version_seq') WHERE id = %s",
        (Key("users", "id", 1),),
    ),
    SingleShard(
        "UPDATE users SET follower_count = follower_count + %s, fanout_mode = %s,"
        " backfill_job = CASE WHEN %s THEN %s ELSE backfill_job END,"
        " backfill_at = CASE WHEN %s THEN now() ELSE backfill_at END WHERE id = %s",
        (Key("users", "id", 5),),
    ),
    SingleShard(
        "INSERT INTO mutes (muter_id, muted_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (Key("mutes", "muter_id", 0),),
    ),
    SingleShard(
        "DELETE FROM mutes WHERE muter_id = %s AND muted_id = %s", (Key("mutes", "muter_id", 0),)
    ),
    SingleShard(
        "SELECT 1 FROM follows WHERE follower_id = %s AND followee_id = %s",
        (Key("follows", "follower_id", 0),),
    ),
    # The feed's graph: the reader's row, followees (by follower), mutes, blocks both ways; the
    # modes and the epoch from reference tables.
    SingleShard(
        _READER_GRAPH_SQL,
        (
            Key("users", "u.id", "r"),
            Key("follows", "f.follower_id", "r"),
            Key("mutes", "muter_id", "r"),
            Key("blocks", "blocker_id", "r"),
            Key("blocks", "blocked_id", "r"),
        ),
    ),
    # Fan-out's follower pages, by followee.
    SingleShard(
        "SELECT follower_id FROM follows WHERE followee_id = %s AND follower_id > %s"
        " ORDER BY follower_id LIMIT %s",
        (Key("follows", "followee_id", 0),),
    ),
    SingleShard(
        "SELECT follower_id FROM follows WHERE followee_id = %(a)s"
        " AND follower_id > %(lo)s AND follower_id <= %(hi)s ORDER BY follower_id",
        (Key("follows", "followee_id", "a"),),
    ),
)

_DISTRIBUTED_WRITE = "one distributed transaction with the graph change's other shard"

CROSS_SHARD: tuple[CrossShard, ...] = (
    CrossShard(
        "INSERT INTO users (id, auth_subject, handle, display_name) VALUES (%s, %s, %s, %s)"
        f" RETURNING {_USER_COLUMNS}",
        "the row is on its id's shard, but auth_subject and lower(handle) are unique over all"
        " users: sharded, each becomes a lookup table sharded by itself, written in the same"
        " distributed transaction (no unique index can leave its shard)",
    ),
    CrossShard(
        f"SELECT {_USER_COLUMNS} FROM users WHERE auth_subject = %s",
        "sign-in: the caller's id is not known yet, so every shard is asked; sharded, the"
        " auth_subject lookup table gives the id on one shard (ProfileService caches the id"
        " per process, so a read pays this once per process and caller)",
    ),
    CrossShard(
        "SELECT id FROM users WHERE id = ANY(%s)",
        "existence of both users of an unblock, mute or unmute (two shards), or of one page's"
        " owner (one); no foreign key can check a row on another shard",
    ),
    CrossShard(
        _BUMP_GRAPH_VERSION,
        "new graph versions for both users of a block or unblock (two shards; the muter alone"
        " for a mute), locked in id order by a FOR UPDATE that Citus refuses across shards:"
        " one UPDATE per user in id order at the move, a round trip more for those two",
    ),
    CrossShard(
        "INSERT INTO follows (follower_id, followee_id) VALUES (%s, %s)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        "the edge goes into both copies, on the follower's and the followee's shard:"
        f" {_DISTRIBUTED_WRITE}",
    ),
    CrossShard(
        "DELETE FROM follows WHERE follower_id = %s AND followee_id = %s RETURNING 1",
        f"the edge leaves both copies: {_DISTRIBUTED_WRITE}",
    ),
    CrossShard(
        "INSERT INTO blocks (blocker_id, blocked_id) VALUES (%s, %s)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        f"both copies (by blocker, by blocked): {_DISTRIBUTED_WRITE}",
    ),
    CrossShard(
        "DELETE FROM blocks WHERE blocker_id = %s AND blocked_id = %s",
        f"both copies: {_DISTRIBUTED_WRITE}",
    ),
    CrossShard(
        _BUMP_MODE_EPOCH,
        "graph_epoch is a reference table: a write reaches every node (two-phase commit);"
        " only with fan-out mode changes",
    ),
    CrossShard(
        _SET_AUTHOR_MODE, "author_modes is a reference table: every node; only with a mode change"
    ),
    CrossShard(
        _DROP_AUTHOR_MODE,
        "author_modes is a reference table: every node; only when a backfill ends",
    ),
    CrossShard(
        "UPDATE users SET backfill_at = now() WHERE id IN ("
        " SELECT id FROM users WHERE fanout_mode = 'push_pending'"
        " AND backfill_job IS NOT NULL"
        " AND backfill_at < now() - make_interval(secs => %s)"
        " ORDER BY backfill_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id, backfill_job",
        "repair job, every minute: pending backfills of any author, on every shard (each an"
        " index scan of users_pending_backfill_idx, almost always empty); its FOR UPDATE SKIP"
        " LOCKED needs one shard, so at the move it runs per shard",
    ),
    CrossShard(
        f"SELECT {_PAGE_COLUMNS} FROM follows f JOIN users u ON u.id = f.follower_id"
        f" WHERE f.followee_id = %s AND f.follower_id > %s{_NOT_BLOCKED}"
        " ORDER BY f.follower_id LIMIT %s",
        "a followers page: the edges are on the followee's shard, each follower's profile and"
        " blocks on the follower's; sharded, ids from the copy by followee, then the profiles by"
        " id (a round trip more, up to a page's worth of shards)",
    ),
    CrossShard(
        f"SELECT {_PAGE_COLUMNS} FROM follows f JOIN users u ON u.id = f.followee_id"
        f" WHERE f.follower_id = %s AND f.followee_id > %s{_NOT_BLOCKED}"
        " ORDER BY f.followee_id LIMIT %s",
        "a following page: as the followers page, from the copy by follower",
    ),
    CrossShard(
        "SELECT f.follower_id FROM follows f JOIN users u ON u.id = f.follower_id"
        " WHERE f.followee_id = %(a)s"
        " AND f.follower_id > %(lo)s AND f.follower_id <= %(hi)s"
        " AND u.last_active_at >= now() - make_interval(days => %(days)s)"
        " ORDER BY f.follower_id",
        "a fan-out chunk's active followers: the edges are on the author's shard, each"
        " follower's activity on the follower's; sharded, drop the join and let the push skip"
        " followers without a timeline (1.43x the rows; docs/sharding.md)",
    ),
    CrossShard(
        "SELECT last_active_at, id FROM users"
        " WHERE last_active_at >= now() - make_interval(hours => %(h)s)"
        " ORDER BY last_active_at DESC, id DESC LIMIT %(n)s",
        "prewarm's scan of recently active users (every 5 minutes): every shard's index, the"
        " router merges the pages (ORDER BY ... LIMIT pushed to each shard)",
    ),
    CrossShard(
        "SELECT last_active_at, id FROM users"
        " WHERE last_active_at >= now() - make_interval(hours => %(h)s)"
        " AND (last_active_at, id) < (%(at)s, %(id)s)"
        " ORDER BY last_active_at DESC, id DESC LIMIT %(n)s",
        "prewarm's next pages: as its first",
    ),
    CrossShard(
        "SELECT id FROM users WHERE id = ANY(%s)"
        " AND last_active_at >= now() - make_interval(days => %s)",
        "cleanup (daily): activity of 500 timeline owners a batch, spread over every shard",
    ),
    CrossShard(
        PRIMARY_POSITION_SQL,
        "the read replica router's sample of the primary's WAL position (replica.py), at most"
        " every REPLICA_CHECK_MS: sharded, each shard group has its own primary and replicas,"
        " so the router samples each group it reads from",
    ),
    CrossShard(
        _STANDBY_STATUS_SQL,
        "the router's check of how far a standby has replayed: per shard group, as above",
    ),
    CrossShard(
        _AURORA_LAG_SQL,
        "the router's check of an Aurora cluster's readers' lag: per cluster, as above",
    ),
)
