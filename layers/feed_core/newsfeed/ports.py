"""What the domain needs from its stores; the adapters in `feed_adapters` implement these.

Every method may raise the `StoreUnavailable` subclass of its store (errors.py) when the store
does not answer; adapters translate their driver's errors into it, so no driver type ever
reaches the domain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from .model import (
    BlockChange,
    FollowChange,
    ListRead,
    MediaRecord,
    Post,
    ReaderGraph,
    UploadTarget,
    User,
)

if TYPE_CHECKING:
    from .fanout.jobs import FanoutJob
    from .fanout.rule import Threshold

# One engagement event: kind, actor_id, at, and the ids it concerns (post_id, author_id).
Event = dict[str, Any]


class FanoutQueue(Protocol):
    def send(self, jobs: Sequence[FanoutJob]) -> None:
        """Deliver each job at least once to the fan-out handler (order not guaranteed)."""


class GraphStore(Protocol):
    """Users and the social graph (PostgreSQL)."""

    def create_user(self, user_id: int, auth_subject: str, handle: str, display_name: str) -> User:
        """Raises `DuplicateId` when a user with this id exists, `Conflict` when the subject
        or the handle is taken."""
        ...

    def get_user(self, user_id: int) -> User | None: ...
    def get_user_by_subject(self, auth_subject: str) -> User | None: ...
    def user_exists(self, user_id: int) -> bool: ...
    def user_hidden_from(self, user_id: int, viewer_id: int | None) -> bool | None:
        """None: no such user. Else whether either of the two blocks the other."""
        ...

    def touch_active(self, user_id: int) -> None: ...
    def fanout_mode(self, user_id: int) -> str | None: ...
    def backfill_job(self, author_id: int) -> str | None:
        """The backfill job that may finish the author's current crossing, if any."""

    def claim_stale_backfills(self, older_than_seconds: int, limit: int) -> list[tuple[int, str]]:
        """(author, backfill job) of crossings still pending after `older_than_seconds`; each
        claimed one waits as long again before it can be claimed again."""

    def finish_backfill(self, author_id: int, job_id: str) -> bool:
        """push_pending -> push, only if `job_id` is the current crossing's backfill."""

    def follow(self, follower: int, followee: int, threshold: Threshold) -> FollowChange: ...
    def unfollow(self, follower: int, followee: int, threshold: Threshold) -> FollowChange: ...
    def block(self, blocker: int, blocked: int, threshold: Threshold) -> BlockChange: ...
    def unblock(self, blocker: int, blocked: int) -> bool: ...
    def mute(self, muter: int, muted: int) -> bool: ...
    def unmute(self, muter: int, muted: int) -> bool: ...
    def blocked_either(self, a: int, b: int) -> bool: ...
    def is_following(self, follower: int, followee: int) -> bool: ...
    def reader_graph(self, reader_id: int, active_days: int) -> ReaderGraph | None: ...
    # Both leave out the users in a block (either way) with `viewer_id`.
    def followers_page(
        self, user_id: int, after_id: int | None, limit: int, viewer_id: int | None = None
    ) -> list[User]: ...
    def following_page(
        self, user_id: int, after_id: int | None, limit: int, viewer_id: int | None = None
    ) -> list[User]: ...
    def follower_ids_page(self, author_id: int, after_id: int, limit: int) -> list[int]: ...
    def follower_ids_in_range(
        self,
        author_id: int,
        after_id: int,
        upto_id: int,
        *,
        active_days: int | None,
        as_of_ms: int = 0,
    ) -> list[int]:
        """`as_of_ms` (Unix ms): the answer must hold every follow committed before then, and
        may come from a copy that lags behind the store (0: from the store of record)."""
        ...

    def recently_active_page(
        self, within_hours: int, after: tuple[datetime, int] | None, limit: int
    ) -> list[tuple[datetime, int]]: ...
    def inactive_among(self, user_ids: Sequence[int], active_days: int) -> set[int]: ...


class PostStore(Protocol):
    """Posts and likes (MongoDB)."""

    def insert_post(self, post: Post) -> None:
        """Stores the post pending delivery. Raises `DuplicateId` when the id exists."""

    def claim_post_request(
        self, author_id: int, key: str, post_id: int, *, expired_before: datetime | None = None
    ) -> int:
        """Record `key` -> `post_id` for this author once; returns the post id recorded first.
        A claim recorded before `expired_before` no longer counts: it is replaced by this one."""
        ...

    def expire_post_requests(self, before: datetime) -> int:
        """Delete the claims recorded before `before`; returns how many."""
        ...

    def get_post(self, post_id: int) -> Post | None: ...
    def get_posts(self, post_ids: Sequence[int]) -> dict[int, Post]: ...
    def author_post_ids(self, author_id: int, below: int | None, limit: int) -> list[int]: ...
    def author_posts(self, author_id: int, below: int | None, limit: int) -> list[Post]: ...
    def posts_by_authors(
        self, author_ids: Sequence[int], below: int | None, limit: int
    ) -> list[Post]: ...
    def mark_deleted(self, post_id: int, at: datetime) -> Post | None:
        """Soft delete, pending retraction; the post after (None if it does not exist)."""

    def clear_pending(self, post_id: int, follow_up: str) -> None:
        """The post's `follow_up` ("deliver" or "retract") is done."""

    def claim_pending_posts(
        self, follow_up: str, below_id: int, limit: int, grace_seconds: int
    ) -> list[Post]:
        """Pending posts not claimed within `grace_seconds`, each marked claimed now."""

    def add_like(self, post_id: int, user_id: int, at: datetime) -> Post | None:
        """The post after the like, None if already liked; NotFound if missing or deleted."""

    def remove_like(self, post_id: int, user_id: int) -> Post | None: ...


class MediaStore(Protocol):
    """Media records (MongoDB's `media`)."""

    def insert_media(self, media: MediaRecord) -> None:
        """Raises `DuplicateId` when the id exists."""

    def get_media(self, media_id: int) -> MediaRecord | None: ...

    def finish_processing(self, media: MediaRecord) -> bool:
        """Store the outcome (ready or failed, with its fields) if the record is still pending;
        False when it is not (another run finished it, or it was removed)."""

    def claim_for_post(
        self,
        media_id: int,
        owner_id: int,
        post_id: int,
        at: datetime,
        stale_post_id: int | None = None,
    ) -> tuple[MediaRecord, bool] | None:
        """Attach a ready medium of `owner_id` to `post_id` (unconfirmed) if it is on no post
        (or, with `stale_post_id`, on that post, unconfirmed): (the record after, True); if
        this post holds it already: (the record, False); else None."""

    def release_claim(self, media_id: int, post_id: int) -> None:
        """Detach the medium if `post_id` holds it and the claim is not confirmed."""

    def confirm_claims(self, media_ids: Sequence[int], post_id: int) -> None:
        """The post is stored: its claims are never let go."""

    def unconfirmed_claims(self, attached_before: datetime, limit: int) -> list[MediaRecord]:
        """Claims made before the cutoff and not confirmed, oldest first."""

    def mark_removed(self, media_id: int, post_id: int | None) -> MediaRecord | None:
        """Mark removed if not already and on `post_id` (None: on no post): the record after;
        None otherwise."""

    def mark_purged(self, media_id: int, at: datetime) -> None: ...

    def media_to_purge(self, created_before: datetime, limit: int) -> list[MediaRecord]:
        """Not yet purged, and either on no post and created before the cutoff, or removed;
        oldest first."""


class MediaObjects(Protocol):
    """The media bucket's objects (S3)."""

    def size(self, key: str) -> int | None:
        """Bytes of the object, None if there is none."""

    def read(self, key: str) -> bytes: ...

    def write(self, key: str, data: bytes, content_type: str, cache_control: str) -> None: ...

    def delete(self, keys: Sequence[str]) -> None:
        """Delete these objects; a missing one is not an error."""


class UploadSigner(Protocol):
    """Signs browser upload targets for the media bucket (S3 presigned POST)."""

    def upload_target(
        self, key: str, content_type: str, max_bytes: int, expires_seconds: int
    ) -> UploadTarget:
        """A target that accepts exactly `key`, of 1..`max_bytes` bytes and of `content_type`,
        for `expires_seconds`."""
        ...


class CdnCache(Protocol):
    """The CDN in front of the media bucket (CloudFront)."""

    def invalidate(self, paths: Sequence[str], reference: str) -> None:
        """Drop these paths (`/media/<id>/*`) from every edge; the same `reference` again
        makes no second invalidation."""


class EventLog(Protocol):
    """Raw engagement events (MongoDB's `engagement_events`; the roll-up reads them back)."""

    def record_events(self, events: list[Event]) -> None:
        """Store events; an event already stored (same `event_id`) is stored once."""


class TimelineStore(Protocol):
    """Home timelines, author lists, the post cache and the engagement buffer (Redis).

    Lists carry a state (ready / building / missing) and a horizon (model.ListRead). Writes are
    idempotent; fan-out writes only into timelines that exist, never creating one.
    """

    max_len: int  # the cap of every timeline and author list

    # home timelines
    def timeline_state(self, user_id: int) -> ListRead: ...
    def begin_timeline_rebuild(self, user_id: int) -> None: ...
    def commit_timeline(self, user_id: int, post_ids: Sequence[int], horizon: int) -> None: ...
    def push(
        self, follower_ids: Iterable[int], post_ids: Sequence[int], horizon: int = 0
    ) -> int: ...
    def remove(self, follower_ids: Iterable[int], post_ids: Sequence[int]) -> None: ...
    def read_candidates(
        self, reader_id: int | None, author_ids: Sequence[int], below: int | None, count: int
    ) -> tuple[ListRead | None, dict[int, ListRead]]: ...
    def timeline_ids(self, user_id: int) -> list[int]: ...
    def cold_first_pages(self, user_ids: Sequence[int], page_size: int) -> list[int]: ...
    def timeline_owners(self, batch: int = 500) -> Iterator[list[int]]: ...
    def drop_timelines(self, user_ids: Iterable[int], built_before_ms: int) -> int: ...
    # author lists
    def add_author_post(self, author_id: int, post_id: int) -> bool: ...
    def remove_author_post(self, author_id: int, post_id: int) -> None: ...
    def begin_author_rebuild(self, author_id: int) -> None: ...
    def commit_author_posts(
        self, author_id: int, post_ids: Sequence[int], horizon: int
    ) -> None: ...
    def author_list_owners(self, batch: int = 500) -> Iterator[list[int]]: ...
    def drop_silent_author_lists(
        self, author_ids: Iterable[int], silent_since_ms: int, rebuilt_before_ms: int
    ) -> int:
        """Delete the lists whose newest post and last build are both older than
        `silent_since_ms`, but for one being rebuilt since `rebuilt_before_ms`; how many went."""
        ...

    def author_lists(
        self, author_ids: Sequence[int], below: int | None, count: int
    ) -> dict[int, ListRead]: ...
    # post cache
    def cached_posts(self, post_ids: Sequence[int]) -> dict[int, Post]: ...
    def cache_posts(self, posts: Iterable[Post]) -> None: ...
    # engagement: impressions counted once per (reader, post, hour), drained under a lock;
    # the raw event buffer of earlier releases is still drained (nothing writes it now)
    def count_impressions(
        self, reader_id: int, at: datetime, shown: Sequence[tuple[int, int]]
    ) -> int: ...
    def drain_impression_counts(
        self, store: Callable[[str, datetime, list[tuple[int, int, int]]], None]
    ) -> int | None: ...
    def drain_events(self, store: Callable[[list[Event]], None]) -> int: ...
    def engagement_backlog(self) -> int:
        """Impression counts and raw events waiting to be drained (a gauge, for monitoring)."""
        ...

    # backfill bookkeeping
    def backfill_chunk_done(self, author_id: int, job_id: str, chunk: int, chunks: int) -> bool: ...
