"""The impressions job (the scheduled `impressions` function, every minute; the roll-up runs it
first too): moves the impression counts from the timeline store into the engagement store.

Feed reads count each post once per reader and hour in the timeline store (bounded memory,
whatever a reader does). The drain runs under a lock, so two runs never take the same counts,
and stores each batch at most once, so a drain that dies mid-way is finished by the next
without counting anything twice. What a Redis loss takes with it is at most the minute since
the last drain. Raw events buffered by earlier releases are drained as before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..ports import TimelineStore
from .rollup import EngagementStore


@dataclass(frozen=True, slots=True)
class DrainReport:
    impressions: int  # counted impressions moved to the engagement store
    buffered_events: int  # raw events of earlier releases moved
    locked_out: bool  # another drain held the lock: this one did nothing
    seconds: float

    def to_dict(self) -> dict[str, int | float]:
        return {
            "impressions": self.impressions,
            "buffered_events": self.buffered_events,
            "locked_out": int(self.locked_out),
            "seconds": self.seconds,
        }


class ImpressionDrain:
    def __init__(self, timelines: TimelineStore, engagement: EngagementStore) -> None:
        self._timelines = timelines
        self._engagement = engagement

    def run(self) -> DrainReport:
        t0 = time.monotonic()
        moved = self._timelines.drain_impression_counts(self._engagement.add_impression_counts)
        if moved is None:
            return DrainReport(0, 0, True, round(time.monotonic() - t0, 3))
        legacy = self._timelines.drain_events(self._engagement.record_events)
        return DrainReport(moved, legacy, False, round(time.monotonic() - t0, 3))
