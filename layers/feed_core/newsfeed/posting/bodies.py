"""Post bodies read through the post cache: the timeline store's cache first, the post store
for misses (which are then cached). Every read path (the feed, a single post, likes) goes
through here, so what the cache may hold is decided in one place."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from ..errors import PostStoreUnavailable, TimelineStoreUnavailable
from ..model import Post
from ..ports import PostStore, TimelineStore
from ..telemetry import NO_TELEMETRY, POST_CACHE_LOOKUPS, Telemetry

log = logging.getLogger(__name__)


class PostBodies:
    def __init__(
        self, posts: PostStore, timelines: TimelineStore, *, telemetry: Telemetry = NO_TELEMETRY
    ) -> None:
        self._posts = posts
        self._timelines = timelines
        self._telemetry = telemetry

    def _looked_up(self, hits: int, misses: int) -> None:
        if hits:
            self._telemetry.count(POST_CACHE_LOOKUPS, hits, result="hit")
        if misses:
            self._telemetry.count(POST_CACHE_LOOKUPS, misses, result="miss")

    def get(self, post_id: int) -> Post | None:
        """One post (a deleted one too, marked), or None if it never existed."""
        try:
            cached = self._timelines.cached_posts([post_id]).get(post_id)
        except TimelineStoreUnavailable:
            cached = None
        self._looked_up(1 if cached is not None else 0, 0 if cached is not None else 1)
        if cached is not None:
            return cached
        post = self._posts.get_post(post_id)
        if post is not None:
            self.cache([post])
        return post

    def get_many(self, post_ids: Sequence[int]) -> tuple[dict[int, Post], bool]:
        """Posts by id; returns (found, degraded): degraded when the post store failed and
        some bodies may be missing."""
        try:
            found = self._timelines.cached_posts(post_ids)
        except TimelineStoreUnavailable:
            found = {}
        misses = [i for i in post_ids if i not in found]
        self._looked_up(len(post_ids) - len(misses), len(misses))
        if misses:
            try:
                loaded = self._posts.get_posts(misses)
            except PostStoreUnavailable:
                log.warning("hydration from the post store failed", exc_info=True)
                return found, True
            found.update(loaded)
            self.cache(loaded.values())
        return found, False

    def cache(self, posts: Iterable[Post]) -> bool:
        """Best effort: the cache is only a copy, so a failure to fill it is not an error.
        False when it failed (the caller may queue a refresh)."""
        try:
            self._timelines.cache_posts(posts)
        except TimelineStoreUnavailable:
            log.warning("post cache fill failed", exc_info=True)
            return False
        return True
