"""Engagement roll-up (the scheduled `rollup` function): raw events into hourly and daily stats
per post and per author; `stats.py` reads them for the API.

Events (`engagement_events`: impression, like, unlike, follow, unfollow, post) are immutable and
may arrive late. Each run finds the events *stored* since its watermark (their ObjectId holds the
time they were written), takes the hours those events *happened* in, and recomputes each such
hour from all of its events, then each touched day from its hours. Every stats row is replaced
whole under a key of (grain, entity, id, start), so re-running a window yields the same numbers
and a late event lands in its own hour on the next run, however late it is.

Counts per post: impressions, likes, unlikes. Per author: the same over all their posts, plus
follows and unfollows received and posts published. Engagement rate = likes / impressions.

Raw events are kept ENGAGEMENT_RETENTION_DAYS once counted (`retention.py`): the hours before
the store's events horizon have lost their raw events, so their stats are final and no run
recomputes them (a recompute would count only what is left).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ..clock import utcnow
from ..ports import EventLog

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
GRAINS = {"hour": HOUR, "day": DAY}
COUNTS = ("impressions", "likes", "unlikes", "follows", "unfollows", "posts")
# event kind -> counter; which entities an event counts for.
_COUNTER = {
    "impression": "impressions",
    "like": "likes",
    "unlike": "unlikes",
    "follow": "follows",
    "unfollow": "unfollows",
    "post": "posts",
}
_POST_KINDS = frozenset({"impression", "like", "unlike"})
# Events are stamped by clients (ObjectIds are made by the writer); a write in flight when a
# run starts may carry a slightly earlier time. The next run re-reads this much (idempotently).
WATERMARK_OVERLAP = timedelta(minutes=2)


def bucket_start(at: datetime, grain: str) -> datetime:
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    at = at.astimezone(UTC)
    if grain == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def engagement_rate(counts: Mapping[str, int]) -> float:
    impressions = counts.get("impressions", 0)
    return round(counts.get("likes", 0) / impressions, 6) if impressions else 0.0


Entity = tuple[str, int]  # ("post" | "author", id)
# (kind, post_id, author_id, number of events): one $group row of the raw events.
EventGroup = tuple[str, int | None, int | None, int]


def tally(groups: Iterable[EventGroup]) -> dict[Entity, dict[str, int]]:
    """Counts per entity from (kind, post_id, author_id, n) groups of events."""
    out: dict[Entity, dict[str, int]] = {}
    for kind, post_id, author_id, n in groups:
        counter = _COUNTER.get(kind)
        if counter is None:
            continue
        targets: list[Entity] = []
        if post_id is not None and kind in _POST_KINDS:
            targets.append(("post", int(post_id)))
        if author_id is not None:
            targets.append(("author", int(author_id)))
        for entity in targets:
            counts = out.setdefault(entity, dict.fromkeys(COUNTS, 0))
            counts[counter] += n
    return out


@dataclass(frozen=True, slots=True)
class StatsRow:
    grain: str
    entity: str
    entity_id: int
    start: datetime
    counts: dict[str, int]

    @property
    def engagement_rate(self) -> float:
        return engagement_rate(self.counts)

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, **self.counts, "engagement_rate": self.engagement_rate}


@dataclass(frozen=True, slots=True)
class ExpiredEvents:
    """What one expiry of raw events did (`retention.py`)."""

    horizon: datetime | None  # raw events before it are gone (None: nothing has expired)
    days_dropped: int = 0  # whole days of events
    legacy_deleted: int = 0  # events of the single collection of earlier releases
    impression_counts_deleted: int = 0  # (hour, post) impression counts the roll-up read


class EngagementStore(EventLog, Protocol):
    """Raw events, impression counts and rolled-up stats (MongoDB)."""

    def add_impression_counts(
        self, batch: str, hour: datetime, counts: list[tuple[int, int, int]]
    ) -> None:
        """Add a drained batch of (post, author, n) to the hour's impressions, at most once."""

    def ready_for_events(self, around: datetime) -> None:
        """Prepare the storage of the events of the days around `around` (ahead of writers)."""

    def events_horizon(self) -> datetime | None:
        """Raw events before this instant have expired (None: none has)."""

    def event_hours_stored_since(self, since: datetime) -> set[datetime]: ...
    def event_groups(self, start: datetime, end: datetime) -> list[EventGroup]: ...
    def replace_stats(self, rows: Sequence[StatsRow]) -> None: ...
    def stats_between(self, grain: str, start: datetime, end: datetime) -> list[StatsRow]: ...
    def entity_stats(
        self, entity: str, entity_id: int, grain: str, since: datetime
    ) -> list[StatsRow]: ...
    def watermark(self) -> datetime | None: ...
    def set_watermark(self, at: datetime) -> None: ...
    def expire_events(self, before: datetime, counted_before: datetime) -> ExpiredEvents:
        """Delete the raw events (and impression counts) of the days before `before` (a UTC
        midnight), stopping at the first day that holds one stored at or after `counted_before`;
        the horizon is recorded before anything is deleted, and never moves back."""


@dataclass(frozen=True, slots=True)
class RollupReport:
    hours: int
    days: int
    rows: int
    seconds: float
    events_drained: int = 0

    def to_dict(self) -> dict[str, int | float]:
        return {
            "hours": self.hours,
            "days": self.days,
            "rows": self.rows,
            "seconds": self.seconds,
            "events_drained": self.events_drained,
        }


class EngagementRollup:
    def __init__(
        self,
        store: EngagementStore,
        *,
        clock: Callable[[], datetime] = utcnow,
        drain_buffer: Callable[[], int] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        # Moves buffered events (impressions) into the store; runs before the window is read.
        self._drain_buffer = drain_buffer

    def run(self, since: datetime | None = None) -> RollupReport:
        """Roll up what was stored since the watermark (or `since`, to redo a window)."""
        t0 = time.monotonic()
        drained = self._drain_buffer() if self._drain_buffer is not None else 0
        started = self._clock()
        if since is None:
            mark = self._store.watermark()
            since = mark - WATERMARK_OVERLAP if mark else datetime(1970, 1, 1, tzinfo=UTC)
        self._store.ready_for_events(started)
        horizon = self._store.events_horizon()
        hours = sorted(
            h
            for h in self._store.event_hours_stored_since(since)
            if horizon is None or h >= horizon  # before it: final, its raw events are gone
        )
        rows = 0
        for hour in hours:
            rows += self.rollup_hour(hour)
        days = sorted({bucket_start(h, "day") for h in hours})
        for day in days:
            rows += self.rollup_day(day)
        self._store.set_watermark(started)
        return RollupReport(
            len(hours), len(days), rows, round(time.monotonic() - t0, 3), events_drained=drained
        )

    def rollup_hour(self, hour: datetime) -> int:
        counts = tally(self._store.event_groups(hour, hour + HOUR))
        rows = [StatsRow("hour", e, i, hour, c) for (e, i), c in counts.items()]
        self._store.replace_stats(rows)
        return len(rows)

    def rollup_day(self, day: datetime) -> int:
        totals: dict[Entity, dict[str, int]] = {}
        for row in self._store.stats_between("hour", day, day + DAY):
            counts = totals.setdefault((row.entity, row.entity_id), dict.fromkeys(COUNTS, 0))
            for name in COUNTS:
                counts[name] += row.counts.get(name, 0)
        rows = [StatsRow("day", e, i, day, c) for (e, i), c in totals.items()]
        self._store.replace_stats(rows)
        return len(rows)
