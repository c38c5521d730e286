"""The read path: home_feed -> (populate) -> read candidates -> merge -> hydrate -> filter.

Candidates are the reader's home timeline (pushed authors) plus the lists of pulled authors
(celebrities, authors whose backfill is running, the reader's own posts), all read in one
round trip. Below a list's horizon the reader pulls from the post store instead (lazy loading
of older items). With the timeline store down the page comes from the post store alone
(`partial: true`); with the post store down, what the cache holds is served (`partial: true`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ..cursor import CursorCodec
from ..engagement import EngagementEvents
from ..errors import NotFound, PostStoreUnavailable, TimelineStoreUnavailable
from ..model import FeedPage, ListRead, Post, ReaderGraph
from ..paging import check_limit
from ..ports import GraphStore, PostStore, TimelineStore
from ..posting.bodies import PostBodies
from ..telemetry import FEED_READ_SECONDS, NO_TELEMETRY, Telemetry
from .manager import FeedManager
from .merge import Stream, merge_newest_first, select_visible, stream_from_fetch

log = logging.getLogger(__name__)

# Extra ids read per source beyond the page size, so filtering rarely forces a second round.
FETCH_SLACK = 10
# Rounds of (read sources, merge, filter) per page; past this a short page is returned with a
# cursor that resumes exactly where the merge stopped.
MAX_FEED_ROUNDS = 8


class _TimelineNotReady(Exception):
    """The optimistic first read found no ready timeline (missing, or being rebuilt)."""


@dataclass(slots=True)
class _ReadTrace:
    """How one page was assembled, for the read-duration metric's outcome."""

    rebuilt: bool = False  # a timeline or an author list was rebuilt from the post store
    lazy: bool = False  # items past a list's cap came from the post store

    def outcome(self, partial: bool) -> str:
        if partial:
            return "partial"
        if self.rebuilt:
            return "rebuilt"
        return "lazy" if self.lazy else "cached"


class HomeFeed:
    def __init__(
        self,
        graph: GraphStore,
        posts: PostStore,
        timelines: TimelineStore,
        feeds: FeedManager,
        bodies: PostBodies,
        cursors: CursorCodec,
        events: EngagementEvents,
        *,
        active_days: int,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self._telemetry = telemetry
        self._graph = graph
        self._posts = posts
        self._timelines = timelines
        self._feeds = feeds
        self._bodies = bodies
        self._cursors = cursors
        self._events = events
        self._active_days = active_days

    def home_feed(self, reader_id: int, cursor: str | None, limit: int) -> FeedPage:
        started = time.perf_counter()
        limit = check_limit(limit)
        below = self._cursors.decode_int("feed", cursor, "b")
        graph = self._graph.reader_graph(reader_id, self._active_days)
        if graph is None:
            raise NotFound(f"user {reader_id} not found")
        if graph.touch_due:
            # Before any rebuild: from here on fan-out treats the reader as active.
            self._graph.touch_active(reader_id)
        trace = _ReadTrace()
        try:
            items, next_below, degraded, timeline_ok = self._assemble(graph, below, limit, trace)
            partial = degraded or not timeline_ok
        except TimelineStoreUnavailable:
            log.warning(
                "timeline store failed during home feed of %s; reading the post store",
                reader_id,
                exc_info=True,
            )
            items, next_below = self._page_from_post_store(graph, below, limit)
            partial = True
        next_cursor = self._cursors.encode_int("feed", "b", next_below) if next_below else None
        self._events.impressions(reader_id, items)
        self._telemetry.observe(
            FEED_READ_SECONDS, time.perf_counter() - started, outcome=trace.outcome(partial)
        )
        return FeedPage(items, next_cursor, partial)

    def _assemble(
        self, graph: ReaderGraph, below: int | None, limit: int, trace: _ReadTrace
    ) -> tuple[list[Post], int | None, bool, bool]:
        """The page, and whether the timeline was usable. A reader seen recently is read at
        once: the first round trip tells whether the timeline is there (one Redis round trip
        fewer than asking first); only when it is not, or the reader was inactive, is the
        timeline populated (rebuilt) and the page read again."""
        if not graph.inactive:
            try:
                return (*self._page(graph, below, limit, True, trace, missing_raises=True), True)
            except _TimelineNotReady:
                pass
        graph, timeline_ok, trace.rebuilt = self._feeds.populate(graph)
        return (*self._page(graph, below, limit, timeline_ok, trace), timeline_ok)

    def warm(self, reader_id: int, limit: int) -> bool:
        """Prewarm: rebuild the reader's timeline if it is missing and put the first page's
        posts in the cache, exactly as a first read would, but without counting as one (no
        impressions, no activity touch). False for an unknown user."""
        limit = check_limit(limit)
        graph = self._graph.reader_graph(reader_id, self._active_days)
        if graph is None:
            return False
        graph, timeline_ok, _ = self._feeds.populate(graph)
        self._page(graph, None, limit, timeline_ok, _ReadTrace())
        return True

    # -- page assembly -------------------------------------------------------------------------

    def _author_stream(
        self, author_id: int, read: ListRead, below: int | None, fetch: int, trace: _ReadTrace
    ) -> Stream:
        """An author's ids below the cursor: the author list while the cursor is above its
        horizon, the post store beneath it (lazy loading), rebuilding a missing list."""
        if read.ready and (below is None or below > read.horizon):
            return stream_from_fetch(read.ids, fetch, read.horizon)
        if not read.ready:
            trace.rebuilt = True
            rebuilt = self._feeds.rebuild_author_list(author_id)
            if below is None or below > rebuilt.horizon:
                ids = [i for i in rebuilt.ids if below is None or i < below][:fetch]
                return stream_from_fetch(ids, fetch, rebuilt.horizon)
        trace.lazy = True
        return stream_from_fetch(self._posts.author_post_ids(author_id, below, fetch), fetch, 0)

    def _page(
        self,
        graph: ReaderGraph,
        below: int | None,
        limit: int,
        timeline_ok: bool,
        trace: _ReadTrace,
        *,
        missing_raises: bool = False,
    ) -> tuple[list[Post], int | None, bool]:
        visible, pulled, pushed = graph.feed_sources()
        fetch = limit + FETCH_SLACK
        page: list[Post] = []
        degraded = False
        use_timeline = timeline_ok
        timeline_horizon = 0
        for round_ in range(MAX_FEED_ROUNDS):
            read_timeline = use_timeline and (below is None or below > timeline_horizon)
            authors = pulled if read_timeline else pulled + pushed
            timeline, lists = self._timelines.read_candidates(
                graph.reader_id if read_timeline else None, authors, below, fetch
            )
            streams: list[Stream] = []
            if timeline is not None:
                if not timeline.ready:
                    if missing_raises and round_ == 0:
                        raise _TimelineNotReady  # nothing read yet: populate, then read again
                    use_timeline = False  # vanished since the check: read its authors directly
                    continue
                timeline_horizon = timeline.horizon
                if below is not None and below <= timeline_horizon:
                    trace.lazy = True
                    continue  # the cursor is past the timeline's end: lazy-load from the authors
                streams.append(stream_from_fetch(timeline.ids, fetch, timeline.horizon))
            for author_id, read in lists.items():
                try:
                    streams.append(self._author_stream(author_id, read, below, fetch, trace))
                except PostStoreUnavailable:
                    log.warning("author %s unavailable for this page", author_id, exc_info=True)
                    degraded = True
            merged = merge_newest_first(streams, below=below)
            done = 0
            while len(page) < limit and done < len(merged.ids):
                batch = merged.ids[done : done + max(limit - len(page), 8)]
                posts, hydrate_degraded = self._bodies.get_many(batch)
                degraded = degraded or hydrate_degraded
                got, last = select_visible(batch, posts, visible, limit - len(page))
                page.extend(got)
                done += batch.index(last) + 1 if last is not None else len(batch)
            if len(page) >= limit:
                exhausted = merged.floor == 0 and done >= len(merged.ids)
                return page, (None if exhausted else page[-1].id), degraded
            if merged.floor == 0:
                return page, None, degraded
            below = merged.floor
        # Filtering ate several rounds: return what we have; the cursor resumes at the floor.
        return page, below, degraded

    def _page_from_post_store(
        self, graph: ReaderGraph, below: int | None, limit: int
    ) -> tuple[list[Post], int | None]:
        """Degraded read with the timeline store down: one query over the visible authors
        (complete, slower)."""
        authors = sorted(graph.visible_authors())
        posts = self._posts.posts_by_authors(authors, below, limit + 1)
        more = len(posts) > limit
        posts = posts[:limit]
        return posts, (posts[-1].id if more else None)
