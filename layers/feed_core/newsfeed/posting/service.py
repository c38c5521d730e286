"""Create (idempotent with a key), read, list and delete posts.

Write order: the post store (the truth) first, then the timeline store, then the queue; every
step after the first is idempotent, so a retry of the same call redoes only what is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from ..clock import Clock, utcnow
from ..cursor import CursorCodec
from ..engagement import EngagementEvents
from ..errors import (
    Conflict,
    DuplicateId,
    Forbidden,
    InvalidInput,
    NotFound,
    QueueUnavailable,
    TimelineStoreUnavailable,
)
from ..fanout.jobs import PushPost, RetractPost
from ..feed.manager import FeedManager
from ..ids import IdGenerator, id_to_datetime
from ..model import Page, Post
from ..paging import check_limit
from ..ports import FanoutQueue, GraphStore, PostStore
from .bodies import PostBodies
from .rules import IDEMPOTENCY_KEY_HOURS, check_idempotency_key, check_media_ids, check_text

if TYPE_CHECKING:
    from ..media.service import MediaService

log = logging.getLogger(__name__)

ID_COLLISION_RETRIES = 3


class PostService:
    def __init__(
        self,
        graph: GraphStore,
        posts: PostStore,
        bodies: PostBodies,
        feeds: FeedManager,
        queue: FanoutQueue,
        cursors: CursorCodec,
        ids: IdGenerator,
        events: EngagementEvents,
        clock: Clock = utcnow,
        media: MediaService | None = None,
    ) -> None:
        self._media = media
        self._graph = graph
        self._posts = posts
        self._bodies = bodies
        self._feeds = feeds
        self._queue = queue
        self._cursors = cursors
        self._ids = ids
        self._events = events
        self._clock = clock

    def create(
        self,
        author_id: int,
        text: str,
        media_ids: Sequence[int] | None = None,
        idempotency_key: str | None = None,
    ) -> Post:
        """Store the post (pending delivery), then queue its fan-out job (also for a pull-mode
        author: the job adds the post to the author list if that failed here, and clears the
        pending mark).

        With an `idempotency_key`, a retry of the same request returns the same post and redoes
        only the steps that may not have happened (all of them idempotent), so a client that
        lost the response, or got a 503, can retry without creating a duplicate.

        `media_ids` are the author's processed uploads, in the order shown (MediaService.attach
        says what is refused); each goes to this post only.
        """
        text = check_text(text)
        media = check_media_ids(media_ids)
        if media and self._media is None:
            raise InvalidInput("this deployment takes no media")
        idempotency_key = check_idempotency_key(idempotency_key)
        if self._graph.fanout_mode(author_id) is None:
            raise NotFound(f"user {author_id} not found")
        post = self._store_new_post(author_id, text, media, idempotency_key)
        # Stored pending delivery: from here on the post reaches its readers whatever fails
        # next (the fan-out job, or the repair job when the queue is down), so the answer is
        # 201 and never a 503 that invites a duplicate.
        try:
            self._feeds.add_post(author_id, post.id)
            self._bodies.cache([post])
        except TimelineStoreUnavailable:
            # The fan-out job re-adds the post to the author list (idempotently).
            log.warning("timeline store failed after inserting post %s", post.id, exc_info=True)
        try:
            self._queue.send([PushPost(author_id=author_id, post_id=post.id)])
        except QueueUnavailable:
            log.error("fan-out job for post %s not queued; repair delivers it", post.id)
        self._events.record("post", author_id, post_id=post.id, author_id=author_id)
        return post

    def _store_new_post(
        self, author_id: int, text: str, media_ids: tuple[int, ...], idempotency_key: str | None
    ) -> Post:
        """Insert into the post store (the truth); with a key, at most once per key. The media
        are claimed for the post's id first and confirmed once it is stored (MediaService says
        which claims are let go when it is not)."""
        for attempt in range(ID_COLLISION_RETRIES):
            post_id = self._ids.next_id()
            if idempotency_key is not None:
                post_id = self._posts.claim_post_request(
                    author_id,
                    idempotency_key,
                    post_id,
                    expired_before=self._clock() - timedelta(hours=IDEMPOTENCY_KEY_HOURS),
                )
                existing = self._posts.get_post(post_id)
                if existing is not None:
                    _check_replay(existing, text, media_ids)
                    self._confirm(media_ids, post_id)
                    return existing
            # A keyed request's id is its key's: a concurrent retry of it may hold the same
            # claims, so it never lets them go (an unconfirmed one is settled by cleanup).
            items = (
                self._media.attach(
                    author_id, media_ids, post_id, release_on_failure=idempotency_key is None
                )
                if media_ids and self._media is not None
                else ()
            )
            post = Post(post_id, author_id, text, items, id_to_datetime(post_id))
            try:
                self._posts.insert_post(post)
            except DuplicateId:
                if idempotency_key is not None:
                    # A concurrent retry of the same request inserted it first (and holds the
                    # same media, claimed for the same id).
                    existing = self._posts.get_post(post_id)
                    if existing is not None and existing.author_id == author_id:
                        _check_replay(existing, text, media_ids)
                        self._confirm(media_ids, post_id)
                        return existing
                    raise
                # Another post has this id: ours is certainly not stored under it.
                self._release(media_ids, post_id)
                if attempt == ID_COLLISION_RETRIES - 1:
                    raise
                continue
            # Any other failure of the insert leaves the claims unconfirmed: it may have
            # landed, and the cleanup job confirms or lets them go once it knows.
            self._confirm(media_ids, post_id)
            return post
        raise AssertionError("unreachable")

    def _confirm(self, media_ids: tuple[int, ...], post_id: int) -> None:
        if media_ids and self._media is not None:
            self._media.confirm(media_ids, post_id)

    def _release(self, media_ids: tuple[int, ...], post_id: int) -> None:
        if media_ids and self._media is not None:
            self._media.release(media_ids, post_id)

    def get(self, post_id: int, viewer_id: int | None = None) -> Post:
        """The post as `viewer_id` may see it (None: a caller no one can have blocked). Across a
        block, either way, it is not found, as if it did not exist. The author reads their own
        post without the check; anyone else costs one graph lookup."""
        post = self._bodies.get(post_id)
        if post is None or post.is_deleted or self._hidden(post.author_id, viewer_id):
            raise NotFound(f"post {post_id} not found")
        return post

    def _hidden(self, author_id: int, viewer_id: int | None) -> bool:
        if viewer_id is None or viewer_id == author_id:
            return False
        return self._graph.blocked_either(viewer_id, author_id)

    def delete(self, actor_id: int, post_id: int) -> None:
        """Soft delete, idempotent. The post store's mark is the truth; the tombstone in the
        cache (every read path hydrates through it, so the post is gone everywhere at once) and
        the author list follow, and the retract job repeats both before it cleans the
        followers' timelines, so a timeline store failure here is finished by the job."""
        post = self._posts.get_post(post_id)
        # A deleted post is gone for everyone but its author (whose retry stays idempotent):
        # a 403 would tell others it existed, where GET answers 404.
        if post is None or (post.is_deleted and post.author_id != actor_id):
            raise NotFound(f"post {post_id} not found")
        if post.author_id != actor_id:
            raise Forbidden("you can only delete your own posts")
        deleted = self._posts.mark_deleted(post_id, self._clock()) or post
        try:
            self._feeds.hide_post(deleted)
        except TimelineStoreUnavailable:
            log.warning("post %s deleted; its retract job hides it", post_id, exc_info=True)
        try:
            self._queue.send([RetractPost(author_id=post.author_id, post_id=post_id)])
        except QueueUnavailable:
            # Stored pending retraction: the repair job queues it later.
            log.error("retract job for post %s not queued; repair retracts it", post_id)

    def author_posts(
        self, author_id: int, cursor: str | None, limit: int, viewer_id: int | None = None
    ) -> Page[Post]:
        """Newest first. Across a block with `viewer_id`, either way, an empty last page: the
        profile itself stays readable, and a 404 here beside it would tell the block."""
        limit = check_limit(limit)
        below = self._cursors.decode_int("posts", cursor, "b")
        # Existence and the block in one lookup (a block with yourself cannot exist).
        hidden = self._graph.user_hidden_from(author_id, viewer_id)
        if hidden is None:
            raise NotFound(f"user {author_id} not found")
        if hidden:
            return Page([], None)
        posts = self._posts.author_posts(author_id, below, limit + 1)
        more = len(posts) > limit
        posts = posts[:limit]
        return Page(posts, self._cursors.encode_int("posts", "b", posts[-1].id) if more else None)


def _check_replay(existing: Post, text: str, media_ids: tuple[int, ...]) -> None:
    """A retry with the same key returns the first post, unless that cannot be the answer."""
    if existing.text != text or tuple(m.id for m in existing.media) != media_ids:
        raise Conflict("Idempotency-Key was already used for a different post")
    if existing.is_deleted:
        # Returning it would put a deleted post back into the author's list and the cache.
        raise Conflict(
            f"the post made with this Idempotency-Key ({existing.id}) was deleted; "
            "use a new key to post again"
        )
