"""Engagement stats as the API reads them: a post's or an author's rolled-up buckets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..clock import utcnow
from ..errors import InvalidInput, NotFound
from .rollup import COUNTS, GRAINS, EngagementStore, StatsRow, bucket_start, engagement_rate

MAX_STATS_DAYS = 90


@dataclass(frozen=True, slots=True)
class Stats:
    entity: str
    entity_id: int
    grain: str
    since: datetime
    buckets: list[StatsRow]

    @property
    def totals(self) -> dict[str, Any]:
        counts = dict.fromkeys(COUNTS, 0)
        for row in self.buckets:
            for name in COUNTS:
                counts[name] += row.counts.get(name, 0)
        return {**counts, "engagement_rate": engagement_rate(counts)}


class StatsService:
    """What the API reads: a post's or an author's rolled-up stats over the last `days`."""

    def __init__(
        self,
        store: EngagementStore,
        post_exists: Callable[[int], bool],
        user_exists: Callable[[int], bool],
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._post_exists = post_exists
        self._user_exists = user_exists
        self._clock = clock

    def _read(self, entity: str, entity_id: int, grain: str, days: int) -> Stats:
        if grain not in GRAINS:
            raise InvalidInput(f"grain must be one of {', '.join(GRAINS)}")
        if not isinstance(days, int) or not 1 <= days <= MAX_STATS_DAYS:
            raise InvalidInput(f"days must be an integer in 1..{MAX_STATS_DAYS}")
        since = bucket_start(self._clock() - timedelta(days=days - 1), "day")
        rows = self._store.entity_stats(entity, entity_id, grain, since)
        return Stats(entity, entity_id, grain, since, rows)

    def post_stats(self, post_id: int, grain: str = "day", days: int = 7) -> Stats:
        if not self._post_exists(post_id):
            raise NotFound(f"post {post_id} not found")
        return self._read("post", post_id, grain, days)

    def author_stats(self, user_id: int, grain: str = "day", days: int = 7) -> Stats:
        if not self._user_exists(user_id):
            raise NotFound(f"user {user_id} not found")
        return self._read("author", user_id, grain, days)
