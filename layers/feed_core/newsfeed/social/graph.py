"""Follow, unfollow, block and mute, and what each does to home timelines.

The graph store's commit is the truth; the timeline work after it (merge on follow, unmerge on
unfollow and block, a backfill job when an author drops below the celebrity threshold) is
idempotent, so repeating the call repairs what a failure left half done.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..engagement import EngagementEvents
from ..errors import (
    InvalidInput,
    PostStoreUnavailable,
    QueueUnavailable,
    TimelineStoreUnavailable,
)
from ..fanout.jobs import BackfillAuthor, MergeAuthor
from ..fanout.rule import Threshold
from ..feed.manager import FeedManager
from ..model import FollowChange
from ..ports import FanoutQueue, GraphStore

log = logging.getLogger(__name__)


class SocialGraphService:
    def __init__(
        self,
        graph: GraphStore,
        feeds: FeedManager,
        queue: FanoutQueue,
        events: EngagementEvents,
        *,
        threshold: Threshold,
    ) -> None:
        self._graph = graph
        self._feeds = feeds
        self._queue = queue
        self._events = events
        self._threshold = threshold

    def follow(self, actor_id: int, target_id: int) -> None:
        """Idempotent. Re-running it also re-runs the timeline merge, which repairs a timeline
        store failure after the edge was committed."""
        _not_self(actor_id, target_id, "follow")
        change = self._graph.follow(actor_id, target_id, self._threshold)
        if change.followee_mode != "pull":
            try:
                self._feeds.merge_into(actor_id, target_id)
            except (TimelineStoreUnavailable, PostStoreUnavailable):
                # The follow is committed: its merge becomes a job (503 only if that fails too,
                # and a retry of this idempotent call redoes both).
                log.warning("merge of %s into %s queued", target_id, actor_id, exc_info=True)
                self._queue.send([MergeAuthor(reader_id=actor_id, author_id=target_id)])
        if change.changed:
            self._events.record("follow", actor_id, author_id=target_id)

    def unfollow(self, actor_id: int, target_id: int) -> None:
        _not_self(actor_id, target_id, "unfollow")
        change = self._graph.unfollow(actor_id, target_id, self._threshold)
        self._unmerge(actor_id, target_id)
        self._after_crossings([change])
        if change.changed:
            self._events.record("unfollow", actor_id, author_id=target_id)

    def block(self, actor_id: int, target_id: int) -> None:
        """Block drops the follow edges both ways and unmerges both timelines."""
        _not_self(actor_id, target_id, "block")
        change = self._graph.block(actor_id, target_id, self._threshold)
        self._unmerge(actor_id, target_id)
        self._unmerge(target_id, actor_id)
        self._after_crossings(change.removed_follows)

    def unblock(self, actor_id: int, target_id: int) -> None:
        _not_self(actor_id, target_id, "unblock")
        self._graph.unblock(actor_id, target_id)

    def mute(self, actor_id: int, target_id: int) -> None:
        """Muting only hides at read time, so unmuting brings everything back."""
        _not_self(actor_id, target_id, "mute")
        self._graph.mute(actor_id, target_id)

    def unmute(self, actor_id: int, target_id: int) -> None:
        _not_self(actor_id, target_id, "unmute")
        self._graph.unmute(actor_id, target_id)

    def _unmerge(self, reader_id: int, author_id: int) -> None:
        """Best effort: reads filter authors the reader no longer follows (or blocks), so a
        failure only leaves their posts taking room in the timeline until it is trimmed."""
        try:
            self._feeds.unmerge_from(reader_id, author_id)
        except (TimelineStoreUnavailable, PostStoreUnavailable):
            log.warning("unmerge of %s from %s skipped", author_id, reader_id, exc_info=True)

    def _after_crossings(self, changes: Sequence[FollowChange]) -> None:
        """An author who fell below the threshold (pull -> push_pending) gets a backfill job."""
        jobs = [
            BackfillAuthor(author_id=c.followee_id, job_id=c.backfill_job)
            for c in changes
            if c.crossing == "to_push_pending" and c.backfill_job
        ]
        if jobs:
            try:
                self._queue.send(jobs)
            except QueueUnavailable:
                # The graph change is committed and the author stays push_pending (pulled and
                # pushed: reads are complete); the repair job queues the backfill later.
                log.error(
                    "backfill of %s not queued; repair queues it", [j.author_id for j in jobs]
                )


def _not_self(actor_id: int, target_id: int, verb: str) -> None:
    if actor_id == target_id:
        raise InvalidInput(f"you cannot {verb} yourself")
