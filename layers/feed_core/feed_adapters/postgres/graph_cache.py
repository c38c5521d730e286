"""Readers' graphs kept in process memory between reads, validated on every read.

A feed read needs the reader's followees (with their fan-out modes), mutes and blocks; for a
reader following 500 authors that is 500 rows joined, sent and parsed on every read, most of
the read's time. The graph changes rarely, so the store keeps it here with the two versions it
was read at (`users.graph_version`, `graph_epoch.mode_epoch`, migration 0006) and each read asks
PostgreSQL only for the reader's row: when both versions still match, the edges are not sent.

The versions change in the same transaction as every change they cover, and a read takes them
from the same snapshot as the edges, so a cached graph is never older than the row it is
checked against: a follow, block or mute is seen by the very next read, on every process. This
is why the cache is not in Redis: invalidating a Redis copy after the PostgreSQL commit could
fail and leave a block unseen.

Bounded by edges, not readers (a graph of 5,000 followees weighs as much as 100 small ones).

With a read replica, graphs come from two servers, one of them late. Both versions come from
one sequence and only grow, so a graph is older than another exactly when either version is
lower: the cache never takes an older graph in place of a newer one (two reads of one reader
racing, one on each server), and the store sends the replica's answer back to the primary
when it is older than the cached graph (graph_store.py), so what a process hands out for a
reader never goes back in time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple

from newsfeed.model import ReaderGraph

# About 100 bytes per edge in CPython (dict slot, int objects): ~20 MB at the bound.
GRAPH_CACHE_EDGES = 200_000


class CachedGraph(NamedTuple):
    version: int  # users.graph_version the edges were read at
    epoch: int  # graph_epoch.mode_epoch the modes were read at
    # As last returned; handed out again while its activity flags still hold, so the views it
    # derives once (ReaderGraph.feed_sources) serve every read.
    graph: ReaderGraph

    def older_than(self, other: CachedGraph) -> bool:
        return self.version < other.version or self.epoch < other.epoch

    @property
    def edges(self) -> int:
        g = self.graph
        return 1 + len(g.followees) + len(g.muted) + len(g.blocked)


class ReaderGraphCache:
    """A least-recently-used map of reader id -> CachedGraph, bounded by total edges. Shared by
    the threads of one process (fan-out pipelines run beside requests), hence the lock."""

    def __init__(self, max_edges: int = GRAPH_CACHE_EDGES) -> None:
        self._max_edges = max_edges
        self._graphs: OrderedDict[int, CachedGraph] = OrderedDict()
        self._edges = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._graphs)

    def get(self, reader_id: int) -> CachedGraph | None:
        """The graph cached for this reader, whatever its versions: the read sends them, so
        PostgreSQL leaves the edges out while they still match. Counts as a use."""
        with self._lock:
            cached = self._graphs.get(reader_id)
            if cached is not None:
                self._graphs.move_to_end(reader_id)
            return cached

    def put(self, reader_id: int, graph: CachedGraph) -> None:
        """Keep `graph` for the reader, unless the one held is newer (see the module's
        docstring)."""
        if graph.edges > self._max_edges:
            return  # one giant graph would evict everything else
        with self._lock:
            old = self._graphs.get(reader_id)
            if old is not None and graph.older_than(old):
                self._graphs.move_to_end(reader_id)
                return
            old = self._graphs.pop(reader_id, None)
            if old is not None:
                self._edges -= old.edges
            self._graphs[reader_id] = graph
            self._edges += graph.edges
            while self._edges > self._max_edges:
                _, evicted = self._graphs.popitem(last=False)
                self._edges -= evicted.edges

    def clear(self) -> None:
        with self._lock:
            self._graphs.clear()
            self._edges = 0
