"""Runs one fan-out job (one SQS message), one method per job type. Every step is idempotent,
so a redelivered message changes nothing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from ..feed.manager import FeedManager
from ..ids import id_to_ms
from ..model import Post
from ..ports import FanoutQueue, GraphStore, PostStore, TimelineStore
from ..telemetry import (
    FANOUT_CHUNK_JOBS,
    FANOUT_JOBS,
    FANOUT_LAG_SECONDS,
    FANOUT_TIMELINES_WRITTEN,
    NO_TELEMETRY,
    Telemetry,
)
from .jobs import (
    BackfillAuthor,
    BackfillAuthorChunk,
    ChunkRange,
    FanoutJob,
    HeadJob,
    MergeAuthor,
    PushPost,
    PushPostChunk,
    RefreshPost,
    RetractPost,
    RetractPostChunk,
    chunk_jobs,
    parse_job,
)
from .rule import plan_chunks

# The `kind` label of the fan-out metrics: one per job type (the wire format's `kind` names the
# head and its chunks alike).
METRIC_KIND: dict[type, str] = {
    PushPost: "push",
    PushPostChunk: "push_chunk",
    RetractPost: "retract",
    RetractPostChunk: "retract_chunk",
    BackfillAuthor: "backfill",
    BackfillAuthorChunk: "backfill_chunk",
    MergeAuthor: "merge",
    RefreshPost: "refresh",
}


class PostMediaRemoval(Protocol):
    def remove_post_media(self, post: Post) -> int: ...


class FanoutJobHandler:
    def __init__(
        self,
        graph: GraphStore,
        posts: PostStore,
        feeds: FeedManager,
        queue: FanoutQueue,
        timelines: TimelineStore,
        *,
        active_days: int,
        chunk_size: int,
        page_size: int,
        telemetry: Telemetry = NO_TELEMETRY,
        wall_ms: Callable[[], float] = lambda: time.time() * 1000,
        media: PostMediaRemoval | None = None,
    ) -> None:
        self._media = media
        self._telemetry = telemetry
        self._wall_ms = wall_ms
        self._graph = graph
        self._posts = posts
        self._feeds = feeds
        self._queue = queue
        self._active_days = active_days
        self._chunk_size = chunk_size
        self._page_size = page_size
        self._timelines = timelines  # backfill bookkeeping (which chunks are done)

    def handle_message(self, body: Any) -> None:
        """A decoded message body: parsed strictly (`InvalidJob` if malformed), then run."""
        try:
            job = parse_job(body)
        except Exception:
            self._telemetry.count(FANOUT_JOBS, kind="invalid", outcome="failed")
            raise
        self.handle(job)

    def handle(self, job: FanoutJob) -> None:
        kind = METRIC_KIND.get(type(job), "unknown")
        try:
            self._run(job)
        except Exception:
            self._telemetry.count(FANOUT_JOBS, kind=kind, outcome="failed")
            raise
        self._telemetry.count(FANOUT_JOBS, kind=kind, outcome="done")

    def _run(self, job: FanoutJob) -> None:
        match job:
            case PushPost():
                self._push_post(job)
            case PushPostChunk():
                if self._is_live(job.post_id):
                    self._push_range(job.author_id, job.post_id, job.span)
            case RetractPost():
                self._retract_post(job)
            case RetractPostChunk():
                self._retract_range(job.author_id, job.post_id, job.span)
            case BackfillAuthor():
                self._backfill_author(job)
            case BackfillAuthorChunk():
                self._backfill_chunk(job)
            case MergeAuthor():
                if self._graph.is_following(
                    job.reader_id, job.author_id
                ) and self._graph.fanout_mode(job.author_id) not in (None, "pull"):
                    self._feeds.merge_into(job.reader_id, job.author_id)
            case RefreshPost():
                post = self._posts.get_post(job.post_id)
                if post is not None:
                    self._feeds.recache(post)
            case _:
                raise TypeError(f"not a fan-out job: {job!r}")

    # -- per kind --------------------------------------------------------------------------------

    def _is_live(self, post_id: int) -> bool:
        """A push (head or chunk) redelivered after the post was deleted (and its retract
        already ran) must not write the id back into timelines. The cache answers first: the
        delete and its retract job both write the tombstone, and a new post's body is cached
        at creation; the post store only on a miss (one Redis GET per chunk job instead of a
        MongoDB read: fan-out lag)."""
        cached = self._timelines.cached_posts([post_id]).get(post_id)
        if cached is not None:
            return not cached.is_deleted
        post = self._posts.get_post(post_id)
        return post is not None and not post.is_deleted

    def _push_post(self, job: PushPost) -> None:
        if not self._is_live(job.post_id):
            return  # a deleted post's pending mark is its retraction's
        # Repairs a timeline store failure in PostService.create; a no-op otherwise.
        self._feeds.add_post(job.author_id, job.post_id)
        if self._graph.fanout_mode(job.author_id) not in (None, "pull"):
            self._run_head(job, lambda span: self._push_range(job.author_id, job.post_id, span))
        # Delivered (pulled, pushed, or its chunk jobs queued): the outbox mark goes.
        self._posts.clear_pending(job.post_id, "deliver")

    def _retract_post(self, job: RetractPost) -> None:
        post = self._posts.get_post(job.post_id)
        if post is None or not post.is_deleted:
            return  # not deleted (a forged or mistaken job): nothing to retract
        # Repeats the delete's own timeline store steps, in case they failed there.
        self._feeds.hide_post(post)
        if self._media is not None and any(m.id is not None for m in post.media):
            # Its uploads' objects go with it. Before the chunks are planned: a bucket fault
            # fails the job, and its redelivery then repeats only the steps above.
            self._media.remove_post_media(post)
        if self._graph.fanout_mode(job.author_id) != "pull":
            self._run_head(job, lambda span: self._retract_range(job.author_id, job.post_id, span))
        # A pull-mode author's post was never pushed (or only before the author became a
        # celebrity): its tombstone hides it, and planning chunks over millions of followers
        # would only time out.
        self._posts.clear_pending(job.post_id, "retract")

    def _backfill_author(self, job: BackfillAuthor) -> None:
        if self._graph.backfill_job(job.author_id) != job.job_id:
            return  # a newer crossing (its own backfill runs), back to pull, or already done
        if self._run_head(job, lambda span: self._backfill_range(job.author_id, span)):
            self._graph.finish_backfill(job.author_id, job.job_id)

    def _backfill_chunk(self, job: BackfillAuthorChunk) -> None:
        if self._graph.backfill_job(job.author_id) != job.job_id:
            return  # superseded: the current crossing's backfill covers these followers
        self._backfill_range(job.author_id, job.span)
        span = job.span
        # Completion counts the chunks of one plan only: two plans' chunk numbers do not cover
        # the same followers.
        done = self._timelines.backfill_chunk_done(
            job.author_id, f"{job.job_id}.{job.plan}", span.chunk, span.chunks
        )
        if done:
            self._graph.finish_backfill(job.author_id, job.job_id)

    # -- shared steps ----------------------------------------------------------------------------

    def _follower_ids(self, author_id: int) -> Iterator[int]:
        after = 0
        while True:
            page = self._graph.follower_ids_page(author_id, after, self._page_size)
            yield from page
            if len(page) < self._page_size:
                return
            after = page[-1]

    def _run_head(self, job: HeadJob, run_range: Callable[[ChunkRange], None]) -> bool:
        """Plan chunks; a single chunk runs here, more are queued. True when all work is done.

        The head reads the follower list from the store of record: it must see every follow
        committed before the post entered the author's list (a follow's merge of that list
        covers it otherwise), and it cannot tell when that was. Its chunks then need only the
        follows committed before this read, `as_of`: a lagging copy that holds those serves."""
        as_of = int(self._wall_ms())
        ranges = list(plan_chunks(self._follower_ids(job.author_id), self._chunk_size))
        if len(ranges) <= 1:
            for after, upto in ranges:
                run_range(ChunkRange(after, upto, 0, 1, as_of))
            return True
        self._queue.send(chunk_jobs(job, ranges, plan=uuid.uuid4().hex[:12], as_of=as_of))
        self._telemetry.count(FANOUT_CHUNK_JOBS, len(ranges), kind=METRIC_KIND[type(job)])
        return False

    def _push_range(self, author_id: int, post_id: int, span: ChunkRange) -> None:
        followers = self._graph.follower_ids_in_range(
            author_id,
            span.after_id,
            span.upto_id,
            active_days=self._active_days,
            as_of_ms=span.as_of,
        )
        written = self._feeds.push(followers, post_id)
        self._telemetry.observe(FANOUT_TIMELINES_WRITTEN, written, kind="push")
        # Measured at every write, redeliveries included: what a follower waits is the last
        # chunk's lag, and a retried chunk is late.
        lag = max(0.0, (self._wall_ms() - id_to_ms(post_id)) / 1000)
        self._telemetry.observe(FANOUT_LAG_SECONDS, lag)

    def _retract_range(self, author_id: int, post_id: int, span: ChunkRange) -> None:
        # All followers, active or not: an inactive one's stale timeline is unioned on rebuild.
        followers = self._graph.follower_ids_in_range(
            author_id, span.after_id, span.upto_id, active_days=None, as_of_ms=span.as_of
        )
        self._feeds.retract(followers, post_id)

    def _backfill_range(self, author_id: int, span: ChunkRange) -> None:
        followers = self._graph.follower_ids_in_range(
            author_id,
            span.after_id,
            span.upto_id,
            active_days=self._active_days,
            as_of_ms=span.as_of,
        )
        written = self._feeds.backfill(followers, author_id)
        self._telemetry.observe(FANOUT_TIMELINES_WRITTEN, written, kind="backfill")
