"""Engagement events (post, like, unlike, follow, unfollow, impression) as the services emit
them. Best effort by design: analytics must never fail or slow the request that caused them."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from .clock import Clock, utcnow
from .errors import TimelineStoreUnavailable
from .model import Post
from .ports import Event, EventLog, TimelineStore

log = logging.getLogger(__name__)


class EngagementEvents:
    def __init__(self, events: EventLog, timelines: TimelineStore, clock: Clock = utcnow) -> None:
        self._events = events
        self._timelines = timelines
        self._clock = clock

    def record(self, kind: str, actor_id: int, **ids: int) -> None:
        """One event straight into the event log."""
        self._store([{"kind": kind, "actor_id": actor_id, "at": self._clock(), **ids}])

    def impressions(self, reader_id: int, posts: Sequence[Post]) -> None:
        """One impression per post shown, counted once per reader, post and hour in the
        timeline store (bounded, drained every minute by the impressions job; a MongoDB write
        here cost ~3 ms a read). Straight to the event log when the timeline store is
        unavailable (each carries an `event_id`, so a retried write stores it once)."""
        if not posts:
            return
        at = self._clock()
        try:
            self._timelines.count_impressions(reader_id, at, [(p.id, p.author_id) for p in posts])
        except TimelineStoreUnavailable:
            self._store(
                [
                    {
                        "kind": "impression",
                        "actor_id": reader_id,
                        "post_id": p.id,
                        "author_id": p.author_id,
                        "at": at,
                        "event_id": uuid.uuid4().hex,
                    }
                    for p in posts
                ]
            )

    def _store(self, events: list[Event]) -> None:
        try:
            self._events.record_events(events)
        except Exception:  # by design: analytics must not break the request
            log.warning("engagement events not stored: %s", events[0]["kind"], exc_info=True)
