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
        """One impression per post shown. Into the timeline store's buffer, which the roll-up
        drains (an event-log write here cost ~3 ms a read); straight to the log when the
        buffer is unavailable. Each carries an `event_id`, so a drain retried stores it once."""
        if not posts:
            return
        at = self._clock()
        events: list[Event] = [
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
        try:
            self._timelines.buffer_events(events)
        except TimelineStoreUnavailable:
            self._store(events)

    def _store(self, events: list[Event]) -> None:
        try:
            self._events.record_events(events)
        except Exception:  # by design: analytics must not break the request
            log.warning("engagement events not stored: %s", events[0]["kind"], exc_info=True)
