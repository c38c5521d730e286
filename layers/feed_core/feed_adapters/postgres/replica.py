"""Which reads a PostgreSQL read replica may answer, and when (PostgresGraphStore's router).

A streaming standby replays the primary's WAL a little late. A read may go to it when three
things hold, else it goes to the primary:

- No user the read concerns wrote within the last `max_lag + check` seconds in this process
  (read-your-writes). Every write of a user's rows pins the user for that long, after its
  commit. No LSN is needed: the replica is used only while it holds every commit older than
  `max_lag` (below), so once a pin expires any replica that may answer has the write.
- The replica is known to hold every commit older than `max_lag_ms`. A check, at most every
  `check_ms` and made by the read that finds the last one too old (never one per read, and no
  thread in the background: Lambda freezes those), samples the primary's WAL insert position
  and then the standby's replay position; the replica holds every commit that completed before
  the newest primary sample it has replayed past. When it is behind every sample, the age of
  the last transaction it replayed bounds its lag as well (the one clock-based measure; WAL
  order is commit order). A paused or stuck replay, a broken stream or a busy replica that
  falls behind all show as lag; an idle primary does not (its position does not move).
- For a read stamped `as_of` (a fan-out chunk: when its head job read the follower list, in
  another process's wall clock), the replica holds every commit before `as_of` plus
  AS_OF_MARGIN_SECONDS (clocks of two hosts). A chunk run right after its head is read from
  the primary; the chunks of a wide fan-out that run later, from the replica.
- The replica answered its last call. A replica that is down, hung, cancels a statement (a
  recovery conflict) or is no longer a standby is left alone for a cool-down (2 s, doubling
  while it stays down, up to 30 s); the read that met the fault is answered by the primary.
  Checks and connections to the replica wait at most CHECK_TIMEOUT_SECONDS, so most faults
  cost one request that much, not a whole query timeout.

The router keeps no state in the database: each process checks for itself. Pins are kept in
the process that wrote and, given `shared_pins` (Redis: the composition root passes them),
where every process sees them: on Lambda the social and the feed functions are different
processes, and a follow there must show in the feed function's next read.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

from psycopg import errors as pg_errors

from newsfeed.telemetry import NO_TELEMETRY, STORE_ERRORS, Telemetry

from ..translate import DEFAULT_COOL_DOWN_SECONDS, failure_kind
from .watchdog import bounded_connection

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)

# How far the standby has replayed: its replay position, and how long ago the last transaction
# it replayed committed (NULL until it has replayed one). Not a standby: no use as a replica.
# An Aurora reader (it has aurora_replica_status()) shares the writer's storage and reports its
# lag there, not by replay positions: _AURORA_LAG_SQL instead.
_STANDBY_STATUS_SQL = (
    "SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0')::bigint,"
    " extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8,"
    " EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'aurora_replica_status')"
)
# Aurora: how far the most lagging reader trails the writer, in ms (the reader endpoint hands a
# connection to any reader, so the bound is the worst of them). NULL: no reader reports.
_AURORA_LAG_SQL = (
    "SELECT max(replica_lag_in_msec)::float8 FROM aurora_replica_status()"
    " WHERE session_id <> 'MASTER_SESSION_ID'"
)
# The primary's WAL insert position: past the commit record of every transaction committed
# so far, flushed or not (the local primary runs synchronous_commit=off). Right after a page
# header with no record behind it yet (24 bytes into a page, 40 into a segment's first page;
# no record can end there) it is taken as the page's start, where the last record ended: that
# is as far as a standby's replay position goes, so an idle primary does not look ahead.
PRIMARY_POSITION_SQL = """
SELECT CASE WHEN l % b = 24 OR l % s = 40 THEN l - l % b ELSE l END
  FROM (SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint AS l,
               current_setting('wal_block_size')::bigint AS b,
               pg_size_bytes(current_setting('wal_segment_size')) AS s) w
"""

# Primary samples kept: enough to find one the replica has replayed past while it trails by
# less than a few checks.
_SAMPLES = 16
# A check (a trivial statement) or a wait for a replica connection that takes longer than
# this is a fault: a healthy standby answers in a millisecond or two.
CHECK_TIMEOUT_SECONDS = 0.25
# Cool-down after a replica fault, doubled while it keeps failing, up to this.
MAX_COOL_DOWN_SECONDS = 30.0
# What the wall clocks of two hosts may disagree by (NTP keeps them within milliseconds).
AS_OF_MARGIN_SECONDS = 0.1
# Expired pins are swept when this many are held (a pin lasts about a second).
_PIN_SWEEP = 10_000
# The server answered but gave up on the statement: its timeout, or a recovery conflict (replay
# needed what the query held). Counted as busy; the read still goes to the primary.
_BUSY = (pg_errors.QueryCanceled, pg_errors.SerializationFailure, pg_errors.LockNotAvailable)

REPLICA = "replica"


class SharedPins(Protocol):
    """Pins every process sees (redis/write_pins.py): the social function's writes reach the
    feed function's routing."""

    def pin(self, user_ids: Iterable[int], seconds: float) -> None: ...

    def pinned(self, user_ids: Iterable[int]) -> bool: ...


class NotAStandby(Exception):
    """The replica's server is not (or no longer) in recovery: promoted, or a primary."""


class ReplicaRouter:
    """One per graph store: the replica's pool, what is known of its lag, and the pins.
    Thread-safe (the dev server and fan-out pipelines share a store between threads)."""

    def __init__(
        self,
        pool: ConnectionPool,
        primary_position: Callable[[], int | None],
        *,
        max_lag_ms: int,
        check_ms: int,
        query_timeout_ms: int,
        telemetry: Telemetry = NO_TELEMETRY,
        shared_pins: SharedPins | None = None,
        cool_down: float = DEFAULT_COOL_DOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if check_ms >= max_lag_ms:
            raise ValueError("REPLICA_CHECK_MS must be below REPLICA_MAX_LAG_MS")
        self.pool = pool
        self._primary_position = primary_position  # None when the primary did not answer
        self.max_lag = max_lag_ms / 1000
        self.check_interval = check_ms / 1000
        self._timeout = query_timeout_ms / 1000
        self._wait = min(self._timeout, CHECK_TIMEOUT_SECONDS)
        self._telemetry = telemetry
        self._cool_down = cool_down
        self._clock = clock
        self._wall = wall
        self._samples: deque[tuple[float, int]] = deque(maxlen=_SAMPLES)
        # Every commit that completed (in this process's monotonic time) before `_fresh_at`
        # is on the replica; -inf: nothing known.
        self._fresh_at = -math.inf
        self._checked_at = -math.inf
        self._down_until = -math.inf
        self._failures = 0  # in a row
        self._pins: dict[int, float] = {}
        self._shared = shared_pins
        self._check_lock = threading.Lock()
        # Reads by where they went: "replica", or "primary:<why>" (pinned, unavailable,
        # lagging, failed, retried). For tests and the curious; never reset.
        self.reads: Counter[str] = Counter()

    # -- read-your-writes --------------------------------------------------------------------

    def pin(self, *user_ids: int) -> None:
        """These users just committed a write: read them from the primary until any replica
        that may answer holds it (the lag bound, plus a check's worth of slack)."""
        until = self._clock() + self.max_lag + self.check_interval
        pins = self._pins
        for user_id in user_ids:
            pins[user_id] = until
        if self._shared is not None:
            try:
                self._shared.pin(user_ids, self.max_lag + self.check_interval)
            except Exception:  # committed already: other processes may read it late
                self._telemetry.count(STORE_ERRORS, store="redis", kind="unavailable")
                log.warning("write pin of %s not shared; other processes may lag", user_ids)
        if len(pins) > _PIN_SWEEP:
            now = self._clock()
            for user_id, expiry in list(pins.items()):
                if expiry <= now:
                    pins.pop(user_id, None)

    def pinned(self, user_ids: Iterable[int]) -> bool:
        now = self._clock()
        pins = self._pins
        for user_id in user_ids:
            until = pins.get(user_id)
            if until is not None:
                if until > now:
                    return True
                pins.pop(user_id, None)
        return False

    # -- routing -----------------------------------------------------------------------------

    def route(self, user_ids: Iterable[int] = (), as_of_ms: int = 0) -> str:
        """REPLICA, or why the primary answers: "pinned", "unavailable", "lagging" or, for a
        read that needs every commit before `as_of_ms` (Unix ms), "too_recent"."""
        users = list(user_ids)
        if self.pinned(users):
            return "pinned"
        now = self._clock()
        if now < self._down_until:
            return "unavailable"
        if now - self._checked_at >= self.check_interval and self._check_lock.acquire(
            blocking=False
        ):
            # One thread checks; the others go by what is known meanwhile.
            try:
                self._check_now()
            except Exception as exc:  # any fault of the replica's: read the primary
                self.failed(exc)
                return "unavailable"
            finally:
                self._check_lock.release()
        behind = self._clock() - self._fresh_at
        if behind > self.max_lag:
            return "lagging"
        if as_of_ms and self._wall() - behind < as_of_ms / 1000 + AS_OF_MARGIN_SECONDS:
            return "too_recent"
        if self._shared is not None and users:
            # Pinned by another process (last: only a read bound for the replica pays it).
            try:
                if self._shared.pinned(users):
                    return "pinned"
            except Exception:
                return "pins_unavailable"
        return REPLICA

    def lag(self) -> float:
        """Seconds of commits the replica may lack, as last checked (inf: unknown)."""
        return self._clock() - self._fresh_at

    def _check_now(self) -> None:
        sampled_at = self._clock()
        position = self._primary_position()
        if position is not None:
            self._samples.append((sampled_at, position))
        asked_at = self._clock()
        with bounded_connection(self.pool, self._wait, self._wait) as conn:
            row = conn.execute(_STANDBY_STATUS_SQL).fetchone()
            assert row is not None
            in_recovery, replayed, since_replay, aurora = row
            lag = conn.execute(_AURORA_LAG_SQL).fetchone() if aurora else None
        lag_ms = lag[0] if lag else None
        if aurora:
            # Aurora reports each reader's lag itself; no replay positions to compare.
            if lag_ms is None:
                raise NotAStandby("no Aurora reader reports its lag")
            self._fresh_at = asked_at - max(0.0, lag_ms) / 1000
            self._checked_at = asked_at
            self._failures = 0
            return
        if not in_recovery or replayed is None:
            raise NotAStandby("the replica's server is not a standby")
        fresh_at = max((t for t, p in self._samples if p <= replayed), default=-math.inf)
        if since_replay is not None:
            # The standby's clock against the primary's commit stamps: taken as asked, so the
            # bound errs early.
            fresh_at = max(fresh_at, asked_at - max(0.0, since_replay))
        self._fresh_at = fresh_at
        self._checked_at = asked_at
        self._failures = 0

    def failed(self, exc: BaseException) -> None:
        """A replica call failed: nothing is known of it until it answers again, and no read
        tries it for the cool-down."""
        cool_down = min(self._cool_down * 2**self._failures, MAX_COOL_DOWN_SECONDS)
        self._failures += 1
        self._down_until = self._clock() + cool_down
        self._fresh_at = self._checked_at = -math.inf
        kind = "busy" if isinstance(exc, _BUSY) else failure_kind(exc)
        self._telemetry.count(STORE_ERRORS, store="postgres_replica", kind=kind)
        log.warning("read replica failed (%s); the primary answers for %.1fs", exc, cool_down)

    def count(self, route: str) -> None:
        self.reads[route if route == REPLICA else f"primary:{route}"] += 1

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        # A replica connection that keeps a read waiting is a fault: the primary answers.
        with bounded_connection(self.pool, self._timeout, self._wait) as conn:
            yield conn
