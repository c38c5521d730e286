"""Users, follows, blocks and mutes in PostgreSQL (psycopg 3 with a connection pool).

Counts change in the same transaction as the edge, and the two user rows an edge touches are
locked in id order, so A-follows-B and B-follows-A at the same time cannot deadlock.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import psycopg
from psycopg import errors as pg_errors

from newsfeed.errors import Conflict, DuplicateId, Forbidden, GraphStoreUnavailable, NotFound
from newsfeed.fanout.rule import Threshold, mode_after_count
from newsfeed.model import BlockChange, FollowChange, ReaderGraph, User
from newsfeed.telemetry import NO_TELEMETRY, Telemetry

from ..translate import StoreBreaker, unavailable_on
from .graph_cache import CachedGraph, ReaderGraphCache
from .replica import PRIMARY_POSITION_SQL, REPLICA, ReplicaRouter, SharedPins
from .watchdog import bounded_connection

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

_USER_COLUMNS = (
    "id, auth_subject, handle, display_name, follower_count, following_count, fanout_mode,"
    " created_at, last_active_at"
)


# The reader's row first (its graph version, the mode epoch, activity flags, whether the
# versions the caller holds are stale, and whether they are newer than this server's: a
# replica that has not replayed what the caller already saw), then the edges, sent only when
# stale and not behind (a NULL version, nothing cached, is always stale and never behind). The
# `send` InitPlan runs once; when false each edge scan is skipped by its one-time filter.
# The followees' modes come from author_modes, not from their users rows, so every row read is
# keyed by the reader: one shard once users are sharded (sharding.py).
_READER_GRAPH_SQL = """
WITH me AS (
    SELECT u.graph_version, e.mode_epoch,
           u.last_active_at < now() - make_interval(days => %(days)s) AS inactive,
           u.last_active_at < now() - interval '1 minute' AS touch_due,
           (u.graph_version, e.mode_epoch) IS DISTINCT FROM (%(v)s::bigint, %(e)s::bigint)
               AS stale,
           coalesce(u.graph_version < %(v)s::bigint OR e.mode_epoch < %(e)s::bigint, false)
               AS behind
      FROM users u CROSS JOIN graph_epoch e WHERE u.id = %(r)s
), send AS (SELECT stale AND NOT behind AS edges FROM me)
SELECT 'u', graph_version, NULL, inactive, touch_due, mode_epoch, stale, behind FROM me
UNION ALL
SELECT 'f', f.followee_id, coalesce(m.fanout_mode, 'push'), NULL, NULL, NULL, NULL, NULL
  FROM follows f LEFT JOIN author_modes m ON m.author_id = f.followee_id
 WHERE f.follower_id = %(r)s AND (SELECT edges FROM send)
UNION ALL
SELECT 'm', muted_id, NULL, NULL, NULL, NULL, NULL, NULL FROM mutes
 WHERE muter_id = %(r)s AND (SELECT edges FROM send)
UNION ALL
SELECT 'b', blocked_id, NULL, NULL, NULL, NULL, NULL, NULL FROM blocks
 WHERE blocker_id = %(r)s AND (SELECT edges FROM send)
UNION ALL
SELECT 'b', blocker_id, NULL, NULL, NULL, NULL, NULL, NULL FROM blocks
 WHERE blocked_id = %(r)s AND (SELECT edges FROM send)
"""


class _GraphRows(NamedTuple):
    """One answer of _READER_GRAPH_SQL."""

    version: int
    epoch: int
    inactive: bool
    touch_due: bool
    stale: bool
    behind: bool
    followees: dict[int, str]
    muted: frozenset[int]
    blocked: frozenset[int]


def _graph_rows(rows: Sequence[Sequence[Any]]) -> _GraphRows | None:
    me = None
    followees: dict[int, str] = {}
    muted: set[int] = set()
    blocked: set[int] = set()
    for kind, other, mode, inactive, touch_due, epoch, stale, behind in rows:
        if kind == "u":
            me = (other, epoch, bool(inactive), bool(touch_due), bool(stale), bool(behind))
        elif kind == "f":
            followees[other] = mode
        elif kind == "m":
            muted.add(other)
        else:
            blocked.add(other)
    if me is None:
        return None
    return _GraphRows(*me, followees, frozenset(muted), frozenset(blocked))


# A new graph version for these users (in the transaction that changed their edges), their rows
# locked in id order as `_lock_pair` does, so it cannot deadlock with a concurrent follow.
_BUMP_GRAPH_VERSION = (
    "UPDATE users SET graph_version = nextval('graph_version_seq') WHERE id IN"
    " (SELECT id FROM users WHERE id = ANY(%s) ORDER BY id FOR UPDATE)"
)
# A new mode epoch (in the transaction that changed a user's fanout_mode).
_BUMP_MODE_EPOCH = "UPDATE graph_epoch SET mode_epoch = nextval('graph_version_seq')"
# The copy of a mode the graph read joins (migration 0007), in the same transaction: a row for
# an author in pull or push_pending mode, none in push.
_SET_AUTHOR_MODE = (
    "INSERT INTO author_modes (author_id, fanout_mode) VALUES (%s, %s)"
    " ON CONFLICT (author_id) DO UPDATE SET fanout_mode = excluded.fanout_mode"
)
_DROP_AUTHOR_MODE = "DELETE FROM author_modes WHERE author_id = %s"


def _user(row: Sequence[Any]) -> User:
    return User(*row)


T = TypeVar("T")


# Connection refused or lost, server shutting down, statement cancelled by its timeout, and the
# pool's own timeout waiting for a connection (psycopg_pool.PoolTimeout is one of these).
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (psycopg.OperationalError,)
# Raised by a server that answers: waiting too long for a row lock or a statement (the server's
# own lock_timeout / statement_timeout, set below the watchdog's deadline), a deadlock, a
# serialization failure. 503, but the server is up: the breaker stays closed.
BUSY_ERRORS: tuple[type[BaseException], ...] = (
    pg_errors.LockNotAvailable,
    pg_errors.QueryCanceled,
    pg_errors.DeadlockDetected,
    pg_errors.SerializationFailure,
)


def make_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 4,
    wait_seconds: float = 30.0,
    statement_timeout_ms: int | None = None,
    name: str = "feed",
) -> ConnectionPool:
    """A small pool: a Lambda instance serves one request at a time, a few background threads
    (fan-out pipelines) may share it. `wait_seconds`: how long a caller waits for a connection
    before PoolTimeout (GraphStoreUnavailable). Autocommit: every statement commits inside the
    query watchdog's window (an implicit transaction committed after it would be unguarded,
    and dropped with a connection the watchdog cut). `statement_timeout_ms` sets the server's
    own statement and lock timeouts, so a lock wait ends as a clean error, not a cut socket."""
    from psycopg_pool import ConnectionPool

    kwargs: dict[str, Any] = {"connect_timeout": 5, "autocommit": True}
    if statement_timeout_ms:
        kwargs["options"] = (
            f"-c statement_timeout={statement_timeout_ms} -c lock_timeout={statement_timeout_ms}"
        )

    return ConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        kwargs=kwargs,
        timeout=wait_seconds,
        open=True,
        name=name,
    )


@unavailable_on(UNAVAILABLE_ERRORS, GraphStoreUnavailable, BUSY_ERRORS)
class PostgresGraphStore:
    def __init__(
        self,
        pool: ConnectionPool,
        *,
        query_timeout_ms: int = 30_000,
        telemetry: Telemetry = NO_TELEMETRY,
        replica_pool: ConnectionPool | None = None,
        replica_max_lag_ms: int = 1_000,
        replica_check_ms: int = 250,
        shared_pins: SharedPins | None = None,
    ) -> None:
        """`replica_pool`: a read replica's; the reads that tolerate lag go to it while it is
        healthy and caught up (replica.py). None: every read on the primary."""
        self._pool = pool
        self._query_timeout = query_timeout_ms / 1000
        self.breaker = StoreBreaker("postgres", telemetry)
        self._graph_cache = ReaderGraphCache()
        self.replica: ReplicaRouter | None = None
        if replica_pool is not None:
            self.replica = ReplicaRouter(
                replica_pool,
                self._primary_position,
                max_lag_ms=replica_max_lag_ms,
                check_ms=replica_check_ms,
                query_timeout_ms=query_timeout_ms,
                telemetry=telemetry,
                shared_pins=shared_pins,
            )

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """A primary connection, bounded by the query watchdog (watchdog.py)."""
        with bounded_connection(self._pool, self._query_timeout) as conn:
            yield conn

    def _primary_position(self) -> int | None:
        """The primary's WAL insert position, for the replica's lag check; None when the
        primary does not answer (or is known not to: its breaker is open), which the check
        survives."""
        if self.breaker.is_open:
            return None
        try:
            with self._connection() as conn:
                row = conn.execute(PRIMARY_POSITION_SQL).fetchone()
        except psycopg.Error:
            return None
        return row[0] if row else None

    def _read(
        self,
        users: Sequence[int | None],
        query: Callable[[psycopg.Connection], T],
        *,
        again_if: Callable[[T], bool] | None = None,
        as_of_ms: int = 0,
    ) -> T:
        """Run a read that tolerates lag: on the replica when the router says so, else (and
        when the replica fails, or its answer says NotFound or `again_if`) on the primary.
        `users`: whom the read concerns (a pinned one sends it to the primary); `as_of_ms`:
        the replica must hold every commit before then (ReplicaRouter.route). The primary
        answers alone while its breaker probes: the probe must reach the primary."""
        replica = self.replica
        if replica is None:
            with self._connection() as conn:
                return query(conn)
        if self.breaker.is_open:
            route = "probe"
        else:
            route = replica.route((u for u in users if u), as_of_ms=as_of_ms)
        if route == REPLICA:
            try:
                with replica.connection() as conn:
                    result = query(conn)
            except NotFound:
                route = "retried"  # absent there may be new here: users are never deleted
            except Exception as exc:  # whatever the replica did, the primary answers
                replica.failed(exc)
                route = "failed"
            else:
                if again_if is None or not again_if(result):
                    replica.count(REPLICA)
                    return result
                route = "retried"
        replica.count(route)
        with self._connection() as conn:
            return query(conn)

    def _wrote(self, *user_ids: int) -> None:
        """After the commit of a write of these users' rows: their reads in this process go
        to the primary until the replica must have it (read-your-writes)."""
        if self.replica is not None:
            self.replica.pin(*user_ids)

    # -- users -------------------------------------------------------------------------------

    def create_user(self, user_id: int, auth_subject: str, handle: str, display_name: str) -> User:
        """Raises DuplicateId when the id is taken (a snowflake collision: the caller retries)."""
        try:
            with self._connection() as conn:
                row = conn.execute(
                    f"INSERT INTO users (id, auth_subject, handle, display_name)"
                    f" VALUES (%s, %s, %s, %s) RETURNING {_USER_COLUMNS}",
                    (user_id, auth_subject, handle, display_name),
                ).fetchone()
        except pg_errors.UniqueViolation as exc:
            constraint = exc.diag.constraint_name or ""
            if "auth_subject" in constraint:
                raise Conflict("this account already has a profile") from exc
            if "handle" in constraint:
                raise Conflict(f"handle {handle!r} is taken") from exc
            if constraint == "users_pkey":
                raise DuplicateId(f"user {user_id} exists") from exc
            raise Conflict("user already exists") from exc
        assert row is not None
        self._wrote(user_id)
        return _user(row)

    def get_user(self, user_id: int) -> User | None:
        with self._connection() as conn:
            row = conn.execute(
                f"SELECT {_USER_COLUMNS} FROM users WHERE id = %s", (user_id,)
            ).fetchone()
        return _user(row) if row else None

    def get_user_by_subject(self, auth_subject: str) -> User | None:
        with self._connection() as conn:
            row = conn.execute(
                f"SELECT {_USER_COLUMNS} FROM users WHERE auth_subject = %s", (auth_subject,)
            ).fetchone()
        return _user(row) if row else None

    def user_exists(self, user_id: int) -> bool:
        with self._connection() as conn:
            return (
                conn.execute("SELECT 1 FROM users WHERE id = %s", (user_id,)).fetchone() is not None
            )

    def user_hidden_from(self, user_id: int, viewer_id: int | None) -> bool | None:
        """None when `user_id` is no user; else whether a block (either way) stands between
        them. One round trip: existence and the block together."""
        with self._connection() as conn:
            row = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM blocks"
                " WHERE (blocker_id = %(u)s AND blocked_id = %(v)s)"
                " OR (blocker_id = %(v)s AND blocked_id = %(u)s)) FROM users WHERE id = %(u)s",
                {"u": user_id, "v": viewer_id},  # a NULL viewer matches no block
            ).fetchone()
        return None if row is None else bool(row[0])

    def touch_active(self, user_id: int) -> None:
        with self._connection() as conn:
            conn.execute("UPDATE users SET last_active_at = now() WHERE id = %s", (user_id,))
        # The replica would still call the reader inactive (another rebuild) or due a touch.
        self._wrote(user_id)

    def fanout_mode(self, user_id: int) -> str | None:
        with self._connection() as conn:
            row = conn.execute("SELECT fanout_mode FROM users WHERE id = %s", (user_id,)).fetchone()
        return row[0] if row else None

    def backfill_job(self, author_id: int) -> str | None:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT backfill_job FROM users WHERE id = %s AND fanout_mode = 'push_pending'",
                (author_id,),
            ).fetchone()
        return row[0] if row else None

    def claim_stale_backfills(self, older_than_seconds: int, limit: int) -> list[tuple[int, str]]:
        """(author, job) of crossings to push still pending after `older_than_seconds`, their
        clock restarted: the next claim of the same one waits as long again (a backlog of
        slow backfills is not re-queued every minute)."""
        with self._connection() as conn:
            rows = conn.execute(
                "UPDATE users SET backfill_at = now() WHERE id IN ("
                " SELECT id FROM users WHERE fanout_mode = 'push_pending'"
                " AND backfill_job IS NOT NULL"
                " AND backfill_at < now() - make_interval(secs => %s)"
                " ORDER BY backfill_at LIMIT %s FOR UPDATE SKIP LOCKED)"
                " RETURNING id, backfill_job",
                (older_than_seconds, limit),
            ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def finish_backfill(self, author_id: int, job_id: str) -> bool:
        """Compare-and-set: a backfill finishing must not finish a newer crossing (whose own
        backfill covers followers it did not plan) nor undo a crossing back to pull."""
        with self._connection() as conn, conn.transaction():
            cur = conn.execute(
                "UPDATE users SET fanout_mode = 'push', backfill_job = NULL WHERE id = %s"
                " AND fanout_mode = 'push_pending' AND backfill_job = %s",
                (author_id, job_id),
            )
            if cur.rowcount != 1:
                return False
            conn.execute(_DROP_AUTHOR_MODE, (author_id,))
            conn.execute(_BUMP_MODE_EPOCH)
            return True

    # -- edges -------------------------------------------------------------------------------

    @staticmethod
    def _lock_pair(conn: psycopg.Connection, a: int, b: int) -> dict[int, tuple[str, int]]:
        # One row a statement, in id order: each stays on its user's shard once sharded (Citus
        # refuses FOR UPDATE across shards), and the order still keeps concurrent follows of A
        # and B from deadlocking.
        found = {}
        for user_id in sorted({a, b}):
            row = conn.execute(
                "SELECT fanout_mode, follower_count FROM users WHERE id = %s FOR UPDATE",
                (user_id,),
            ).fetchone()
            if row is not None:
                found[user_id] = (row[0], row[1])
        for user_id in (a, b):
            if user_id not in found:
                raise NotFound(f"user {user_id} not found")
        return found

    @staticmethod
    def _blocked_either(conn: psycopg.Connection, a: int, b: int) -> bool:
        return (
            conn.execute(
                "SELECT 1 FROM blocks WHERE (blocker_id = %s AND blocked_id = %s)"
                " OR (blocker_id = %s AND blocked_id = %s)",
                (a, b, b, a),
            ).fetchone()
            is not None
        )

    @staticmethod
    def _count_change(
        conn: psycopg.Connection,
        follower: int,
        followee: int,
        mode: str,
        count: int,
        delta: int,
        threshold: Threshold,
    ) -> FollowChange:
        conn.execute(
            "UPDATE users SET following_count = following_count + %s,"
            " graph_version = nextval('graph_version_seq') WHERE id = %s",
            (delta, follower),
        )
        new_mode, crossing = mode_after_count(mode, count + delta, threshold)
        if new_mode != mode:
            # Only a backfill makes an author push again (finish_backfill drops the row).
            conn.execute(_SET_AUTHOR_MODE, (followee, new_mode))
            conn.execute(_BUMP_MODE_EPOCH)
        # A crossing to push_pending names the one backfill job that may finish it.
        job = uuid.uuid4().hex if crossing == "to_push_pending" else None
        conn.execute(
            "UPDATE users SET follower_count = follower_count + %s, fanout_mode = %s,"
            " backfill_job = CASE WHEN %s THEN %s ELSE backfill_job END,"
            " backfill_at = CASE WHEN %s THEN now() ELSE backfill_at END WHERE id = %s",
            (delta, new_mode, job is not None, job, job is not None, followee),
        )
        return FollowChange(follower, followee, True, new_mode, crossing, job)

    def follow(self, follower: int, followee: int, threshold: Threshold) -> FollowChange:
        with self._connection() as conn, conn.transaction():
            locked = self._lock_pair(conn, follower, followee)
            if self._blocked_either(conn, follower, followee):
                raise Forbidden("cannot follow: one of you blocks the other")
            inserted = conn.execute(
                "INSERT INTO follows (follower_id, followee_id) VALUES (%s, %s)"
                " ON CONFLICT DO NOTHING RETURNING 1",
                (follower, followee),
            ).fetchone()
            mode, count = locked[followee]
            if inserted:
                change = self._count_change(conn, follower, followee, mode, count, +1, threshold)
            else:
                change = FollowChange(follower, followee, False, mode)
        # Also when it changed nothing: the follow it found may be another process's, not
        # replayed yet; the caller's next read must show it all the same.
        self._wrote(follower, followee)
        return change

    def _unfollow_in(
        self,
        conn: psycopg.Connection,
        follower: int,
        followee: int,
        mode: str,
        count: int,
        threshold: Threshold,
    ) -> FollowChange:
        deleted = conn.execute(
            "DELETE FROM follows WHERE follower_id = %s AND followee_id = %s RETURNING 1",
            (follower, followee),
        ).fetchone()
        if not deleted:
            return FollowChange(follower, followee, False, mode)
        return self._count_change(conn, follower, followee, mode, count, -1, threshold)

    def unfollow(self, follower: int, followee: int, threshold: Threshold) -> FollowChange:
        with self._connection() as conn, conn.transaction():
            locked = self._lock_pair(conn, follower, followee)
            mode, count = locked[followee]
            change = self._unfollow_in(conn, follower, followee, mode, count, threshold)
        self._wrote(follower, followee)
        return change

    def block(self, blocker: int, blocked: int, threshold: Threshold) -> BlockChange:
        """Block and drop the follow edges in both directions, in one transaction."""
        with self._connection() as conn, conn.transaction():
            locked = self._lock_pair(conn, blocker, blocked)
            inserted = conn.execute(
                "INSERT INTO blocks (blocker_id, blocked_id) VALUES (%s, %s)"
                " ON CONFLICT DO NOTHING RETURNING 1",
                (blocker, blocked),
            ).fetchone()
            if inserted:
                conn.execute(_BUMP_GRAPH_VERSION, ([blocker, blocked],))
            removed: list[FollowChange] = []
            for follower, followee in ((blocker, blocked), (blocked, blocker)):
                mode, count = locked[followee]
                change = self._unfollow_in(conn, follower, followee, mode, count, threshold)
                if change.changed:
                    removed.append(change)
        self._wrote(blocker, blocked)
        return BlockChange(bool(inserted), removed)

    def unblock(self, blocker: int, blocked: int) -> bool:
        with self._connection() as conn, conn.transaction():
            self._require_users(conn, blocker, blocked)
            cur = conn.execute(
                "DELETE FROM blocks WHERE blocker_id = %s AND blocked_id = %s", (blocker, blocked)
            )
            if removed := cur.rowcount == 1:
                conn.execute(_BUMP_GRAPH_VERSION, ([blocker, blocked],))
        self._wrote(blocker, blocked)
        return removed

    def mute(self, muter: int, muted: int) -> bool:
        with self._connection() as conn, conn.transaction():
            self._require_users(conn, muter, muted)
            cur = conn.execute(
                "INSERT INTO mutes (muter_id, muted_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (muter, muted),
            )
            if added := cur.rowcount == 1:
                conn.execute(_BUMP_GRAPH_VERSION, ([muter],))
        self._wrote(muter)
        return added

    def unmute(self, muter: int, muted: int) -> bool:
        with self._connection() as conn, conn.transaction():
            self._require_users(conn, muter, muted)
            cur = conn.execute(
                "DELETE FROM mutes WHERE muter_id = %s AND muted_id = %s", (muter, muted)
            )
            if removed := cur.rowcount == 1:
                conn.execute(_BUMP_GRAPH_VERSION, ([muter],))
        self._wrote(muter)
        return removed

    @staticmethod
    def _require_users(conn: psycopg.Connection, *user_ids: int) -> None:
        rows = conn.execute("SELECT id FROM users WHERE id = ANY(%s)", (list(user_ids),)).fetchall()
        found = {r[0] for r in rows}
        for user_id in user_ids:
            if user_id not in found:
                raise NotFound(f"user {user_id} not found")

    def is_following(self, follower: int, followee: int) -> bool:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT 1 FROM follows WHERE follower_id = %s AND followee_id = %s",
                (follower, followee),
            ).fetchone()
        return row is not None

    def blocked_either(self, a: int, b: int) -> bool:
        with self._connection() as conn:
            return self._blocked_either(conn, a, b)

    # -- reads -------------------------------------------------------------------------------

    def reader_graph(self, reader_id: int, active_days: int) -> ReaderGraph | None:
        """Followees with their mode, mutes and blocks (both directions), plus activity flags, in
        ONE round trip. Time comparisons use the database clock, the same one fan-out uses to
        pick active followers, so "skipped by fan-out" and "rebuild on read" always agree.

        The edges come from this process's cache when the versions it holds still match the
        reader's row (graph_cache.py): then PostgreSQL sends one row, not one per edge."""
        cached = self._graph_cache.get(reader_id)
        params = {
            "r": reader_id,
            "days": active_days,
            "v": cached.version if cached else None,
            "e": cached.epoch if cached else None,
        }
        # A replica that lacks the reader, or is behind the versions this process already
        # holds, is not asked to decide: the primary is (never older than anything seen).
        read = self._read(
            (reader_id,),
            lambda conn: _graph_rows(conn.execute(_READER_GRAPH_SQL, params).fetchall()),
            again_if=lambda r: r is None or r.behind,
        )
        if read is None:
            return None
        if cached is not None and (read.behind or not read.stale):
            # Behind on the primary: a read of this process that began later put a newer
            # graph meanwhile; the one sent is newer than this answer still.
            graph = cached.graph
            if graph.inactive == read.inactive and graph.touch_due == read.touch_due:
                return graph
            graph = dataclasses.replace(graph, inactive=read.inactive, touch_due=read.touch_due)
            version, epoch = cached.version, cached.epoch
        else:
            graph = ReaderGraph(
                reader_id,
                read.followees,
                read.muted,
                read.blocked,
                read.inactive,
                read.touch_due,
            )
            version, epoch = read.version, read.epoch
        self._graph_cache.put(reader_id, CachedGraph(version, epoch, graph))
        return graph

    # Users in a block with the viewer, either way; two NOT EXISTS so each probe is a
    # primary-key (or blocks_blocked_blocker_idx) lookup. A NULL viewer matches no block.
    _NOT_BLOCKED = (
        " AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = u.id AND b.blocked_id = %s)"
        " AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = %s AND b.blocked_id = u.id)"
    )

    def _users_page(
        self, sql: str, user_id: int, after_id: int | None, limit: int, viewer_id: int | None
    ) -> list[User]:
        def page(conn: psycopg.Connection) -> list[User]:
            self._require_users(conn, user_id)
            rows = conn.execute(
                sql, (user_id, after_id or 0, viewer_id, viewer_id, limit)
            ).fetchall()
            return [_user(r) for r in rows]

        # Lag tolerated: a follow of the last second may be missing from someone else's view
        # of the list, never from the list of a user who made it (pinned).
        return self._read((user_id, viewer_id), page)

    def followers_page(
        self, user_id: int, after_id: int | None, limit: int, viewer_id: int | None = None
    ) -> list[User]:
        """Followers in ascending id order after `after_id` (keyset on followee_id, follower_id),
        without the users in a block with `viewer_id`: the filter is in the query, so a page is
        full whatever it skips."""
        cols = ", ".join(f"u.{c.strip()}" for c in _USER_COLUMNS.split(","))
        return self._users_page(
            f"SELECT {cols} FROM follows f JOIN users u ON u.id = f.follower_id"
            f" WHERE f.followee_id = %s AND f.follower_id > %s{self._NOT_BLOCKED}"
            " ORDER BY f.follower_id LIMIT %s",
            user_id,
            after_id,
            limit,
            viewer_id,
        )

    def following_page(
        self, user_id: int, after_id: int | None, limit: int, viewer_id: int | None = None
    ) -> list[User]:
        cols = ", ".join(f"u.{c.strip()}" for c in _USER_COLUMNS.split(","))
        return self._users_page(
            f"SELECT {cols} FROM follows f JOIN users u ON u.id = f.followee_id"
            f" WHERE f.follower_id = %s AND f.followee_id > %s{self._NOT_BLOCKED}"
            " ORDER BY f.followee_id LIMIT %s",
            user_id,
            after_id,
            limit,
            viewer_id,
        )

    def follower_ids_page(self, author_id: int, after_id: int, limit: int) -> list[int]:
        # The fan-out head's list: always the primary (FanoutJobHandler._run_head says why).
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT follower_id FROM follows WHERE followee_id = %s AND follower_id > %s"
                " ORDER BY follower_id LIMIT %s",
                (author_id, after_id, limit),
            ).fetchall()
        return [r[0] for r in rows]

    def follower_ids_in_range(
        self,
        author_id: int,
        after_id: int,
        upto_id: int,
        *,
        active_days: int | None,
        as_of_ms: int = 0,
    ) -> list[int]:
        """Followers in (after_id, upto_id]; only those seen within `active_days` if given.
        With `as_of_ms` (a fan-out chunk's: when its head read the followers) the replica
        answers once it holds every commit before then; without, the primary."""
        if active_days is None:
            sql = (
                "SELECT follower_id FROM follows WHERE followee_id = %(a)s"
                " AND follower_id > %(lo)s AND follower_id <= %(hi)s ORDER BY follower_id"
            )
        else:
            sql = (
                "SELECT f.follower_id FROM follows f JOIN users u ON u.id = f.follower_id"
                " WHERE f.followee_id = %(a)s"
                " AND f.follower_id > %(lo)s AND f.follower_id <= %(hi)s"
                " AND u.last_active_at >= now() - make_interval(days => %(days)s)"
                " ORDER BY f.follower_id"
            )
        params = {"a": author_id, "lo": after_id, "hi": upto_id, "days": active_days}

        def followers(conn: psycopg.Connection) -> list[int]:
            return [r[0] for r in conn.execute(sql, params).fetchall()]

        if not as_of_ms:
            with self._connection() as conn:
                return followers(conn)
        return self._read((), followers, as_of_ms=as_of_ms)

    # -- scheduled jobs ------------------------------------------------------------------------

    def recently_active_page(
        self, within_hours: int, after: tuple[datetime, int] | None, limit: int
    ) -> list[tuple[datetime, int]]:
        """(last_active_at, id) of users seen within `within_hours`, most recent first; keyset
        paging from `after` (the last row of the previous page)."""
        sql = (
            "SELECT last_active_at, id FROM users"
            " WHERE last_active_at >= now() - make_interval(hours => %(h)s)"
        )
        if after is not None:
            sql += " AND (last_active_at, id) < (%(at)s, %(id)s)"
        sql += " ORDER BY last_active_at DESC, id DESC LIMIT %(n)s"
        params = {"h": within_hours, "n": limit}
        if after is not None:
            params.update(at=after[0], id=after[1])
        # A scan for the prewarm job: a second's lag moves who is warmed, nothing else.
        return self._read((), lambda conn: [(r[0], r[1]) for r in conn.execute(sql, params)])

    def inactive_among(self, user_ids: Sequence[int], active_days: int) -> set[int]:
        """The ids not seen within `active_days`, or no longer users at all."""
        if not user_ids:
            return set()

        def active(conn: psycopg.Connection) -> set[int]:
            rows = conn.execute(
                "SELECT id FROM users WHERE id = ANY(%s)"
                " AND last_active_at >= now() - make_interval(days => %s)",
                (list(user_ids), active_days),
            ).fetchall()
            return {r[0] for r in rows}

        # The cleanup job's check: a user who came back within the lag may still look inactive
        # there (the job spares timelines rebuilt in the last 10 minutes), unless this process
        # saw the touch (pinned).
        return set(user_ids) - self._read(user_ids, active)
