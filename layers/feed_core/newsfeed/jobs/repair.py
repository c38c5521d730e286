"""The repair job (the scheduled `repair` function): finishes the follow-up work that a write
committed but could not hand on, so nothing acknowledged is lost even if the client never
retries.

The outbox is the post document itself: a new post is stored pending delivery and a deleted one
pending retraction, in the same write that commits it; the fan-out job clears the mark when
its work is done or durably queued. A post still marked some minutes later lost its job (the
queue was down when it was created or deleted, or the job died before the mark was cleared):
the repair queues it again. Every job is idempotent, so a post repaired while its own job is
merely slow is delivered once all the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..fanout.jobs import FanoutJob, PushPost, RetractPost
from ..ids import lowest_id_at
from ..ports import FanoutQueue, PostStore

# A post younger than this may still be in the hands of the request or job that wrote it.
MIN_AGE_SECONDS = 120
BATCH = 500  # jobs per send


@dataclass(frozen=True, slots=True)
class RepairReport:
    delivered: int  # posts whose fan-out job was queued again
    retracted: int  # deleted posts whose retract job was queued again
    seconds: float

    def to_dict(self) -> dict[str, int | float]:
        return {"delivered": self.delivered, "retracted": self.retracted, "seconds": self.seconds}


class PendingRepair:
    def __init__(
        self,
        posts: PostStore,
        queue: FanoutQueue,
        *,
        max_posts: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._posts = posts
        self._queue = queue
        self._max_posts = max_posts
        self._clock = clock

    def run(self, older_than_id: int | None = None) -> RepairReport:
        t0 = time.monotonic()
        below = older_than_id or lowest_id_at(int((self._clock() - MIN_AGE_SECONDS) * 1000))
        delivered = self._requeue("deliver", below, lambda p: PushPost(p.author_id, p.id))
        retracted = self._requeue("retract", below, lambda p: RetractPost(p.author_id, p.id))
        return RepairReport(delivered, retracted, round(time.monotonic() - t0, 3))

    def _requeue(self, follow_up: str, below: int, job_of: Callable[..., FanoutJob]) -> int:
        posts = self._posts.pending_posts(follow_up, below, self._max_posts)
        for start in range(0, len(posts), BATCH):
            self._queue.send([job_of(p) for p in posts[start : start + BATCH]])
        return len(posts)
