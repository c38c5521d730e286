"""The feed policy, in one place (as Mastodon's FeedManager): what goes into whose home timeline.

- push / retract: a post into (out of) followers' timelines (fan-out jobs);
- merge on follow, unmerge on unfollow and block: an author's recent posts into (out of) one
  reader's timeline;
- backfill: an author's recent posts into many timelines (an author leaving pull mode);
- populate: rebuild a reader's timeline from the author lists (a returning user, or one whose
  timeline was evicted or dropped);
- author lists: each author's recent post ids, rebuilt from the post store when missing.

The filter (visible authors, deleted posts) is applied at read time by `merge.select_visible`;
the timeline store (`ports.TimelineStore`) owns every key and keeps each write idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from ..errors import PostStoreUnavailable
from ..model import LIST_READY, ListRead, Post, ReaderGraph
from ..ports import GraphStore, PostStore, TimelineStore
from ..telemetry import NO_TELEMETRY, TIMELINE_REBUILDS, Telemetry
from .merge import Stream, merge_newest_first

log = logging.getLogger(__name__)


class Populated(NamedTuple):
    graph: ReaderGraph
    usable: bool  # the timeline can be read (False: a rebuild could not finish)
    rebuilt: bool


class FeedManager:
    def __init__(
        self,
        timelines: TimelineStore,
        posts: PostStore,
        graph: GraphStore,
        *,
        active_days: int,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self._timelines = timelines
        self._posts = posts
        self._graph = graph
        self._active_days = active_days
        self._telemetry = telemetry

    @property
    def max_len(self) -> int:
        return self._timelines.max_len

    # -- author lists --------------------------------------------------------------------------

    def rebuild_author_list(self, author_id: int) -> ListRead:
        max_len = self._timelines.max_len
        # Mark first, so a post created while we read the post store is merged in, not lost.
        self._timelines.begin_author_rebuild(author_id)
        ids = self._posts.author_post_ids(author_id, None, max_len)
        horizon = ids[-1] if len(ids) >= max_len else 0
        self._timelines.commit_author_posts(author_id, ids, horizon)
        return ListRead(LIST_READY, horizon, ids)

    def recent_posts(self, author_ids: Sequence[int]) -> dict[int, ListRead]:
        """Each author's whole recent list (up to the cap), rebuilt where missing."""
        lists = self._timelines.author_lists(author_ids, None, self._timelines.max_len)
        for author_id, read in lists.items():
            if not read.ready:
                lists[author_id] = self.rebuild_author_list(author_id)
        return lists

    def add_post(self, author_id: int, post_id: int) -> None:
        """A new post into its author's list (a missing list stays missing: its rebuild reads
        the post store, which already has the post)."""
        self._timelines.add_author_post(author_id, post_id)

    def recache(self, post: Post) -> None:
        """A post's body into the cache as the post store has it now (a live body never
        replaces a tombstone)."""
        self._timelines.cache_posts([post])

    def hide_post(self, deleted: Post) -> None:
        """A deleted post: its tombstone into the post cache (a cache fill never overwrites
        it), then out of its author's list. Idempotent; the retract job runs it again."""
        self._timelines.cache_posts([deleted])
        self._timelines.remove_author_post(deleted.author_id, deleted.id)

    # -- fan-out writes ------------------------------------------------------------------------

    def push(self, follower_ids: Iterable[int], post_id: int) -> int:
        """A new post into each follower's timeline that exists; returns how many were written."""
        return self._timelines.push(follower_ids, [post_id])

    def retract(self, follower_ids: Iterable[int], post_id: int) -> None:
        self._timelines.remove(follower_ids, [post_id])

    def backfill(self, follower_ids: Iterable[int], author_id: int) -> int:
        """The author's recent posts into each follower's timeline; returns how many timelines
        were written. The list's horizon travels along: below it those timelines are not
        complete."""
        recent = self.recent_posts([author_id])[author_id]
        if not recent.ids:
            return 0
        return self._timelines.push(follower_ids, recent.ids, horizon=recent.horizon)

    # -- one reader's graph changes --------------------------------------------------------------

    def merge_into(self, reader_id: int, author_id: int) -> None:
        """Follow: the author's recent posts into the reader's timeline (if it exists)."""
        self.backfill([reader_id], author_id)

    def unmerge_from(self, reader_id: int, author_id: int) -> None:
        """Unfollow, block: the author's recent posts out of the reader's timeline. Reads filter
        such authors anyway; removing them frees the timeline's room."""
        recent = self.recent_posts([author_id])[author_id]
        self._timelines.remove([reader_id], recent.ids)

    # -- populate -------------------------------------------------------------------------------

    def populate(self, graph: ReaderGraph) -> Populated:
        """Make the reader's timeline ready, rebuilding it when it is missing, still building,
        or stale (the reader was inactive, so fan-out skipped them). Returns the graph as read
        (re-read if a rebuild ran), whether the timeline is usable and whether it was rebuilt."""
        state = self._timelines.timeline_state(graph.reader_id)
        if state.ready and not graph.inactive:
            return Populated(graph, True, False)
        self._telemetry.count(TIMELINE_REBUILDS, cause="stale" if state.ready else "missing")
        self._timelines.begin_timeline_rebuild(graph.reader_id)
        # Re-read the graph now that fan-out writes into this timeline: a followee that switched
        # to push just before must be in the rebuild, or its backfill could pass us by.
        graph = self._graph.reader_graph(graph.reader_id, self._active_days) or graph
        return Populated(graph, self._rebuild_timeline(graph), True)

    def _rebuild_timeline(self, graph: ReaderGraph) -> bool:
        max_len = self._timelines.max_len
        streams: list[Stream] = []
        lists = self._timelines.author_lists(graph.pushed_authors(), None, max_len)
        ok = True
        for author_id, read in lists.items():
            if not read.ready:
                try:
                    read = self.rebuild_author_list(author_id)
                except PostStoreUnavailable:
                    log.warning("author list %s could not be rebuilt", author_id, exc_info=True)
                    ok = False
                    continue
            streams.append(Stream(read.ids, read.horizon))
        if not ok:
            return False  # leave it `building`: the next read tries again, nothing half-marked
        merged = merge_newest_first(streams)
        ids, horizon = merged.ids, merged.floor
        if len(ids) > max_len:
            ids, horizon = ids[:max_len], ids[max_len - 1]
        self._timelines.commit_timeline(graph.reader_id, ids, horizon)
        return True
