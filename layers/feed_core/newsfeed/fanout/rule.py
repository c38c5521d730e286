"""The fan-out rule: who gets a post pushed, when an author is a celebrity, how work is chunked.

- An author with fewer than CELEBRITY_THRESHOLD followers is `push`: each post is written into
  every ACTIVE follower's home timeline by fan-out jobs. At or above it the author is `pull`:
  readers fetch the author's recent posts at read time.
- push -> pull is immediate (already pushed entries dedupe with pulled ones).
- pull -> push only below a lower mark (hysteresis, 10% under the threshold by default): an
  author hovering at the threshold would otherwise re-backfill every follower at each crossing.
- pull -> push goes through `push_pending`: new posts are pushed AND still pulled while a
  `backfill_author` job pushes the author's recent posts to active followers; the job then sets
  `push`. Each crossing names its backfill job; only that job may finish it, so a job of an
  earlier crossing (its chunks planned before followers who came during the pull) cannot.
  Nothing is missing or duplicated at any moment.
- Inactive followers (not seen for ACTIVE_DAYS) are skipped; their timeline is rebuilt on read.
- A follower whose timeline is missing is skipped too (writing into it would make it look
  complete); the timeline store enforces that atomically.

The jobs that carry this work are typed in `jobs.py` and run by `handler.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Threshold:
    """Pull at or above `high` followers; back to push only below `low` (`low <= high`)."""

    high: int
    low: int

    @classmethod
    def of(cls, high: int, low: int | None = None) -> Threshold:
        """`low` defaults to 10% below `high` (10,000 -> 9,000; no gap below 10)."""
        low = high - high // 10 if low is None else low
        if not 0 < low <= high:
            raise ValueError(f"celebrity threshold low mark must be in 1..{high}, got {low}")
        return cls(high, low)


def mode_after_count(
    mode: str, follower_count: int, threshold: Threshold
) -> tuple[str, str | None]:
    """New fan-out mode for an author whose follower count became `follower_count`, and the
    crossing it makes ("to_pull", "to_push_pending" or None)."""
    if follower_count >= threshold.high:
        return ("pull", "to_pull") if mode != "pull" else ("pull", None)
    if mode == "pull":
        if follower_count >= threshold.low:
            return "pull", None  # inside the hysteresis band: stay pulled
        return "push_pending", "to_push_pending"
    # push stays push; push_pending stays pending until its backfill finishes.
    return mode, None


def plan_chunks(follower_ids: Iterable[int], chunk_size: int) -> Iterator[tuple[int, int]]:
    """Cut an ascending stream of follower ids into (after_id, upto_id] ranges of `chunk_size`
    followers. Chunk jobs re-read their range, so a follower added later is simply not in it (its
    follow backfill already covered older posts)."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    after, count, last = 0, 0, None
    for follower_id in follower_ids:
        count += 1
        last = follower_id
        if count == chunk_size:
            yield after, follower_id
            after, count = follower_id, 0
    if count and last is not None:
        yield after, last
