"""Likes: idempotent like and unlike of a live post by a user who may see it."""

from __future__ import annotations

import logging

from ..clock import Clock, utcnow
from ..engagement import EngagementEvents
from ..errors import NotFound, QueueUnavailable
from ..fanout.jobs import RefreshPost
from ..model import Post
from ..ports import FanoutQueue, GraphStore, PostStore
from .bodies import PostBodies

log = logging.getLogger(__name__)


class LikeService:
    def __init__(
        self,
        graph: GraphStore,
        posts: PostStore,
        bodies: PostBodies,
        queue: FanoutQueue,
        events: EngagementEvents,
        clock: Clock = utcnow,
    ) -> None:
        self._queue = queue
        self._graph = graph
        self._posts = posts
        self._bodies = bodies
        self._events = events
        self._clock = clock

    def like(self, actor_id: int, post_id: int) -> None:
        post = self._live(post_id, actor_id)
        updated = self._posts.add_like(post_id, actor_id, self._clock())
        if updated is not None:
            self._refresh(updated)
            self._events.record("like", actor_id, post_id=post_id, author_id=post.author_id)

    def unlike(self, actor_id: int, post_id: int) -> None:
        post = self._live(post_id, actor_id)
        updated = self._posts.remove_like(post_id, actor_id)
        if updated is not None:
            self._refresh(updated)
            self._events.record("unlike", actor_id, post_id=post_id, author_id=post.author_id)

    def _refresh(self, updated: Post) -> None:
        """The cached body with the new count; if the cache is unavailable, a job does it
        later (else the old count would be served until the entry's TTL)."""
        if not self._bodies.cache([updated]):
            try:
                self._queue.send([RefreshPost(post_id=updated.id)])
            except QueueUnavailable:
                log.warning("refresh of post %s lost; its cache entry expires", updated.id)

    def _live(self, post_id: int, actor_id: int) -> Post:
        post = self._bodies.get(post_id)
        if post is None or post.is_deleted:
            raise NotFound(f"post {post_id} not found")
        if not self._graph.user_exists(actor_id):
            raise NotFound(f"user {actor_id} not found")
        if self._graph.blocked_either(actor_id, post.author_id):
            # As GET answers across a block: a 403 would tell the post exists.
            raise NotFound(f"post {post_id} not found")
        return post
