"""UserService, PostService, FeedService and FanoutService: what the HTTP layer and the fan-out
worker call. Write order everywhere: the source of truth first (PostgreSQL for the graph,
MongoDB for posts), then Redis, then the queue; every Redis step is idempotent so a retry of the
same call repairs what a failure left half done.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import DuplicateKeyError, PyMongoError
from redis.exceptions import RedisError

from .analytics import EngagementRollup, EngagementStore, StatsService
from .cleanup import TimelineCleanup
from .cursor import CursorCodec
from .errors import Conflict, Forbidden, InvalidInput, NotFound, Unavailable
from .fanout import chunk_jobs, head_job, plan_chunks, validate_job
from .feed_merge import Stream, merge_newest_first, select_visible, stream_from_fetch
from .ids import IdGenerator, id_to_datetime
from .models import MEDIA_KINDS, FeedPage, FollowChange, Media, Page, Post, ReaderGraph, User
from .ports import FanoutQueue, GraphStore, PostStore
from .prewarm import Prewarmer
from .settings import Settings
from .timelines import READY, ListRead, Timelines

log = logging.getLogger(__name__)

MAX_TEXT_LENGTH = 2000
MAX_MEDIA = 4
MAX_URL_LENGTH = 2048
MIN_LIMIT, MAX_LIMIT = 1, 100
HANDLE_RE = re.compile(r"^[A-Za-z0-9_]{3,30}$")
MAX_DISPLAY_NAME = 50
MAX_AUTH_SUBJECT = 255
# Extra ids read per source beyond the page size, so filtering rarely forces a second round.
FETCH_SLACK = 10
# Rounds of (read sources, merge, filter) per page; past this a short page is returned with a
# cursor that resumes exactly where the merge stopped.
MAX_FEED_ROUNDS = 8
ID_COLLISION_RETRIES = 3
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,100}")

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def check_limit(limit: Any) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not MIN_LIMIT <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be an integer in {MIN_LIMIT}..{MAX_LIMIT}")
    return limit


def _safely(what: str, action: Callable[[], Any]) -> None:
    """Best-effort side work (analytics events): a failure is logged, never surfaced."""
    try:
        action()
    except Exception:  # by design: analytics must not break the request
        log.warning("best-effort step failed: %s", what, exc_info=True)


class AuthorPostLists:
    """`ap:{author}` lists kept ready, rebuilt from MongoDB when missing."""

    def __init__(self, timelines: Timelines, posts: PostStore) -> None:
        self._timelines = timelines
        self._posts = posts

    def rebuild(self, author_id: int) -> ListRead:
        max_len = self._timelines.max_len
        # Mark first, so a post created while we read MongoDB is merged into the list, not lost.
        self._timelines.begin_author_rebuild(author_id)
        ids = self._posts.author_post_ids(author_id, None, max_len)
        horizon = ids[-1] if len(ids) >= max_len else 0
        self._timelines.commit_author_posts(author_id, ids, horizon)
        return ListRead(READY, horizon, ids)

    def recent(self, author_ids: Sequence[int]) -> dict[int, ListRead]:
        """Each author's whole recent list (up to TIMELINE_MAX_LEN ids)."""
        lists = self._timelines.author_lists(author_ids, None, self._timelines.max_len)
        for author_id, read in lists.items():
            if not read.ready:
                lists[author_id] = self.rebuild(author_id)
        return lists


@dataclass
class _Events:
    posts: PostStore

    def record(self, kind: str, actor_id: int, **fields: int) -> None:
        event = {"kind": kind, "actor_id": actor_id, "at": _utcnow(), **fields}
        _safely(f"{kind} event", lambda: self.posts.record_events([event]))


class _TimelineEdges:
    """Timeline side effects of follow-graph changes, shared by follow, unfollow and block."""

    def __init__(self, timelines: Timelines, lists: AuthorPostLists, queue: FanoutQueue) -> None:
        self._timelines = timelines
        self._lists = lists
        self._queue = queue

    def merge_author_into(self, reader_id: int, author_id: int) -> None:
        """Follow backfill: the author's recent posts into the reader's timeline (if it exists).
        The author list's horizon travels along: below it the timeline is not complete."""
        recent = self._lists.recent([author_id])[author_id]
        if recent.ids:
            self._timelines.push([reader_id], recent.ids, horizon=recent.horizon)

    def purge_author_from(self, reader_id: int, author_id: int) -> None:
        recent = self._lists.recent([author_id])[author_id]
        self._timelines.remove([reader_id], recent.ids)

    def after_crossings(self, changes: Sequence[FollowChange]) -> None:
        jobs = [
            head_job("backfill_author", author_id=c.followee_id, job_id=uuid.uuid4().hex)
            for c in changes
            if c.crossing == "to_push_pending"
        ]
        if jobs:
            self._queue.send(jobs)


class UserService:
    def __init__(
        self,
        graph: GraphStore,
        timelines: Timelines,
        posts: PostStore,
        queue: FanoutQueue,
        cursors: CursorCodec,
        ids: IdGenerator,
        settings: Settings,
    ) -> None:
        self._graph = graph
        self._timelines = timelines
        self._cursors = cursors
        self._ids = ids
        self._threshold = settings.celebrity_threshold
        self._edges = _TimelineEdges(timelines, AuthorPostLists(timelines, posts), queue)
        self._events = _Events(posts)

    def create_profile(self, auth_subject: str, handle: str, display_name: str) -> User:
        if (
            not isinstance(auth_subject, str)
            or not auth_subject
            or len(auth_subject) > MAX_AUTH_SUBJECT
        ):
            raise InvalidInput("auth subject is required")
        if not isinstance(handle, str) or not HANDLE_RE.match(handle):
            raise InvalidInput("handle must be 3 to 30 letters, digits or underscores")
        if not isinstance(display_name, str) or not display_name.strip():
            raise InvalidInput("display name must not be empty")
        display_name = display_name.strip()
        if len(display_name) > MAX_DISPLAY_NAME:
            raise InvalidInput(f"display name is longer than {MAX_DISPLAY_NAME} characters")
        user = self._graph.create_user(self._ids.next_id(), auth_subject, handle, display_name)
        # A new user follows nobody: an empty timeline is already complete. Purely a saving (the
        # first feed read would build the same), so a Redis failure here is not an error.
        _safely("empty timeline", lambda: self._timelines.commit_timeline(user.id, [], 0))
        return user

    def get_by_subject(self, auth_subject: str) -> User:
        user = self._graph.get_user_by_subject(auth_subject)
        if user is None:
            raise NotFound("no profile for this account")
        return user

    def get(self, user_id: int) -> User:
        user = self._graph.get_user(user_id)
        if user is None:
            raise NotFound(f"user {user_id} not found")
        return user

    def _users_page(
        self,
        fetch: Callable[[int, int | None, int], list[User]],
        kind: str,
        user_id: int,
        cursor: str | None,
        limit: int,
    ) -> Page[User]:
        limit = check_limit(limit)
        after = self._cursors.decode_int(kind, cursor, "a")
        users = fetch(user_id, after, limit + 1)
        more = len(users) > limit
        users = users[:limit]
        next_cursor = self._cursors.encode_int(kind, "a", users[-1].id) if more else None
        return Page(users, next_cursor)

    def followers(self, user_id: int, cursor: str | None, limit: int) -> Page[User]:
        return self._users_page(self._graph.followers_page, "followers", user_id, cursor, limit)

    def following(self, user_id: int, cursor: str | None, limit: int) -> Page[User]:
        return self._users_page(self._graph.following_page, "following", user_id, cursor, limit)

    def _not_self(self, actor_id: int, target_id: int, verb: str) -> None:
        if actor_id == target_id:
            raise InvalidInput(f"you cannot {verb} yourself")

    def follow(self, actor_id: int, target_id: int) -> None:
        """Idempotent. Re-running it also re-runs the timeline backfill, which repairs a Redis
        failure after the edge was committed."""
        self._not_self(actor_id, target_id, "follow")
        change = self._graph.follow(actor_id, target_id, self._threshold)
        if change.followee_mode != "pull":
            self._edges.merge_author_into(actor_id, target_id)
        if change.changed:
            self._events.record("follow", actor_id, author_id=target_id)

    def unfollow(self, actor_id: int, target_id: int) -> None:
        self._not_self(actor_id, target_id, "unfollow")
        change = self._graph.unfollow(actor_id, target_id, self._threshold)
        # Reads filter unfollowed authors anyway; removing them frees the timeline's room.
        self._edges.purge_author_from(actor_id, target_id)
        self._edges.after_crossings([change])
        if change.changed:
            self._events.record("unfollow", actor_id, author_id=target_id)

    def block(self, actor_id: int, target_id: int) -> None:
        """Block drops the follow edges both ways and purges both timelines."""
        self._not_self(actor_id, target_id, "block")
        change = self._graph.block(actor_id, target_id, self._threshold)
        self._edges.purge_author_from(actor_id, target_id)
        self._edges.purge_author_from(target_id, actor_id)
        self._edges.after_crossings(change.removed_follows)

    def unblock(self, actor_id: int, target_id: int) -> None:
        self._not_self(actor_id, target_id, "unblock")
        self._graph.unblock(actor_id, target_id)

    def mute(self, actor_id: int, target_id: int) -> None:
        """Muting only hides at read time, so unmuting brings everything back."""
        self._not_self(actor_id, target_id, "mute")
        self._graph.mute(actor_id, target_id)

    def unmute(self, actor_id: int, target_id: int) -> None:
        self._not_self(actor_id, target_id, "unmute")
        self._graph.unmute(actor_id, target_id)


def _validate_media(media: Sequence[Any] | None) -> tuple[Media, ...]:
    if media is None:
        return ()
    if not isinstance(media, (list, tuple)):
        raise InvalidInput("media must be a list")
    if len(media) > MAX_MEDIA:
        raise InvalidInput(f"at most {MAX_MEDIA} media items")
    out = []
    for item in media:
        url, kind = (
            (item.url, item.kind)
            if isinstance(item, Media)
            else ((item.get("url"), item.get("kind")) if isinstance(item, dict) else (None, None))
        )
        if (
            not isinstance(url, str)
            or not url.startswith(("https://", "http://"))
            or len(url) > MAX_URL_LENGTH
        ):
            raise InvalidInput("each media item needs an http(s) url of at most 2048 characters")
        if kind not in MEDIA_KINDS:
            raise InvalidInput(f"media kind must be one of {', '.join(MEDIA_KINDS)}")
        out.append(Media(url, kind))
    return tuple(out)


class PostService:
    def __init__(
        self,
        graph: GraphStore,
        posts: PostStore,
        timelines: Timelines,
        queue: FanoutQueue,
        cursors: CursorCodec,
        ids: IdGenerator,
        clock: Clock = _utcnow,
    ) -> None:
        self._graph = graph
        self._posts = posts
        self._timelines = timelines
        self._queue = queue
        self._cursors = cursors
        self._ids = ids
        self._clock = clock
        self._events = _Events(posts)

    def create(
        self,
        author_id: int,
        text: str,
        media: Sequence[Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Post:
        """Store the post, then queue its fan-out.

        With an `idempotency_key`, a retry of the same request returns the same post and redoes
        only the steps that may not have happened (all of them idempotent), so a client that
        lost the response, or got a 503, can retry without creating a duplicate.
        """
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("text must not be empty")
        if len(text) > MAX_TEXT_LENGTH:
            raise InvalidInput(f"text is longer than {MAX_TEXT_LENGTH} characters")
        items = _validate_media(media)
        if idempotency_key is not None and not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
            raise InvalidInput("Idempotency-Key must be 1-100 characters of [A-Za-z0-9_.:-]")
        mode = self._graph.fanout_mode(author_id)
        if mode is None:
            raise NotFound(f"user {author_id} not found")
        post = self._store_new_post(author_id, text, items, idempotency_key)
        redis_failed = False
        try:
            self._timelines.add_author_post(author_id, post.id)
            self._timelines.cache_posts([post])
        except RedisError:
            # The post exists; the fan-out job re-adds it to `ap:` (idempotently), so queue it
            # even for a pull-mode author.
            log.warning("redis failed after inserting post %s", post.id, exc_info=True)
            redis_failed = True
        if mode != "pull" or redis_failed:
            try:
                self._queue.send([head_job("fanout", author_id=author_id, post_id=post.id)])
            except Exception as exc:
                log.error("fan-out job for post %s not queued", post.id, exc_info=True)
                raise Unavailable(
                    f"post {post.id} was saved but its delivery to followers could not be "
                    "queued; retry with the same Idempotency-Key"
                ) from exc
        self._events.record("post", author_id, post_id=post.id, author_id=author_id)
        return post

    def _store_new_post(
        self, author_id: int, text: str, items: tuple[Media, ...], idempotency_key: str | None
    ) -> Post:
        """Insert into MongoDB (the source of truth); with a key, at most once per key."""
        for attempt in range(ID_COLLISION_RETRIES):
            post_id = self._ids.next_id()
            if idempotency_key is not None:
                post_id = self._posts.claim_post_request(author_id, idempotency_key, post_id)
                existing = self._posts.get_post(post_id)
                if existing is not None:
                    if existing.text != text or existing.media != items:
                        raise Conflict("Idempotency-Key was already used for a different post")
                    return existing
            post = Post(post_id, author_id, text, items, id_to_datetime(post_id))
            try:
                self._posts.insert_post(post)
                return post
            except DuplicateKeyError:
                if idempotency_key is not None:
                    # A concurrent retry of the same request inserted it first.
                    existing = self._posts.get_post(post_id)
                    if existing is not None and existing.author_id == author_id:
                        return existing
                    raise
                if attempt == ID_COLLISION_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def _load(self, post_id: int) -> Post | None:
        try:
            cached = self._timelines.cached_posts([post_id]).get(post_id)
        except RedisError:
            cached = None
        if cached is not None:
            return cached
        post = self._posts.get_post(post_id)
        if post is not None:
            _safely("post cache fill", lambda: self._timelines.cache_posts([post]))
        return post

    def get(self, post_id: int) -> Post:
        post = self._load(post_id)
        if post is None or post.is_deleted:
            raise NotFound(f"post {post_id} not found")
        return post

    def delete(self, actor_id: int, post_id: int) -> None:
        """Soft delete, idempotent: a retry after a partial failure redoes the Redis steps."""
        post = self._posts.get_post(post_id)
        if post is None:
            raise NotFound(f"post {post_id} not found")
        if post.author_id != actor_id:
            raise Forbidden("you can only delete your own posts")
        deleted = self._posts.mark_deleted(post_id, self._clock()) or post
        # Tombstone in the cache first: every read path hydrates through it, so the post is gone
        # everywhere at once, before the retract job has cleaned the followers' timelines.
        self._timelines.cache_posts([deleted])
        self._timelines.remove_author_post(post.author_id, post_id)
        self._queue.send([head_job("retract", author_id=post.author_id, post_id=post_id)])

    def _live(self, post_id: int, actor_id: int) -> Post:
        post = self.get(post_id)
        if not self._graph.user_exists(actor_id):
            raise NotFound(f"user {actor_id} not found")
        if self._graph.blocked_either(actor_id, post.author_id):
            raise Forbidden("you cannot interact with this post")
        return post

    def like(self, actor_id: int, post_id: int) -> None:
        post = self._live(post_id, actor_id)
        updated = self._posts.add_like(post_id, actor_id, self._clock())
        if updated is not None:
            _safely("post cache refresh", lambda: self._timelines.cache_posts([updated]))
            self._events.record("like", actor_id, post_id=post_id, author_id=post.author_id)

    def unlike(self, actor_id: int, post_id: int) -> None:
        post = self._live(post_id, actor_id)
        updated = self._posts.remove_like(post_id, actor_id)
        if updated is not None:
            _safely("post cache refresh", lambda: self._timelines.cache_posts([updated]))
            self._events.record("unlike", actor_id, post_id=post_id, author_id=post.author_id)

    def author_posts(self, author_id: int, cursor: str | None, limit: int) -> Page[Post]:
        limit = check_limit(limit)
        below = self._cursors.decode_int("posts", cursor, "b")
        if not self._graph.user_exists(author_id):
            raise NotFound(f"user {author_id} not found")
        posts = self._posts.author_posts(author_id, below, limit + 1)
        more = len(posts) > limit
        posts = posts[:limit]
        return Page(posts, self._cursors.encode_int("posts", "b", posts[-1].id) if more else None)


class FeedService:
    def __init__(
        self,
        graph: GraphStore,
        posts: PostStore,
        timelines: Timelines,
        cursors: CursorCodec,
        settings: Settings,
    ) -> None:
        self._graph = graph
        self._posts = posts
        self._timelines = timelines
        self._cursors = cursors
        self._active_days = settings.active_days
        self._lists = AuthorPostLists(timelines, posts)

    def home_feed(self, reader_id: int, cursor: str | None, limit: int) -> FeedPage:
        limit = check_limit(limit)
        below = self._cursors.decode_int("feed", cursor, "b")
        graph = self._graph.reader_graph(reader_id, self._active_days)
        if graph is None:
            raise NotFound(f"user {reader_id} not found")
        if graph.touch_due:
            # Before any rebuild: from here on fan-out treats the reader as active.
            self._graph.touch_active(reader_id)
        partial = False
        try:
            graph, timeline_ok, rebuild_ok = self._ensure_timeline(graph)
            partial = not rebuild_ok
            items, next_below, degraded = self._page_from_redis(graph, below, limit, timeline_ok)
            partial = partial or degraded
        except RedisError:
            log.warning(
                "redis failed during home feed of %s; reading MongoDB", reader_id, exc_info=True
            )
            items, next_below = self._page_from_mongo(graph, below, limit)
            partial = True
        next_cursor = self._cursors.encode_int("feed", "b", next_below) if next_below else None
        if items:
            at = _utcnow()
            events = [
                {
                    "kind": "impression",
                    "actor_id": reader_id,
                    "post_id": p.id,
                    "author_id": p.author_id,
                    "at": at,
                }
                for p in items
            ]
            self._record_impressions(events)
        return FeedPage(items, next_cursor, partial)

    def _record_impressions(self, events: list[dict[str, Any]]) -> None:
        """Into the Redis buffer the roll-up drains (a MongoDB write here cost ~3 ms a read);
        straight to MongoDB when Redis fails."""
        for event in events:
            event["event_id"] = uuid.uuid4().hex
        try:
            self._timelines.buffer_events(events)
        except RedisError:
            _safely("impression events", lambda: self._posts.record_events(events))

    def warm(self, reader_id: int, limit: int) -> bool:
        """Prewarm: rebuild the reader's timeline if it is missing and put the first page's
        posts in the cache, exactly as a first read would, but without counting as one (no
        impressions, no activity touch). False for an unknown user."""
        limit = check_limit(limit)
        graph = self._graph.reader_graph(reader_id, self._active_days)
        if graph is None:
            return False
        graph, timeline_ok, _ = self._ensure_timeline(graph)
        self._page_from_redis(graph, None, limit, timeline_ok)
        return True

    # -- timeline (re)build --------------------------------------------------------------------

    def _ensure_timeline(self, graph: ReaderGraph) -> tuple[ReaderGraph, bool, bool]:
        """Returns (graph, timeline usable, rebuild fully succeeded)."""
        state = self._timelines.timeline_state(graph.reader_id)
        if state.ready and not graph.inactive:
            return graph, True, True
        self._timelines.begin_timeline_rebuild(graph.reader_id)
        # Re-read the graph now that fan-out writes into this timeline: a followee that switched
        # to push just before must be in the rebuild, or its backfill could pass us by.
        graph = self._graph.reader_graph(graph.reader_id, self._active_days) or graph
        ok = self._rebuild_timeline(graph)
        return graph, ok, ok

    def _rebuild_timeline(self, graph: ReaderGraph) -> bool:
        max_len = self._timelines.max_len
        streams: list[Stream] = []
        lists = self._timelines.author_lists(graph.pushed_authors(), None, max_len)
        ok = True
        for author_id, read in lists.items():
            if not read.ready:
                try:
                    read = self._lists.rebuild(author_id)
                except PyMongoError:
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

    # -- page assembly -------------------------------------------------------------------------

    def _author_stream(
        self, author_id: int, read: ListRead, below: int | None, fetch: int
    ) -> Stream:
        """An author's ids below the cursor: `ap:` while the cursor is above its horizon, MongoDB
        beneath it (lazy loading of older posts), rebuilding a missing list on the way."""
        if read.ready and (below is None or below > read.horizon):
            return stream_from_fetch(read.ids, fetch, read.horizon)
        if not read.ready:
            rebuilt = self._lists.rebuild(author_id)
            if below is None or below > rebuilt.horizon:
                ids = [i for i in rebuilt.ids if below is None or i < below][:fetch]
                return stream_from_fetch(ids, fetch, rebuilt.horizon)
        return stream_from_fetch(self._posts.author_post_ids(author_id, below, fetch), fetch, 0)

    def _hydrate(self, ids: Sequence[int]) -> tuple[dict[int, Post], bool]:
        """Posts through the cache, MongoDB for misses (then cached). Returns (posts, degraded)."""
        try:
            found = self._timelines.cached_posts(ids)
        except RedisError:
            found = {}
        misses = [i for i in ids if i not in found]
        degraded = False
        if misses:
            try:
                loaded = self._posts.get_posts(misses)
            except PyMongoError:
                log.warning("hydration from MongoDB failed", exc_info=True)
                return found, True
            found.update(loaded)
            _safely("post cache fill", lambda: self._timelines.cache_posts(loaded.values()))
        return found, degraded

    def _page_from_redis(
        self, graph: ReaderGraph, below: int | None, limit: int, timeline_ok: bool
    ) -> tuple[list[Post], int | None, bool]:
        visible = graph.visible_authors()
        pulled = [a for a in graph.pulled_authors() if a in visible]
        pushed = [a for a, mode in graph.followees.items() if mode == "push" and a in visible]
        fetch = limit + FETCH_SLACK
        page: list[Post] = []
        degraded = False
        use_timeline = timeline_ok
        timeline_horizon = 0
        for _ in range(MAX_FEED_ROUNDS):
            read_timeline = use_timeline and (below is None or below > timeline_horizon)
            authors = pulled if read_timeline else pulled + pushed
            timeline, lists = self._timelines.read_candidates(
                graph.reader_id if read_timeline else None, authors, below, fetch
            )
            streams: list[Stream] = []
            if timeline is not None:
                if not timeline.ready:
                    use_timeline = False  # vanished since the check: read its authors directly
                    continue
                timeline_horizon = timeline.horizon
                if below is not None and below <= timeline_horizon:
                    continue  # the cursor is past the timeline's end: lazy-load from the authors
                streams.append(stream_from_fetch(timeline.ids, fetch, timeline.horizon))
            for author_id, read in lists.items():
                try:
                    streams.append(self._author_stream(author_id, read, below, fetch))
                except PyMongoError:
                    log.warning("author %s unavailable for this page", author_id, exc_info=True)
                    degraded = True
            merged = merge_newest_first(streams, below=below)
            done = 0
            while len(page) < limit and done < len(merged.ids):
                batch = merged.ids[done : done + max(limit - len(page), 8)]
                posts, hydrate_degraded = self._hydrate(batch)
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

    def _page_from_mongo(
        self, graph: ReaderGraph, below: int | None, limit: int
    ) -> tuple[list[Post], int | None]:
        """Degraded read with Redis down: one query over the visible authors (complete, slower)."""
        authors = sorted(graph.visible_authors())
        posts = self._posts.posts_by_authors(authors, below, limit + 1)
        more = len(posts) > limit
        posts = posts[:limit]
        return posts, (posts[-1].id if more else None)


class FanoutService:
    """Runs one fan-out job (one SQS message). Every step is idempotent, so redelivery is safe."""

    def __init__(
        self,
        graph: GraphStore,
        posts: PostStore,
        timelines: Timelines,
        queue: FanoutQueue,
        settings: Settings,
    ) -> None:
        self._graph = graph
        self._posts = posts
        self._timelines = timelines
        self._queue = queue
        self._lists = AuthorPostLists(timelines, posts)
        self._active_days = settings.active_days
        self._chunk_size = settings.fanout_chunk_size
        self._page_size = settings.fanout_page_size

    def handle(self, job: dict[str, Any]) -> None:
        job = validate_job(job)
        kind, author_id = job["kind"], job["author_id"]
        if kind == "fanout":
            if "upto_id" in job:
                self._push_range(job, job["after_id"], job["upto_id"])
                return
            post = self._posts.get_post(job["post_id"])
            if post is None or post.is_deleted:
                return
            # Repairs a Redis failure in PostService.create; a no-op otherwise.
            self._timelines.add_author_post(author_id, post.id)
            if self._graph.fanout_mode(author_id) in (None, "pull"):
                return  # readers pull this author
            self._run_head(job, self._push_range)
        elif kind == "retract":
            if "upto_id" in job:
                self._retract_range(job, job["after_id"], job["upto_id"])
            else:
                self._run_head(job, self._retract_range)
        elif "upto_id" in job:
            self._backfill_range(job, job["after_id"], job["upto_id"])
            if self._timelines.backfill_chunk_done(
                author_id, job["job_id"], job["chunk"], job["chunks"]
            ):
                self._graph.set_mode_if(author_id, "push_pending", "push")
        else:
            if self._graph.fanout_mode(author_id) != "push_pending":
                return  # crossed back to pull, or another backfill already finished
            if self._run_head(job, self._backfill_range):
                self._graph.set_mode_if(author_id, "push_pending", "push")

    def _follower_ids(self, author_id: int):  # -> Iterator[int]
        after = 0
        while True:
            page = self._graph.follower_ids_page(author_id, after, self._page_size)
            yield from page
            if len(page) < self._page_size:
                return
            after = page[-1]

    def _run_head(
        self, job: dict[str, Any], run_range: Callable[[dict[str, Any], int, int], None]
    ) -> bool:
        """Plan chunks; one chunk runs here, more are queued. True when all the work is done."""
        ranges = list(plan_chunks(self._follower_ids(job["author_id"]), self._chunk_size))
        if len(ranges) <= 1:
            for after, upto in ranges:
                run_range(job, after, upto)
            return True
        self._queue.send(chunk_jobs(job, ranges))
        return False

    def _push_range(self, job: dict[str, Any], after: int, upto: int) -> None:
        followers = self._graph.follower_ids_in_range(
            job["author_id"], after, upto, active_days=self._active_days
        )
        self._timelines.push(followers, [job["post_id"]])

    def _retract_range(self, job: dict[str, Any], after: int, upto: int) -> None:
        # All followers, active or not: an inactive one's stale timeline is unioned on rebuild.
        followers = self._graph.follower_ids_in_range(
            job["author_id"], after, upto, active_days=None
        )
        self._timelines.remove(followers, [job["post_id"]])

    def _backfill_range(self, job: dict[str, Any], after: int, upto: int) -> None:
        author_id = job["author_id"]
        recent = self._lists.recent([author_id])[author_id]
        followers = self._graph.follower_ids_in_range(
            author_id, after, upto, active_days=self._active_days
        )
        if recent.ids:
            self._timelines.push(followers, recent.ids, horizon=recent.horizon)


@dataclass(frozen=True)
class Services:
    users: UserService
    posts: PostService
    feed: FeedService
    fanout: FanoutService
    timelines: Timelines
    stats: StatsService
    prewarm: Prewarmer
    cleanup: TimelineCleanup
    rollup: EngagementRollup


def build_services(
    settings: Settings,
    *,
    graph: GraphStore | None = None,
    posts: PostStore | None = None,
    redis_client: Any = None,
    queue: FanoutQueue | None = None,
    ids: IdGenerator | None = None,
    engagement: EngagementStore | None = None,
) -> Services:
    """Wire the services. Adapters not given are built from `settings`: PostgreSQL pool, MongoDB
    database, Redis client, and SQS when FANOUT_QUEUE_URL is set, else an inline queue that runs
    fan-out in the calling process (local development without an emulator)."""
    if graph is None:
        from .stores.postgres import PostgresGraphStore, make_pool

        graph = PostgresGraphStore(make_pool(settings))
    if posts is None or engagement is None:
        from .stores.engagement_mongo import MongoEngagementStore
        from .stores.mongo import MongoPostStore, make_database

        db = make_database(settings)
        posts = posts or MongoPostStore(db)
        engagement = engagement or MongoEngagementStore(db)
    if redis_client is None:
        from .stores.redis_store import make_redis

        redis_client = make_redis(settings)
    inline = None
    if queue is None:
        if settings.fanout_queue_url:
            from .stores.sqs import SqsFanoutQueue

            queue = SqsFanoutQueue(
                settings.fanout_queue_url,
                region=settings.aws_region,
                endpoint_url=settings.aws_endpoint_url,
            )
        else:
            from .stores.inline_queue import InlineFanoutQueue

            queue = inline = InlineFanoutQueue()
    ids = ids or IdGenerator(settings.id_worker)
    cursors = CursorCodec(settings.cursor_secret)
    timelines = Timelines(
        redis_client,
        max_len=settings.timeline_max_len,
        post_ttl_seconds=settings.post_cache_ttl_seconds,
        trim_slack=settings.timeline_trim_slack,
        cluster=settings.redis_cluster,
    )
    fanout = FanoutService(graph, posts, timelines, queue, settings)
    if inline is not None:
        inline.bind(fanout.handle)
    feed = FeedService(graph, posts, timelines, cursors, settings)
    post_store = posts

    def post_exists(post_id: int) -> bool:
        post = post_store.get_post(post_id)
        return post is not None and not post.is_deleted

    return Services(
        users=UserService(graph, timelines, posts, queue, cursors, ids, settings),
        posts=PostService(graph, posts, timelines, queue, cursors, ids),
        feed=feed,
        fanout=fanout,
        timelines=timelines,
        stats=StatsService(engagement, post_exists, graph.user_exists),
        prewarm=Prewarmer(
            graph,
            timelines,
            feed,
            active_hours=settings.prewarm_active_hours,
            max_users=settings.prewarm_max_users,
            page_size=settings.prewarm_page_size,
        ),
        cleanup=TimelineCleanup(graph, timelines, active_days=settings.active_days),
        rollup=EngagementRollup(
            engagement, drain_buffer=lambda: timelines.drain_events(posts.record_events)
        ),
    )
