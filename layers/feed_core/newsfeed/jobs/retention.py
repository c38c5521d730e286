"""Retention of raw engagement events (the cleanup job runs it): events are kept
ENGAGEMENT_RETENTION_DAYS, and never dropped before the roll-up has counted them.

The roll-up counts every event stored before its watermark minus WATERMARK_OVERLAP (each run
reads what was stored since the previous run's start, less the overlap). So the store may expire
the events of the days that ended `days` ago, up to the first day still holding an event stored
after that bound (one the roll-up may not have seen yet: a late event, or a roll-up that has
stalled), and nothing without a watermark. The instant up to which events have expired is the
events horizon: it never moves back, and the roll-up never recomputes an hour before it (its
raw events are gone; its stats are final). An event stamped before the horizon that arrives
after it moved (later than the retention itself) is not counted, and expires with its day.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .rollup import WATERMARK_OVERLAP, EngagementStore, ExpiredEvents, bucket_start


class EventRetention:
    def __init__(self, store: EngagementStore, *, days: int) -> None:
        if days < 1:
            raise ValueError(f"engagement events must be kept at least a day, not {days}")
        self._store = store
        self._days = days

    def run(self, now: datetime) -> ExpiredEvents:
        mark = self._store.watermark()
        if mark is None:
            return ExpiredEvents(None)  # the roll-up has never run: nothing is counted
        before = bucket_start(now - timedelta(days=self._days), "day")
        return self._store.expire_events(before, mark - WATERMARK_OVERLAP)
