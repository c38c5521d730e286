"""The repair job (the scheduled `repair` function): finishes the follow-up work that a write
committed but could not hand on, so nothing acknowledged is lost even if the client never
retries.

The outbox is the written record itself: a new post is stored pending delivery and a deleted
one pending retraction, in the same write that commits it, and an author crossing back to push
keeps its named backfill and when it started on its row. The jobs clear the marks when their
work is done or durably queued. A mark still there some minutes later lost its job (the queue
was down, or the job died): the repair queues it again. Every job is idempotent, so work
repaired while its own job is merely slow is done once all the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..fanout.jobs import BackfillAuthor, FanoutJob, PushPost, RetractPost
from ..ids import lowest_id_at
from ..ports import FanoutQueue, GraphStore, PostStore

# A post younger than this may still be in the hands of the request or job that wrote it.
MIN_AGE_SECONDS = 120
BATCH = 500  # jobs per send


@dataclass(frozen=True, slots=True)
class RepairReport:
    delivered: int  # posts whose fan-out job was queued again
    retracted: int  # deleted posts whose retract job was queued again
    backfills: int  # crossings to push whose backfill job was queued again
    seconds: float

    def to_dict(self) -> dict[str, int | float]:
        return {
            "delivered": self.delivered,
            "retracted": self.retracted,
            "backfills": self.backfills,
            "seconds": self.seconds,
        }


class PendingRepair:
    def __init__(
        self,
        posts: PostStore,
        graph: GraphStore,
        queue: FanoutQueue,
        *,
        max_posts: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._posts = posts
        self._graph = graph
        self._queue = queue
        self._max_posts = max_posts
        self._clock = clock

    def run(
        self, older_than_id: int | None = None, min_age_seconds: int = MIN_AGE_SECONDS
    ) -> RepairReport:
        t0 = time.monotonic()
        below = older_than_id or lowest_id_at(int((self._clock() - min_age_seconds) * 1000))
        delivered = self._requeue(
            "deliver", below, min_age_seconds, lambda p: PushPost(p.author_id, p.id)
        )
        retracted = self._requeue(
            "retract", below, min_age_seconds, lambda p: RetractPost(p.author_id, p.id)
        )
        # A backfill re-queued while its first run is merely slow is harmless: the job is named,
        # its chunks idempotent, and whichever run completes switches the author to push.
        pending = self._graph.claim_stale_backfills(min_age_seconds, self._max_posts)
        for start in range(0, len(pending), BATCH):
            self._queue.send([BackfillAuthor(a, job) for a, job in pending[start : start + BATCH]])
        return RepairReport(delivered, retracted, len(pending), round(time.monotonic() - t0, 3))

    def _requeue(
        self, follow_up: str, below: int, grace: int, job_of: Callable[..., FanoutJob]
    ) -> int:
        posts = self._posts.claim_pending_posts(follow_up, below, self._max_posts, grace)
        for start in range(0, len(posts), BATCH):
            self._queue.send([job_of(p) for p in posts[start : start + BATCH]])
        return len(posts)
