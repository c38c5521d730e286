"""The feed's tunable rules, as the domain sees them (the edge builds them from its settings)."""

from __future__ import annotations

from dataclasses import dataclass

from .fanout.rule import Threshold


@dataclass(frozen=True, slots=True)
class FeedRules:
    # Authors with at least this many followers are pulled at read time instead of pushed.
    celebrity_threshold: int = 10_000
    # ...and are pushed again only below this (None: 10% below the threshold).
    celebrity_threshold_low: int | None = None
    # Followers not seen for this many days are skipped by fan-out; their next read rebuilds.
    active_days: int = 7
    # Followers per fan-out chunk job, and follower ids read per keyset page while planning.
    fanout_chunk_size: int = 1_000
    fanout_page_size: int = 10_000
    # Prewarm: users seen within this many hours, at most this many a run, first page size.
    prewarm_active_hours: int = 24
    prewarm_max_users: int = 20_000
    prewarm_page_size: int = 20
    # Cleanup: raw engagement events kept this many days (once rolled up); author lists of
    # authors silent this many days dropped (a reader rebuilds a missing one).
    engagement_retention_days: int = 7
    author_list_silent_days: int = 30

    @property
    def threshold(self) -> Threshold:
        return Threshold.of(self.celebrity_threshold, self.celebrity_threshold_low)
