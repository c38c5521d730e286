"""Cache prewarm (the scheduled `prewarm` function): make recently active users' first feed
read a cache hit.

For each user seen within PREWARM_ACTIVE_HOURS (most recent first, at most PREWARM_MAX_USERS a
run) whose home timeline is missing from Redis, or whose first page of posts is not all in the
post cache, it runs the feed read's own rebuild and hydration (`HomeFeed.warm`): the timeline
is rebuilt from the author lists and the first page's bodies are cached. Timelines go missing
after a Redis failover or eviction, after `cleanup` dropped an inactive user's, and post bodies
after their TTL.

The test for "first page" looks at the timeline's newest posts; posts of pulled (celebrity)
authors are read from their author lists, which every follower's read keeps hot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..feed.reader import HomeFeed
    from ..ports import TimelineStore

log = logging.getLogger(__name__)

USERS_PER_BATCH = 200


class RecentlyActiveUsers(Protocol):
    def recently_active_page(
        self, within_hours: int, after: tuple[datetime, int] | None, limit: int
    ) -> list[tuple[datetime, int]]: ...


@dataclass(frozen=True, slots=True)
class PrewarmReport:
    active_users: int  # users seen within the window that were checked
    warmed: int  # of those, how many needed (and got) a rebuild or cache fill
    failed: int
    seconds: float

    def to_dict(self) -> dict[str, int | float]:
        return {
            "active_users": self.active_users,
            "warmed": self.warmed,
            "failed": self.failed,
            "seconds": self.seconds,
        }


class Prewarmer:
    def __init__(
        self,
        users: RecentlyActiveUsers,
        timelines: TimelineStore,
        feed: HomeFeed,
        *,
        active_hours: int,
        max_users: int,
        page_size: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._users = users
        self._timelines = timelines
        self._feed = feed
        self._active_hours = active_hours
        self._max_users = max_users
        self._page_size = page_size
        self._clock = clock

    def _active_batches(self) -> Iterator[Sequence[int]]:
        after: tuple[datetime, int] | None = None
        left = self._max_users
        while left > 0:
            rows = self._users.recently_active_page(
                self._active_hours, after, min(USERS_PER_BATCH, left)
            )
            if not rows:
                return
            yield [user_id for _, user_id in rows]
            left -= len(rows)
            after = rows[-1]

    def run(self) -> PrewarmReport:
        t0 = self._clock()
        active = warmed = failed = 0
        for batch in self._active_batches():
            active += len(batch)
            for user_id in self._timelines.cold_first_pages(batch, self._page_size):
                try:
                    self._feed.warm(user_id, self._page_size)
                    warmed += 1
                except Exception:  # one user's failure must not stop the others' warm-up
                    log.warning("prewarm of user %s failed", user_id, exc_info=True)
                    failed += 1
        return PrewarmReport(active, warmed, failed, round(self._clock() - t0, 3))
