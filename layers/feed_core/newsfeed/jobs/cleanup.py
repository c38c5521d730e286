"""Cleanup (the scheduled `cleanup` function): what no TTL does.

Redis keeps the home timelines of active users and the author lists of authors who posted
within AUTHOR_LIST_SILENT_DAYS only, idempotency claims (MongoDB `post_requests`) are deleted
once older than IDEMPOTENCY_KEY_HOURS (FerretDB has no TTL indexes; on DocumentDB a TTL index
could do it, the job does it on both), and raw engagement events go ENGAGEMENT_RETENTION_DAYS
after they happened, once the roll-up has counted them (`retention.py`).

Fan-out already skips followers inactive beyond ACTIVE_DAYS, and their next read rebuilds the
timeline from the author lists, so an inactive user's timeline is dead weight: this job walks
every timeline in Redis (SCAN, so its cost follows what Redis holds, not the number of users),
asks PostgreSQL which owners are inactive (or gone), and drops those timelines. A timeline that
was rebuilt in the last few minutes is kept: its owner has just come back.

Author lists (`ap:`) are written once per post and read by rebuilds, follows and the readers of
pulled authors; a missing one is rebuilt from the post store by whoever reads it next. So the
list of an author silent for AUTHOR_LIST_SILENT_DAYS is dropped (SCAN again), unless a reader
rebuilt it within that time; the store decides per list in one atomic step, so a post arriving
meanwhile either keeps the list or finds it gone (and the next rebuild reads the post).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from ..posting.rules import IDEMPOTENCY_KEY_HOURS

if TYPE_CHECKING:
    from ..ports import TimelineStore
    from .retention import EventRetention

# A timeline (re)built this recently belongs to a reader who is back; never drop it.
REBUILT_GRACE_MS = 10 * 60 * 1000
DAY_MS = 86_400_000
OWNERS_PER_BATCH = 500


class ActivityCheck(Protocol):
    def inactive_among(self, user_ids: Sequence[int], active_days: int) -> set[int]: ...


@dataclass(frozen=True, slots=True)
class CleanupReport:
    timelines_seen: int
    dropped: int
    seconds: float
    claims_expired: int = 0
    event_days_dropped: int = 0
    legacy_events_deleted: int = 0
    impression_counts_deleted: int = 0
    author_lists_seen: int = 0
    author_lists_dropped: int = 0
    media_removed: int = 0
    media_claims_released: int = 0

    def to_dict(self) -> dict[str, int | float]:
        return {
            "timelines_seen": self.timelines_seen,
            "dropped": self.dropped,
            "claims_expired": self.claims_expired,
            "event_days_dropped": self.event_days_dropped,
            "legacy_events_deleted": self.legacy_events_deleted,
            "impression_counts_deleted": self.impression_counts_deleted,
            "author_lists_seen": self.author_lists_seen,
            "author_lists_dropped": self.author_lists_dropped,
            "media_removed": self.media_removed,
            "media_claims_released": self.media_claims_released,
            "seconds": self.seconds,
        }


class ClaimExpiry(Protocol):
    def expire_post_requests(self, before: datetime) -> int: ...


class UnattachedMedia(Protocol):
    def settle_claims(self, limit: int = ...) -> int: ...

    def remove_unattached(self, limit: int = ..., batch: int = ...) -> int: ...


class TimelineCleanup:
    def __init__(
        self,
        users: ActivityCheck,
        timelines: TimelineStore,
        *,
        active_days: int,
        claims: ClaimExpiry | None = None,
        events: EventRetention | None = None,
        author_list_silent_days: int | None = None,
        media: UnattachedMedia | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Without `author_list_silent_days` author lists are left alone (so with `claims` and
        `events`: the job does what it is given)."""
        if author_list_silent_days is not None and author_list_silent_days < 1:
            raise ValueError(
                f"author lists must be kept a day at least, not {author_list_silent_days}"
            )
        self._claims = claims
        self._media = media
        self._events = events
        self._silent_days = author_list_silent_days
        self._users = users
        self._timelines = timelines
        self._active_days = active_days
        self._clock = clock

    def run(self) -> CleanupReport:
        t0 = self._clock()
        built_before_ms = int(t0 * 1000) - REBUILT_GRACE_MS
        seen = dropped = 0
        for owners in self._timelines.timeline_owners(OWNERS_PER_BATCH):
            seen += len(owners)
            inactive = self._users.inactive_among(owners, self._active_days)
            if inactive:
                dropped += self._timelines.drop_timelines(sorted(inactive), built_before_ms)
        lists_seen = lists_dropped = 0
        if self._silent_days is not None:
            silent_since_ms = int(t0 * 1000) - self._silent_days * DAY_MS
            for authors in self._timelines.author_list_owners(OWNERS_PER_BATCH):
                lists_seen += len(authors)
                lists_dropped += self._timelines.drop_silent_author_lists(
                    authors, silent_since_ms, built_before_ms
                )
        now = datetime.fromtimestamp(t0, UTC)
        expired = 0
        if self._claims is not None:
            expired = self._claims.expire_post_requests(
                now - timedelta(hours=IDEMPOTENCY_KEY_HOURS)
            )
        events = self._events.run(now) if self._events is not None else None
        # Claims of posts never stored, uploads no post took within a day, and removals a
        # fault interrupted.
        claims_released = self._media.settle_claims() if self._media is not None else 0
        media_removed = self._media.remove_unattached() if self._media is not None else 0
        return CleanupReport(
            seen,
            dropped,
            round(self._clock() - t0, 3),
            expired,
            event_days_dropped=events.days_dropped if events else 0,
            legacy_events_deleted=events.legacy_deleted if events else 0,
            impression_counts_deleted=events.impression_counts_deleted if events else 0,
            author_lists_seen=lists_seen,
            author_lists_dropped=lists_dropped,
            media_removed=media_removed,
            media_claims_released=claims_released,
        )
