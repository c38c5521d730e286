"""Deadlines for PostgreSQL calls, enforced from one daemon thread.

libpq has no client-side timeout for a query: a server that is stopped (SIGSTOP, a frozen VM)
still has the kernel acknowledge TCP, so neither keepalives nor TCP_USER_TIMEOUT fire, and
statement_timeout runs on the very server that does not answer. At the deadline the watchdog
shuts the connection's socket down; libpq's blocked read returns at once and psycopg raises
OperationalError (an outage, to the adapter), and the pool discards the broken connection.
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool


class QueryWatchdog:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Any]] = []
        self._live: set[int] = set()
        self._cut: set[int] = set()
        self._ids = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, conn: Any, seconds: float) -> int:
        """Watch `conn` (a psycopg connection) until disarmed or `seconds` have passed."""
        token = next(self._ids)
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="pg-query-watchdog", daemon=True
                )
                self._thread.start()
            heapq.heappush(self._heap, (time.monotonic() + seconds, token, conn))
            self._live.add(token)
            self._cond.notify()
        return token

    def disarm(self, token: int) -> bool:
        """Stop watching; True if the deadline had already cut the connection (the caller
        must close it so the pool does not hand it out again)."""
        with self._cond:
            self._live.discard(token)
            if token in self._cut:
                self._cut.discard(token)
                return True
            return False

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)  # disarmed: forget it
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, token, conn = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                self._live.discard(token)
                self._cut.add(token)
                _cut(conn)  # under the lock: a disarm that returns False was never cut


def _cut(conn: Any) -> None:
    try:
        fd = conn.pgconn.socket
    except Exception:  # already closed or broken: nothing left to cut
        return
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()


WATCHDOG = QueryWatchdog()


@contextmanager
def bounded_connection(
    pool: ConnectionPool, seconds: float, wait: float | None = None
) -> Iterator[psycopg.Connection]:
    """A pooled connection whose use is bounded: a server that stops answering (hung, not
    down) would block libpq's read for as long as TCP keeps the connection, so the watchdog
    shuts the socket down at the deadline and the call fails as an outage. `wait`: how long to
    wait for a connection (None: the pool's own timeout)."""
    with pool.connection(timeout=wait) as conn:
        token = WATCHDOG.arm(conn, seconds)
        try:
            yield conn
        finally:
            if WATCHDOG.disarm(token):
                conn.close()  # cut at its deadline: the pool must not reuse it
